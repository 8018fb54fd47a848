/**
 * The journal's bytes do not form a valid sequence of records: a bad checksum or impossible length
 * that is not a torn tail, a bad segment header, or a gap in sequence numbers between segments.
 * `file` and `offset` point at the first byte that could not be trusted.
 */
export class JournalCorruptError extends Error {
  readonly code = 'JOURNAL_CORRUPT';
  readonly file: string;
  readonly offset: number;
  readonly reason: string;

  constructor(file: string, offset: number, reason: string) {
    super(
      `journal is corrupt: ${reason} (${file} at byte ${offset}); readJournal with repair: true keeps the valid prefix`,
    );
    this.name = 'JournalCorruptError';
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

export interface JournalWriteErrorDetails {
  /** The OS error code (`ENOSPC`, `EIO`, ...), or `JOURNAL_CLOSED` when appending after close. */
  code: string;
  file: string;
  /** Byte offset in `file` where the failed batch was to start (the last good end). */
  offset: number;
  /** Records in the failed batch; none of them was acknowledged. */
  records: number;
  cause?: unknown;
}

/** An append was not made durable. Every append of the failed batch rejects with the same error. */
export class JournalWriteError extends Error {
  readonly code: string;
  readonly file: string;
  readonly offset: number;
  readonly records: number;

  constructor(message: string, details: JournalWriteErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'JournalWriteError';
    this.code = details.code;
    this.file = details.file;
    this.offset = details.offset;
    this.records = details.records;
  }
}

export function errorCode(error: unknown, fallback: string): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return fallback;
}
