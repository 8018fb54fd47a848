import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { errorCode, JournalCorruptError, JournalWriteError } from './journal-errors.js';
import {
  type FsyncMode,
  type JournalWriterOptions,
  type ResolvedJournalWriterOptions,
  resolveJournalWriterOptions,
} from './journal-writer-options.js';
import {
  RECORD_HEADER_BYTES,
  recordBytes,
  SEGMENT_HEADER_BYTES,
  writeRecordHeader,
} from './record-format.js';
import {
  createSegment,
  listSegments,
  removeSegmentTempFiles,
  type SegmentFile,
  truncateFile,
} from './segment-files.js';
import { describeTornTail, SegmentScanner } from './segment-scanner.js';

interface PendingAppend {
  payload: Uint8Array;
  resolve: (seq: number) => void;
  reject: (error: unknown) => void;
}

export interface JournalWriterStats {
  /** Records acknowledged. */
  records: number;
  /** Successful writes; each carries one or more records. */
  batches: number;
  /** Successful fdatasync calls on record data. */
  syncs: number;
  bytes: number;
  writeErrors: number;
  segmentsCreated: number;
}

/**
 * Appends opaque records to the journal in `dir`. Sequence numbers are assigned when a record
 * reaches the file, so a failed batch leaves no gap: the next records take the same numbers.
 * Does not take the data directory lock; the caller holds it.
 */
export class JournalWriter {
  readonly dir: string;
  readonly fsync: FsyncMode;
  private readonly options: ResolvedJournalWriterOptions;
  private segment: SegmentFile;
  private handle: FileHandle;
  private offset: number;
  private seq: number;
  private readonly queue: PendingAppend[] = [];
  private queuedBytes = 0;
  private draining = false;
  private lingerNext = false;
  private wakeLinger: (() => void) | undefined;
  // Set while a failed batch waits to be retried (retryFailedWrites); close() wakes it early.
  private retryDelayMs: number | undefined;
  private wakeRetry: (() => void) | undefined;
  private failedAttempts = 0;
  private idleWaiters: (() => void)[] = [];
  // Set when cutting a failed batch off the file failed; the cut is retried before the next write.
  private truncatePending = false;
  private closing: Promise<void> | undefined;
  private isHealthy = true;
  private error: JournalWriteError | undefined;
  private readonly counters: JournalWriterStats = {
    records: 0,
    batches: 0,
    syncs: 0,
    bytes: 0,
    writeErrors: 0,
    segmentsCreated: 0,
  };

  private constructor(
    dir: string,
    options: ResolvedJournalWriterOptions,
    segment: SegmentFile,
    handle: FileHandle,
    offset: number,
    seq: number,
  ) {
    this.dir = dir;
    this.options = options;
    this.fsync = options.fsync;
    this.segment = segment;
    this.handle = handle;
    this.offset = offset;
    this.seq = seq;
  }

  /**
   * Opens the journal in `dir` for appending after its last intact record, creating the directory
   * and a first segment (starting at `firstSeq`) if needed. A torn tail on the last segment is cut off
   * and logged; other damage to the last segment throws {@link JournalCorruptError} (run
   * `readJournal` with `repair`), and so does a `firstSeq` beyond the journal's end.
   */
  static async open(dir: string, options?: JournalWriterOptions): Promise<JournalWriter> {
    const resolved = resolveJournalWriterOptions(options);
    await mkdir(dir, { recursive: true });
    await removeSegmentTempFiles(dir);
    const last = (await listSegments(dir)).at(-1);
    if (!last) {
      const { file, handle } = await createSegment(dir, resolved.firstSeq);
      const writer = new JournalWriter(dir, resolved, file, handle, SEGMENT_HEADER_BYTES, resolved.firstSeq);
      writer.counters.segmentsCreated++;
      return writer;
    }
    const scanner = await SegmentScanner.open(last.path, last.firstSeq, resolved.maxRecordBytes);
    try {
      while (await scanner.next()) {}
    } finally {
      await scanner.close();
    }
    const end = scanner.end!;
    if (end.kind === 'corrupt') throw new JournalCorruptError(last.path, end.offset, end.reason);
    if (end.kind === 'torn') {
      await truncateFile(last.path, scanner.validEnd);
      resolved.log(
        describeTornTail({
          file: last.path,
          offset: end.offset,
          droppedBytes: scanner.fileBytes - scanner.validEnd,
          reason: end.reason,
        }),
      );
    }
    if (options?.firstSeq !== undefined && options.firstSeq > scanner.endSeq) {
      throw new JournalCorruptError(
        last.path,
        scanner.validEnd,
        `the journal continues at ${scanner.endSeq} but firstSeq ${options.firstSeq} was asked for: records ${scanner.endSeq} to ${options.firstSeq - 1} are missing`,
      );
    }
    const handle = await open(last.path, 'r+');
    return new JournalWriter(dir, resolved, last, handle, scanner.validEnd, scanner.endSeq);
  }

