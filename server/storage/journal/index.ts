export { crc32c } from './crc32c.js';
export {
  acquireDataDirLock,
  DataDirLockedError,
  type DataDirLockOptions,
  LOCK_FILE_NAME,
  type ReleaseDataDirLock,
} from './data-dir-lock.js';
export { JournalCorruptError, JournalWriteError } from './journal-errors.js';
export {
  JournalReading,
  type JournalReadOptions,
  type JournalReadSummary,
  type JournalRecord,
  type JournalRepairReport,
  readJournal,
} from './journal-reader.js';
export { JournalWriter, type JournalWriterStats } from './journal-writer.js';
export {
  defaultJournalWriterIo,
  type FsyncMode,
  JOURNAL_WRITER_DEFAULTS,
  type JournalWriterIo,
  type JournalWriterOptions,
  resolveJournalWriterOptions,
} from './journal-writer-options.js';
export { DEFAULT_MAX_RECORD_BYTES, segmentFileName } from './record-format.js';
export type { TornTailReport } from './segment-scanner.js';
export {
  type PruneReport,
  pruneBefore,
  readLatestSnapshot,
  type Snapshot,
  type SnapshotReadOptions,
  snapshotFileName,
  writeSnapshot,
} from './snapshot-file.js';
