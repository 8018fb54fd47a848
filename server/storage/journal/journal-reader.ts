import { stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { JournalCorruptError } from './journal-errors.js';
import { assertSeq, DEFAULT_MAX_RECORD_BYTES, SEGMENT_HEADER_BYTES } from './record-format.js';
import { fsyncDir, listSegments, type SegmentFile, truncateFile } from './segment-files.js';
import { describeTornTail, SegmentScanner, type TornTailReport } from './segment-scanner.js';

export interface JournalReadOptions {
  /** First sequence number to yield; earlier records are skipped. Default: the oldest record kept. */
  fromSeq?: number;
  /**
   * Instead of throwing on damage that is not a torn tail, keep the valid prefix: cut the damaged
   * segment at its last intact record, delete the segments after it, and report what was dropped.
   */
  repair?: boolean;
  log?: (line: string) => void;
  maxRecordBytes?: number;
}

export interface JournalRecord {
  seq: number;
  payload: Uint8Array;
}

export interface JournalRepairReport {
  /** The file and byte offset where the damage starts. */
  file: string;
  offset: number;
  reason: string;
  /** Segments deleted: those after `file`, and `file` itself when nothing in it could be kept. */
  deletedFiles: string[];
  /** All bytes dropped: the cut-off end of `file` plus the deleted files. */
  droppedBytes: number;
  /** Sequence number of the first dropped record. */
  firstDroppedSeq: number;
  /** Intact records found in what was dropped; a lower bound unless `droppedRecordsExact`. */
  droppedRecords: number;
  droppedRecordsExact: boolean;
}

export interface JournalReadSummary {
  /** Records yielded (those at or after `fromSeq`). */
  records: number;
  /**
   * The sequence number the journal continues at: pass it to the writer as `firstSeq` (it matters
   * when a repair emptied the directory). Undefined for an empty directory.
   */
  nextSeq: number | undefined;
  tornTail: TornTailReport | undefined;
  repair: JournalRepairReport | undefined;
}

interface Damage {
  segments: SegmentFile[];
  index: number;
  /** Bytes of the damaged segment to keep; 0 deletes it. */
  keepBytes: number;
  offset: number;
  reason: string;
  firstDroppedSeq: number;
}

/**
 * Reads the journal in `dir` in sequence order across segments. Iterate the result once; its
 * `summary` is available afterwards. A torn tail of the last segment is cut off and logged.
 * Any other damage throws {@link JournalCorruptError} after the records before it were yielded,
 * unless `repair` is set. Must not run while a writer has the journal open.
 *
 * @example
 * const reading = readJournal(dir, { fromSeq: snapshot.seq + 1 });
 * for await (const { seq, payload } of reading) apply(seq, payload);
 * const writer = await JournalWriter.open(dir, { firstSeq: reading.summary.nextSeq });
 */
export function readJournal(dir: string, options: JournalReadOptions = {}): JournalReading {
  return new JournalReading(dir, options);
}

export class JournalReading implements AsyncIterable<JournalRecord> {
  readonly dir: string;
  private readonly fromSeq: number | undefined;
  private readonly repair: boolean;
  private readonly log: (line: string) => void;
  private readonly maxRecordBytes: number;
  private started = false;
  private result: JournalReadSummary | undefined;

  constructor(dir: string, options: JournalReadOptions) {
    if (options.fromSeq !== undefined) assertSeq(options.fromSeq, 'fromSeq');
    this.dir = dir;
    this.fromSeq = options.fromSeq;
    this.repair = options.repair ?? false;
    this.log = options.log ?? ((line) => console.warn(line));
    this.maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  }

  /** What the read found; throws until iteration has finished. */
  get summary(): JournalReadSummary {
    if (!this.result) throw new Error('journal reading has not finished; iterate it to the end first');
    return this.result;
  }

  [Symbol.asyncIterator](): AsyncIterator<JournalRecord> {
    if (this.started) throw new Error('a JournalReading can be iterated only once');
    this.started = true;
    return this.records();
  }

  private async *records(): AsyncGenerator<JournalRecord> {
    const summary: JournalReadSummary = {
      records: 0,
      nextSeq: undefined,
      tornTail: undefined,
      repair: undefined,
    };
    const segments = await listSegments(this.dir);
    const first = segments[0];
    if (!first) {
      this.result = summary;
      return;
    }
    const fromSeq = this.fromSeq ?? first.firstSeq;
    if (fromSeq < first.firstSeq) {
      throw new JournalCorruptError(
        first.path,
        0,
        `records ${fromSeq} to ${first.firstSeq - 1} are missing: the oldest segment starts at ${first.firstSeq}`,
      );
    }
    // Start at the segment holding fromSeq; older ones are neither read nor checked.
    let index = 0;
    while (index + 1 < segments.length && segments[index + 1]!.firstSeq <= fromSeq) index++;
    let expectedSeq = segments[index]!.firstSeq;
    for (; index < segments.length; index++) {
      const segment = segments[index]!;
      if (segment.firstSeq !== expectedSeq) {
        summary.repair = await this.damaged({
          segments,
          index,
          keepBytes: 0,
          offset: 0,
          reason: `sequence numbers do not continue: expected a segment starting at ${expectedSeq}, found ${segment.firstSeq}`,
          firstDroppedSeq: expectedSeq,
        });
        break;
      }
      const scanner = await SegmentScanner.open(segment.path, segment.firstSeq, this.maxRecordBytes);
      try {
        for (let record = await scanner.next(); record; record = await scanner.next()) {
          if (record.seq < fromSeq) continue;
          summary.records++;
          // A copy, as a plain Uint8Array: the scanner reuses its buffer (and Buffer#slice would not copy).
          yield { seq: record.seq, payload: new Uint8Array(record.payload) };
        }
      } finally {
        await scanner.close();
      }
      expectedSeq = scanner.endSeq;
      const end = scanner.end!;
      if (end.kind === 'clean') continue;
      const isLast = index === segments.length - 1;
      if (end.kind === 'torn' && isLast) {
        await truncateFile(segment.path, scanner.validEnd);
        summary.tornTail = {
          file: segment.path,
          offset: end.offset,
          droppedBytes: scanner.fileBytes - scanner.validEnd,
          reason: end.reason,
        };
        this.log(describeTornTail(summary.tornTail));
        break;
      }
      summary.repair = await this.damaged({
        segments,
        index,
        keepBytes: scanner.validEnd,
        offset: end.offset,
        reason: end.kind === 'torn' ? `${end.reason}, in a segment that is not the last` : end.reason,
        firstDroppedSeq: scanner.endSeq,
      });
      expectedSeq = summary.repair.firstDroppedSeq;
      break;
    }
    if (fromSeq > expectedSeq) {
      // The journal ends before fromSeq: a snapshot newer than the journal, as an OS crash in fsync
      // `none` mode can leave. Appending at expectedSeq would give new records numbers the snapshot
      // already covers, and the next recovery would skip them.
      const reason = `the journal ends before record ${fromSeq}: records ${expectedSeq} to ${fromSeq - 1} are missing`;
      const last = segments.at(-1)!;
      if (!this.repair) throw new JournalCorruptError(last.path, (await stat(last.path)).size, reason);
      // Every record still here is older than fromSeq, so none is needed: drop them all.
      const remaining = await listSegments(this.dir);
      const dropped = await this.damaged({
        segments: remaining,
        index: 0,
        keepBytes: 0,
        offset: 0,
        reason,
        firstDroppedSeq: remaining[0]!.firstSeq,
      });
      summary.repair = summary.repair ? mergeRepairs(summary.repair, dropped) : dropped;
      expectedSeq = fromSeq;
    }
    summary.nextSeq = expectedSeq;
    this.result = summary;
  }

  private async damaged(damage: Damage): Promise<JournalRepairReport> {
    const segment = damage.segments[damage.index]!;
    if (!this.repair) throw new JournalCorruptError(segment.path, damage.offset, damage.reason);
    const report = await this.planRepair(damage);
    const later = damage.segments.slice(damage.index + 1).reverse();
    // Newest first, so that a crash halfway through leaves a journal that is still a valid prefix.
    for (const file of later) await unlink(file.path);
    if (damage.keepBytes >= SEGMENT_HEADER_BYTES) {
      await truncateFile(segment.path, damage.keepBytes);
    } else {
      await unlink(segment.path);
    }
    await fsyncDir(dirname(segment.path));
    const records = `${report.droppedRecords}${report.droppedRecordsExact ? '' : ' or more'} record(s)`;
    this.log(
      `journal: repair dropped ${report.droppedBytes} bytes from ${report.file} at byte ${report.offset} ` +
        `(${report.reason}) and deleted ${report.deletedFiles.length} file(s)` +
        `${report.deletedFiles.length > 0 ? ` [${report.deletedFiles.join(', ')}]` : ''}: ` +
        `${records} from sequence ${report.firstDroppedSeq}`,
    );
    return report;
  }

  // Counts what a repair will drop, before anything is deleted.
  private async planRepair(damage: Damage): Promise<JournalRepairReport> {
    const segment = damage.segments[damage.index]!;
    const later = damage.segments.slice(damage.index + 1);
    const keepsDamaged = damage.keepBytes >= SEGMENT_HEADER_BYTES;
    const deleted = keepsDamaged ? later : [segment, ...later];
    let droppedBytes = 0;
    let droppedRecords = 0;
    let exact = true;
    if (keepsDamaged) {
      droppedBytes += (await stat(segment.path)).size - damage.keepBytes;
      // Records in the damaged stretch cannot be counted, but the next segment's name says where they ended.
      const next = later[0];
      if (next && next.firstSeq >= damage.firstDroppedSeq)
        droppedRecords += next.firstSeq - damage.firstDroppedSeq;
      else exact = false;
    }
    for (const [i, file] of deleted.entries()) {
      const scanner = await SegmentScanner.open(file.path, file.firstSeq, this.maxRecordBytes);
      try {
        while (await scanner.next()) {}
      } finally {
        await scanner.close();
      }
      droppedBytes += scanner.fileBytes;
      droppedRecords += scanner.records;
      const end = scanner.end!;
      const isLast = i === deleted.length - 1;
      if (!(end.kind === 'clean' || (end.kind === 'torn' && isLast))) exact = false;
      const following = deleted[i + 1];
      if (following && following.firstSeq !== scanner.endSeq) exact = false;
    }
    return {
      file: segment.path,
      offset: damage.offset,
      reason: damage.reason,
      deletedFiles: deleted.map((file) => file.path),
      droppedBytes,
      firstDroppedSeq: damage.firstDroppedSeq,
      droppedRecords,
      droppedRecordsExact: exact,
    };
  }
}

function mergeRepairs(first: JournalRepairReport, second: JournalRepairReport): JournalRepairReport {
  return {
    ...first,
    reason: `${first.reason}; then ${second.reason}`,
    deletedFiles: [...first.deletedFiles, ...second.deletedFiles],
    droppedBytes: first.droppedBytes + second.droppedBytes,
    droppedRecords: first.droppedRecords + second.droppedRecords,
    droppedRecordsExact: first.droppedRecordsExact && second.droppedRecordsExact,
    firstDroppedSeq: Math.min(first.firstDroppedSeq, second.firstDroppedSeq),
  };
}