  /** Sequence number of the next record to reach the file; queued appends take it and those after. */
  get nextSeq(): number {
    return this.seq;
  }

  /** False from a failed write until the next successful one. */
  get healthy(): boolean {
    return this.isHealthy;
  }

  /** The most recent write failure, kept after the writer recovers. */
  get lastError(): JournalWriteError | undefined {
    return this.error;
  }

  get stats(): Readonly<JournalWriterStats> {
    return { ...this.counters };
  }

  /** Path of the segment appends currently go to. */
  get currentFile(): string {
    return this.segment.path;
  }

  /**
   * Appends one record. Resolves with its sequence number once it is as durable as the fsync mode
   * promises; appends resolve in call order. Rejects with {@link JournalWriteError} if its batch
   * could not be written or synced (nothing of that batch is acknowledged), and with RangeError for
   * a payload over `maxRecordBytes`. Do not modify `payload` until the promise settles.
   */
  append(payload: Uint8Array): Promise<number> {
    if (this.closing) {
      return Promise.reject(
        new JournalWriteError('journal writer is closed', {
          code: 'JOURNAL_CLOSED',
          file: this.segment.path,
          offset: this.offset,
          records: 1,
        }),
      );
    }
    if (!(payload instanceof Uint8Array)) {
      return Promise.reject(new TypeError('payload must be a Uint8Array'));
    }
    if (payload.length > this.options.maxRecordBytes) {
      return Promise.reject(
        new RangeError(
          `payload of ${payload.length} bytes exceeds maxRecordBytes (${this.options.maxRecordBytes})`,
        ),
      );
    }
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ payload, resolve, reject });
      this.queuedBytes += recordBytes(payload.length);
      if (this.wakeLinger && this.batchIsFull()) this.wakeLinger();
      if (!this.draining) {
        this.draining = true;
        // A microtask, not a timer: appends made in the same tick share the first write, and a lone
        // append does not wait at all.
        queueMicrotask(() => void this.drain());
      }
    });
  }

  /** Waits for queued appends to settle, syncs the segment and closes it. Later appends reject. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    this.wakeRetry?.();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    if (this.draining) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    let failure: unknown;
    try {
      if (this.truncatePending) await this.handle.truncate(this.offset);
      // Also in `none` mode: a clean shutdown leaves nothing to the page cache.
      await this.options.io.datasync(this.handle);
    } catch (error) {
      failure = error;
    }
    await this.handle.close();
    if (failure !== undefined) {
      throw new JournalWriteError(`syncing ${this.segment.path} on close failed`, {
        code: errorCode(failure, 'EIO'),
        file: this.segment.path,
        offset: this.offset,
        records: 0,
        cause: failure,
      });
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        if (this.retryDelayMs !== undefined) await this.waitForRetry(this.retryDelayMs);
        else if (this.lingerNext && !this.batchIsFull()) await this.linger();
        await this.commitNext();
      }
    } catch (error) {
      // commitNext settles its own batch; this is only reached by a bug, and must not strand callers.
      for (const pending of this.queue.splice(0)) pending.reject(error);
      this.queuedBytes = 0;
    } finally {
      this.draining = false;
      // Going idle ends the load that justified lingering: the next lone append goes at once.
      this.lingerNext = false;
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private batchIsFull(): boolean {
    return (
      this.queue.length >= this.options.maxBatchRecords || this.queuedBytes >= this.options.maxBatchBytes
    );
  }

  private linger(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => wake(), this.options.maxBatchDelayMs);
      const wake = (): void => {
        clearTimeout(timer);
        this.wakeLinger = undefined;
        resolve();
      };
      this.wakeLinger = wake;
    });
  }

  private waitForRetry(delayMs: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => wake(), delayMs);
      const wake = (): void => {
        clearTimeout(timer);
        this.wakeRetry = undefined;
        resolve();
      };
      this.wakeRetry = wake;
    });
  }

  private async commitNext(): Promise<void> {
    const first = this.queue[0]!;
    const segmentHasRecords = this.offset > SEGMENT_HEADER_BYTES;
    if (segmentHasRecords && this.offset + recordBytes(first.payload.length) > this.options.segmentBytes) {
      try {
        await this.roll();
      } catch (error) {
        await this.fail(this.takeBatch(), error, this.offset);
        return;
      }
    }
    await this.commit(this.takeBatch());
  }

  private takeBatch(): PendingAppend[] {
    const { maxBatchBytes, segmentBytes } = this.options;
    const maxRecords = this.fsync === 'always' ? 1 : this.options.maxBatchRecords;
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < maxRecords) {
      const size = recordBytes(this.queue[count]!.payload.length);
      // The first record always goes, even alone over a limit; later ones only if they fit.
      if (count > 0 && (bytes + size > maxBatchBytes || this.offset + bytes + size > segmentBytes)) break;
      bytes += size;
      count++;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, count);
  }

  private async commit(batch: PendingAppend[]): Promise<void> {
    const position = this.offset;
    const headers = Buffer.allocUnsafe(RECORD_HEADER_BYTES * batch.length);
    const buffers: Uint8Array[] = [];
    let bytes = 0;
    for (let i = 0; i < batch.length; i++) {
      const { payload } = batch[i]!;
      const at = i * RECORD_HEADER_BYTES;
      writeRecordHeader(headers, at, payload);
      buffers.push(headers.subarray(at, at + RECORD_HEADER_BYTES));
      if (payload.length > 0) buffers.push(payload);
      bytes += recordBytes(payload.length);
    }
    try {
      if (this.truncatePending) {
        await this.handle.truncate(position);
        this.truncatePending = false;
      }
      await this.writeAll(buffers, position, bytes);
      if (this.fsync !== 'none') {
        await this.options.io.datasync(this.handle);
        this.counters.syncs++;
      }
    } catch (error) {
      await this.fail(batch, error, position);
      return;
    }
    if (this.failedAttempts > 0) {
      this.options.log(
        `journal: writes to ${this.segment.path} succeed again after ${this.failedAttempts} failed attempt(s)`,
      );
    }
    this.failedAttempts = 0;
    this.retryDelayMs = undefined;
    const firstSeq = this.seq;
    this.offset += bytes;
    this.seq += batch.length;
    this.isHealthy = true;
    // Linger only for records that queued up during this write: callers reacting to the resolutions
    // below append after this point, and a lone append must not wait.
    this.lingerNext = batch.length > 1 && this.queue.length > 0 && this.options.maxBatchDelayMs > 0;
    this.counters.records += batch.length;
    this.counters.batches++;
    this.counters.bytes += bytes;
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(firstSeq + i);
  }

  private async writeAll(buffers: Uint8Array[], position: number, total: number): Promise<void> {
    let written = 0;
    let rest = buffers;
    while (written < total) {
      const n = await this.options.io.writev(this.handle, rest, position + written);
      if (n <= 0) throw Object.assign(new Error(`writev wrote ${n} bytes`), { code: 'EIO' });
      written += n;
      if (written < total) rest = dropLeadingBytes(rest, n);
    }
  }

  private async fail(batch: PendingAppend[], cause: unknown, position: number): Promise<void> {
    const code = errorCode(cause, 'EIO');
    const error = new JournalWriteError(
      `journal write of ${batch.length} record(s) to ${this.segment.path} failed (${code})`,
      { code, file: this.segment.path, offset: position, records: batch.length, cause },
    );
    this.isHealthy = false;
    this.error = error;
    this.lingerNext = false;
    this.counters.writeErrors++;
    // Part of the batch may be in the file. A later, shorter batch written at the same offset would
    // leave that garbage behind it, so cut the file back to the last good record now.
    try {
      await this.handle.truncate(this.offset);
      this.truncatePending = false;
    } catch {
      this.truncatePending = true;
    }
    this.failedAttempts++;
    if (this.options.retryFailedWrites && !this.closing) {
      // Back at the head of the queue, in order; the payloads are rewritten in full on retry, so a
      // later successful fdatasync covers fresh pages rather than ones whose writeback failed.
      this.queue.unshift(...batch);
      this.queuedBytes += batch.reduce((sum, pending) => sum + recordBytes(pending.payload.length), 0);
      const delayMs =
        this.retryDelayMs === undefined
          ? this.options.retryDelayMs
          : Math.min(this.retryDelayMs * 2, this.options.maxRetryDelayMs);
      this.retryDelayMs = delayMs;
      this.options.log(`${error.message}; retrying ${batch.length} record(s) in ${delayMs} ms`);
      return;
    }
    for (const pending of batch) pending.reject(error);
  }

  private async roll(): Promise<void> {
    const old = this.handle;
    if (this.truncatePending) {
      await old.truncate(this.offset);
      this.truncatePending = false;
    }
    // Every segment but the last is complete on disk, in every mode: the reader relies on this to
    // tell a torn tail (allowed only at the very end) from corruption.
    await this.options.io.datasync(old);
    const { file, handle } = await createSegment(this.dir, this.seq);
    this.segment = file;
    this.handle = handle;
    this.offset = SEGMENT_HEADER_BYTES;
    this.counters.segmentsCreated++;
    await old.close().catch((error: unknown) => {
      this.options.log(`journal: closing a finished segment failed: ${String(error)}`);
    });
  }
}

function dropLeadingBytes(buffers: Uint8Array[], count: number): Uint8Array[] {
  let skip = count;
  let i = 0;
  while (i < buffers.length && skip >= buffers[i]!.length) {
    skip -= buffers[i]!.length;
    i++;
  }
  const rest = buffers.slice(i);
  if (skip > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(skip);
  return rest;
}
