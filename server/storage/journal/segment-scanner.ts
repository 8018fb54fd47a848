import { type FileHandle, open } from 'node:fs/promises';
import {
  decodeSegmentHeader,
  RECORD_HEADER_BYTES,
  readRecordLength,
  recordIsIntact,
  SEGMENT_HEADER_BYTES,
} from './record-format.js';

/**
 * How a segment's bytes end, past its last intact record.
 * - `clean`: the file ends exactly after a record (or after the header).
 * - `torn`: a crash mid-write: the last record is incomplete, or it fails its checksum and only
 *   zeros follow it. Cutting the file at `offset` loses nothing that was ever acknowledged, but
 *   only if this is the last segment: the writer syncs a segment completely before starting the next.
 * - `corrupt`: anything else (bad header, impossible length, bad checksum followed by data).
 */
export type SegmentEnd = { kind: 'clean' } | { kind: 'torn' | 'corrupt'; offset: number; reason: string };

export interface ScannedRecord {
  seq: number;
  /** Byte offset of the record header in the file. */
  offset: number;
  /** A view into the scanner's buffer, valid only until the next call to `next()`. */
  payload: Uint8Array;
}

const READ_CHUNK_BYTES = 1024 * 1024;
// Bounds the checksum work spent looking for intact records after an overlong length (see
// `classifyOverrun`); a real torn tail is at most one batch, far below this.
const RESYNC_BUDGET_BYTES = 64 * 1024 * 1024;

/** Reads one segment file record by record with a bounded buffer, and classifies how it ends. */
export class SegmentScanner {
  readonly path: string;
  readonly fileBytes: number;
  /** First sequence number from the header, or the name-claimed one when the header is bad. */
  readonly firstSeq: number;
  private readonly handle: FileHandle;
  private readonly maxRecordBytes: number;
  private buffer: Buffer = Buffer.alloc(0);
  private bufferStart = 0;
  private bufferEnd = 0;
  private position = SEGMENT_HEADER_BYTES;
  private count = 0;
  private ending: SegmentEnd | undefined;

  private constructor(
    path: string,
    handle: FileHandle,
    fileBytes: number,
    firstSeq: number,
    maxRecordBytes: number,
  ) {
    this.path = path;
    this.handle = handle;
    this.fileBytes = fileBytes;
    this.firstSeq = firstSeq;
    this.maxRecordBytes = maxRecordBytes;
  }

