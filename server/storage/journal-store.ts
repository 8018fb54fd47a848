import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LeasewireError } from '../../shared/errors.js';
import type { Clock } from '../clock.js';
import type { ChangeRecord, LeaseTableOptions } from '../core/types.js';
import type { Logger } from '../log.js';
import {
  acquireDataDirLock,
  type FsyncMode,
  JournalWriter,
  type JournalWriterIo,
  pruneBefore,
  type ReleaseDataDirLock,
  readJournal,
  readLatestSnapshot,
  writeSnapshot,
} from './journal/index.js';
import { decodeRecords, decodeSnapshot, encodeRecords, encodeSnapshot } from './journal-codec.js';
import { newEpoch } from './session-secret.js';
import { type StoreObserver, TableStore } from './table-store.js';

export interface JournalStoreOptions {
  dataDir: string;
  fsync: FsyncMode;
  repair: boolean;
  snapshotEveryRecords: number;
  /** Tests inject failing I/O here to play disk-full. */
  io?: Partial<JournalWriterIo>;
  /** Tests shrink segments so that pruning after a snapshot deletes some. Default: the writer's. */
  segmentBytes?: number;
}

/** What recovery found, for the start-up log line and tests. */
export interface RecoveryReport {
  snapshotSeq: number | undefined;
  recordsReplayed: number;
  sessions: number;
  leases: number;
  revision: number;
  lastToken: number;
  durationMs: number;
}

/**
 * The durable store: the in-memory lease table plus an append-only journal of its changes and
 * periodic snapshots. Every change is journalled before anyone hears of it (D1). Recovery =
 * newest valid snapshot + replay of the records after it; every recovered session then gets a
 * grace deadline of now + its TTL (R1), and the fencing and revision counters continue above
 * every value the journal holds (R3).
 */
export class JournalStore extends TableStore {
  private writer: JournalWriter | undefined;
  private releaseLock: ReleaseDataDirLock | undefined;
  private recordsSinceSnapshot = 0;
  private snapshotting: Promise<void> | undefined;
  recovery: RecoveryReport | undefined;

  constructor(
    clock: Clock,
    tableOptions: Partial<LeaseTableOptions>,
    log: Logger,
    private readonly journal: JournalStoreOptions,
    observer?: StoreObserver,
  ) {
    super(clock, tableOptions, log, observer);
  }

  override get writable(): boolean {
    return super.writable && (this.writer?.healthy ?? false);
  }

  async open(): Promise<void> {
    const started = performance.now();
    const dir = this.journal.dataDir;
    const logLine = (line: string) => this.log.warn(line);
    this.releaseLock = await acquireDataDirLock(dir, { log: logLine });
    try {
      this.epoch = await readOrCreateEpoch(dir);
      const snap = await readLatestSnapshot(dir, { log: logLine });
      const now = this.clock.now();
      if (snap) this.table.restore(now, decodeSnapshot(snap.payload));
      const reading = readJournal(dir, {
        ...(snap ? { fromSeq: snap.seq + 1 } : {}),
        repair: this.journal.repair,
        log: logLine,
      });
      let records = 0;
      for await (const { payload } of reading) {
        for (const rec of decodeRecords(payload)) this.table.apply(now, rec);
        records++;
      }
      // R1: grace counts from the end of recovery, however long the replay took.
      this.table.extendDeadlines(this.clock.now());
      this.table.drain();
      const nextSeq = reading.summary.nextSeq ?? (snap ? snap.seq + 1 : 1);
      this.writer = await JournalWriter.open(dir, {
        fsync: this.journal.fsync,
        firstSeq: nextSeq,
        log: logLine,
        retryFailedWrites: true,
        ...(this.journal.io ? { io: this.journal.io } : {}),
        ...(this.journal.segmentBytes ? { segmentBytes: this.journal.segmentBytes } : {}),
      });
      this.recordsSinceSnapshot = records;
      const stats = this.stats;
      this.recovery = {
        snapshotSeq: snap?.seq,
        recordsReplayed: records,
        sessions: stats.sessions,
        leases: stats.leases,
        revision: stats.revision,
        lastToken: stats.lastToken,
        durationMs: Math.round(performance.now() - started),
      };
      this.log.info('journal recovered', { dir, ...this.recovery, fsync: this.journal.fsync });
      this.rearm();
    } catch (err) {
      await this.releaseLock();
      this.releaseLock = undefined;
      throw err;
    }
  }

