import type { FileHandle } from 'node:fs/promises';
import {
  assertSeq,
  DEFAULT_MAX_RECORD_BYTES,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
} from './record-format.js';

/**
 * - `always`: each record is written and fdatasync'ed on its own before its append resolves.
 * - `batch`: group commit; records that queue up while a write+sync is in flight share the next one.
 * - `none`: grouped writes, never synced: survives a killed process (page cache), not a lost machine.
 */
export type FsyncMode = 'always' | 'batch' | 'none';

/** The file operations on the append path, replaceable to inject faults or count calls in tests. */
export interface JournalWriterIo {
  /** Writes `buffers` at `position`; resolves with the bytes written, which may be fewer than asked. */
  writev(handle: FileHandle, buffers: Uint8Array[], position: number): Promise<number>;
  datasync(handle: FileHandle): Promise<void>;
}

export interface JournalWriterOptions {
  fsync?: FsyncMode;
  /** A segment is closed and a new one started once the next record would take it past this size. */
  segmentBytes?: number;
  /** Most records one write may carry. */
  maxBatchRecords?: number;
  /** Most bytes one write may carry (a single larger record still goes alone). */
  maxBatchBytes?: number;
  /**
   * When a write carried more than one record and more queued up while it was in flight (signs of
   * sustained load), wait up to this long for the next batch to fill before writing it; a full batch
   * goes at once. 0 (the default) writes as soon as the previous write is done. A lone append never
   * waits, and neither do callers that append only after their previous append resolved.
   */
  maxBatchDelayMs?: number;
  maxRecordBytes?: number;
  /**
   * On a failed write or sync, keep the batch queued and retry it with backoff (`retryDelayMs`,
   * doubling up to `maxRetryDelayMs`) instead of rejecting it; its appends stay pending until it is
   * durable. For callers that applied the change before appending and cannot take it back. A batch
   * still failing when `close()` is called is rejected. Default false: a failed batch rejects.
   */
  retryFailedWrites?: boolean;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /**
   * Sequence number of the first record when the directory holds no segment yet. With segments
   * present, a smaller value is ignored and a larger one (records would be missing) is refused.
   */
  firstSeq?: number;
  log?: (line: string) => void;
  io?: Partial<JournalWriterIo>;
}

export interface ResolvedJournalWriterOptions {
  fsync: FsyncMode;
  segmentBytes: number;
  maxBatchRecords: number;
  maxBatchBytes: number;
  maxBatchDelayMs: number;
  maxRecordBytes: number;
  retryFailedWrites: boolean;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  firstSeq: number;
  log: (line: string) => void;
  io: JournalWriterIo;
}

export const JOURNAL_WRITER_DEFAULTS = {
  fsync: 'batch',
  segmentBytes: 64 * 1024 * 1024,
  maxBatchRecords: 1024,
  maxBatchBytes: 4 * 1024 * 1024,
  maxBatchDelayMs: 0,
  maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
  retryFailedWrites: false,
  retryDelayMs: 50,
  maxRetryDelayMs: 2000,
  firstSeq: 1,
} as const;

const MAX_BATCH_DELAY_MS = 2;
const MIN_SEGMENT_BYTES = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES;
// The length field is a u32.
const RECORD_BYTES_CEILING = 0xffff_ffff;

export const defaultJournalWriterIo: JournalWriterIo = {
  async writev(handle, buffers, position) {
    const { bytesWritten } = await handle.writev(buffers, position);
    return bytesWritten;
  },
  datasync: (handle) => handle.datasync(),
};

export function resolveJournalWriterOptions(
  options: JournalWriterOptions = {},
): ResolvedJournalWriterOptions {
  const fsync = options.fsync ?? JOURNAL_WRITER_DEFAULTS.fsync;
  if (fsync !== 'always' && fsync !== 'batch' && fsync !== 'none') {
    throw new RangeError(`fsync must be 'always', 'batch' or 'none', got ${String(fsync)}`);
  }
  const resolved: ResolvedJournalWriterOptions = {
    fsync,
    segmentBytes: integerOption(
      'segmentBytes',
      options.segmentBytes,
      JOURNAL_WRITER_DEFAULTS.segmentBytes,
      MIN_SEGMENT_BYTES,
    ),
    maxBatchRecords: integerOption(
      'maxBatchRecords',
      options.maxBatchRecords,
      JOURNAL_WRITER_DEFAULTS.maxBatchRecords,
      1,
    ),
    maxBatchBytes: integerOption(
      'maxBatchBytes',
      options.maxBatchBytes,
      JOURNAL_WRITER_DEFAULTS.maxBatchBytes,
      1,
    ),
    maxBatchDelayMs: options.maxBatchDelayMs ?? JOURNAL_WRITER_DEFAULTS.maxBatchDelayMs,
    maxRecordBytes: integerOption(
      'maxRecordBytes',
      options.maxRecordBytes,
      JOURNAL_WRITER_DEFAULTS.maxRecordBytes,
      0,
    ),
    retryFailedWrites: options.retryFailedWrites ?? JOURNAL_WRITER_DEFAULTS.retryFailedWrites,
    retryDelayMs: integerOption(
      'retryDelayMs',
      options.retryDelayMs,
      JOURNAL_WRITER_DEFAULTS.retryDelayMs,
      1,
    ),
    maxRetryDelayMs: integerOption(
      'maxRetryDelayMs',
      options.maxRetryDelayMs,
      JOURNAL_WRITER_DEFAULTS.maxRetryDelayMs,
      1,
    ),
    firstSeq: options.firstSeq ?? JOURNAL_WRITER_DEFAULTS.firstSeq,
    log: options.log ?? ((line) => console.warn(line)),
    io: { ...defaultJournalWriterIo, ...options.io },
  };
  const delay = resolved.maxBatchDelayMs;
  if (!Number.isFinite(delay) || delay < 0 || delay > MAX_BATCH_DELAY_MS) {
    throw new RangeError(`maxBatchDelayMs must be between 0 and ${MAX_BATCH_DELAY_MS}, got ${delay}`);
  }
  if (resolved.maxRecordBytes > RECORD_BYTES_CEILING) {
    throw new RangeError(
      `maxRecordBytes must be at most ${RECORD_BYTES_CEILING}, got ${resolved.maxRecordBytes}`,
    );
  }
  if (resolved.maxRetryDelayMs < resolved.retryDelayMs) {
    throw new RangeError(
      `maxRetryDelayMs (${resolved.maxRetryDelayMs}) must not be below retryDelayMs (${resolved.retryDelayMs})`,
    );
  }
  assertSeq(resolved.firstSeq, 'firstSeq');
  return resolved;
}

function integerOption(name: string, value: number | undefined, fallback: number, min: number): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved < min) {
    throw new RangeError(`${name} must be an integer of at least ${min}, got ${resolved}`);
  }
  return resolved;
}