  /** Opens `path`, whose name claims `expectedFirstSeq`, and checks its header against that claim. */
  static async open(path: string, expectedFirstSeq: number, maxRecordBytes: number): Promise<SegmentScanner> {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const scanner = new SegmentScanner(path, handle, size, expectedFirstSeq, maxRecordBytes);
      await scanner.checkHeader(expectedFirstSeq);
      return scanner;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Byte offset just past the last intact record read so far. */
  get validEnd(): number {
    return this.ending?.kind === 'corrupt' && this.ending.offset === 0 ? 0 : this.position;
  }

  /** Intact records read so far. */
  get records(): number {
    return this.count;
  }

  /** Sequence number the next record after the intact ones would have. */
  get endSeq(): number {
    return this.firstSeq + this.count;
  }

  /** Set once `next()` has returned undefined. */
  get end(): SegmentEnd | undefined {
    return this.ending;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  async next(): Promise<ScannedRecord | undefined> {
    if (this.ending) return undefined;
    const offset = this.position;
    const remaining = this.fileBytes - offset;
    if (remaining === 0) return this.finish({ kind: 'clean' });
    if (remaining < RECORD_HEADER_BYTES) {
      return this.finish({ kind: 'torn', offset, reason: `incomplete record header (${remaining} bytes)` });
    }
    await this.load(offset, RECORD_HEADER_BYTES);
    const length = readRecordLength(this.buffer, offset - this.bufferStart);
    if (length > this.maxRecordBytes) {
      return this.finish({
        kind: 'corrupt',
        offset,
        reason: `impossible record length ${length} (limit ${this.maxRecordBytes})`,
      });
    }
    const total = RECORD_HEADER_BYTES + length;
    if (total > remaining) return this.finish(await this.classifyOverrun(offset, length));
    await this.load(offset, total);
    const at = offset - this.bufferStart;
    if (!recordIsIntact(this.buffer, at, length)) {
      const zerosFollow = await this.onlyZerosFrom(offset + total);
      return this.finish({
        kind: zerosFollow ? 'torn' : 'corrupt',
        offset,
        reason: zerosFollow
          ? `record checksum mismatch with nothing but zeros after it`
          : `record checksum mismatch`,
      });
    }
    this.position = offset + total;
    this.count++;
    const payload = this.buffer.subarray(at + RECORD_HEADER_BYTES, at + total);
    return { seq: this.firstSeq + this.count - 1, offset, payload };
  }

  private finish(end: SegmentEnd): undefined {
    this.ending = end;
    return undefined;
  }

  private async checkHeader(expectedFirstSeq: number): Promise<void> {
    if (this.fileBytes < SEGMENT_HEADER_BYTES) {
      this.ending = {
        kind: 'corrupt',
        offset: 0,
        reason: `file of ${this.fileBytes} bytes has no whole header`,
      };
      return;
    }
    await this.load(0, SEGMENT_HEADER_BYTES);
    const header = decodeSegmentHeader(this.buffer.subarray(0, SEGMENT_HEADER_BYTES));
    if (!header.ok) {
      this.ending = { kind: 'corrupt', offset: 0, reason: header.reason };
    } else if (header.firstSeq !== expectedFirstSeq) {
      this.ending = {
        kind: 'corrupt',
        offset: 0,
        reason: `header says first sequence ${header.firstSeq} but the file name says ${expectedFirstSeq}`,
      };
    }
  }

  // A length that runs past the end of the file is what a crash mid-append leaves. It is also what a
  // flipped bit in a length field leaves, and cutting there would silently drop the intact records
  // behind it. So it counts as torn only if no intact record starts anywhere after it.
  private async classifyOverrun(offset: number, length: number): Promise<SegmentEnd> {
    const present = this.fileBytes - offset - RECORD_HEADER_BYTES;
    await this.load(offset, this.fileBytes - offset);
    const base = offset - this.bufferStart;
    const end = this.fileBytes - this.bufferStart;
    let budget = RESYNC_BUDGET_BYTES;
    for (let at = base + 1; at + RECORD_HEADER_BYTES <= end && budget > 0; at++) {
      const candidate = readRecordLength(this.buffer, at);
      if (candidate > this.maxRecordBytes || at + RECORD_HEADER_BYTES + candidate > end) continue;
      budget -= candidate + 4;
      if (recordIsIntact(this.buffer, at, candidate)) {
        return {
          kind: 'corrupt',
          offset,
          reason: `record length ${length} runs past the end of the file, yet an intact record starts at byte ${this.bufferStart + at}`,
        };
      }
    }
    return {
      kind: 'torn',
      offset,
      reason: `incomplete record: length ${length}, ${present} payload bytes present`,
    };
  }

  private async onlyZerosFrom(start: number): Promise<boolean> {
    for (let at = start; at < this.fileBytes; ) {
      const n = Math.min(READ_CHUNK_BYTES, this.fileBytes - at);
      await this.load(at, n);
      const from = at - this.bufferStart;
      const chunk = this.buffer.subarray(from, from + n);
      for (let i = 0; i < chunk.length; i++) if (chunk[i] !== 0) return false;
      at += n;
    }
    return true;
  }

  /** Makes bytes [start, start + length) of the file available in `buffer`; they must exist. */
  private async load(start: number, length: number): Promise<void> {
    if (start >= this.bufferStart && start + length <= this.bufferEnd) return;
    const capacity = Math.max(this.buffer.length, length, Math.min(READ_CHUNK_BYTES, this.fileBytes));
    const next = capacity > this.buffer.length ? Buffer.allocUnsafe(capacity) : this.buffer;
    let filled = 0;
    if (start >= this.bufferStart && start < this.bufferEnd) {
      filled = this.bufferEnd - start;
      this.buffer.copy(next, 0, start - this.bufferStart, this.bufferEnd - this.bufferStart);
    }
    this.buffer = next;
    this.bufferStart = start;
    const want = Math.min(capacity, this.fileBytes - start);
    while (filled < want) {
      const { bytesRead } = await this.handle.read(next, filled, want - filled, start + filled);
      if (bytesRead === 0) throw new Error(`${this.path} shrank while it was being read`);
      filled += bytesRead;
    }
    this.bufferEnd = start + filled;
  }
}

/** What cutting a torn tail dropped. */
export interface TornTailReport {
  file: string;
  offset: number;
  droppedBytes: number;
  reason: string;
}

export function describeTornTail(report: TornTailReport): string {
  return `journal: cut torn tail of ${report.file} at byte ${report.offset}, dropped ${report.droppedBytes} bytes (${report.reason})`;
}