  override async close(): Promise<void> {
    // super.close() waits until every change in flight is durable, and the writer retries a failed
    // write until it is closed: while the disk refuses writes, that wait would never end. So the
    // writer closes alongside: it still writes what it can and rejects the rest (D2: never acknowledged).
    const writer = this.writer;
    const writerClosed = writer?.close().then(
      () => true,
      (err: unknown) => {
        this.log.error('journal close failed', { error: String(err) });
        return false;
      },
    );
    await super.close();
    if (this.snapshotting) await this.snapshotting.catch(() => {});
    if (writer && (await writerClosed)) {
      // A snapshot on the way out makes the next start-up replay little (not over records that failed).
      if (this.recordsSinceSnapshot > 0 && writer.healthy) await this.takeSnapshot().catch(() => {});
    }
    this.writer = undefined;
    await this.releaseLock?.();
    this.releaseLock = undefined;
  }

  protected override assertWritable(): void {
    super.assertWritable();
    const w = this.writer;
    if (w && !w.healthy) {
      // D2: refuse new changes while the disk refuses writes; those already applied wait for the retry.
      const reason = w.lastError ? `${w.lastError.message}` : 'journal unavailable';
      throw new LeasewireError('UNAVAILABLE', `changes cannot be made durable: ${reason}`);
    }
  }

  protected persist(records: ChangeRecord[]): Promise<void> {
    const writer = this.writer;
    if (!writer) return Promise.reject(new LeasewireError('UNAVAILABLE', 'the journal is not open'));
    this.recordsSinceSnapshot++;
    return writer.append(encodeRecords(records)).then(() => {
      if (this.recordsSinceSnapshot >= this.journal.snapshotEveryRecords && !this.snapshotting) {
        this.snapshotting = this.takeSnapshot()
          .catch((err: unknown) => this.log.error('snapshot failed', { error: String(err) }))
          .finally(() => {
            this.snapshotting = undefined;
          });
      }
    });
  }

  /**
   * R2: a fuzzy snapshot. The table already reflects every record handed to the writer, so the
   * state now covers at least every record written so far (seq <= nextSeq - 1); records written
   * later are replayed on top, and replay skips what the snapshot already holds.
   */
  private async takeSnapshot(): Promise<void> {
    const writer = this.writer;
    if (!writer) return;
    const seq = writer.nextSeq - 1;
    const payload = encodeSnapshot(this.table.snapshot());
    this.recordsSinceSnapshot = 0;
    if (seq < 1) return;
    const started = performance.now();
    await writeSnapshot(this.journal.dataDir, seq, payload);
    const pruned = await pruneBefore(this.journal.dataDir, seq, { log: (l) => this.log.warn(l) });
    this.log.info('snapshot written', {
      seq,
      bytes: payload.length,
      ms: Math.round(performance.now() - started),
      segmentsPruned: pruned.deletedSegments.length,
    });
  }
}

/** The data dir's epoch: made once, kept for its life, so clients can tell a wiped dir from a restart. */
async function readOrCreateEpoch(dir: string): Promise<string> {
  const file = join(dir, 'EPOCH');
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (/^[\w-]{4,64}$/.test(text)) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const epoch = newEpoch();
  await writeFile(`${file}.tmp`, `${epoch}\n`, { flush: true });
  await rename(`${file}.tmp`, file);
  // The rename is durable only once the directory is: an OS crash must not bring a new epoch.
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return epoch;
}
