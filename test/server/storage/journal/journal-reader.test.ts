import { appendFile, open, readdir, readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JournalCorruptError } from '../../../../server/storage/journal/journal-errors.js';
import { type JournalReadOptions, readJournal } from '../../../../server/storage/journal/journal-reader.js';
import { JournalWriter } from '../../../../server/storage/journal/journal-writer.js';
import {
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
} from '../../../../server/storage/journal/record-format.js';
import { bytes, text, useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();

// Every payload is 12 bytes, so record k (0-based) of a segment starts at a computable offset.
const PAYLOAD_BYTES = 12;
const RECORD_SIZE = RECORD_HEADER_BYTES + PAYLOAD_BYTES;
const payloadFor = (seq: number) => `rec-${String(seq).padStart(8, '0')}`;
const offsetOf = (index: number) => SEGMENT_HEADER_BYTES + index * RECORD_SIZE;

async function writeJournal(dir: string, count: number, recordsPerSegment = 1000): Promise<string[]> {
  const writer = await JournalWriter.open(dir, { segmentBytes: offsetOf(recordsPerSegment) });
  for (let seq = 1; seq <= count; seq++) await writer.append(bytes(payloadFor(seq)));
  await writer.close();
  return (await readdir(dir)).sort().map((name) => join(dir, name));
}

async function read(dir: string, options: JournalReadOptions = {}) {
  const logs: string[] = [];
  const reading = readJournal(dir, { ...options, log: (line) => logs.push(line) });
  const records: { seq: number; text: string }[] = [];
  let error: unknown;
  try {
    for await (const record of reading) records.push({ seq: record.seq, text: text(record.payload) });
  } catch (caught) {
    error = caught;
  }
  return { records, logs, error, summary: error === undefined ? reading.summary : undefined };
}

async function patchByte(path: string, offset: number, change: (byte: number) => number): Promise<void> {
  const data = await readFile(path);
  data[offset] = change(data[offset]!);
  await writeFile(path, data);
}

const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('readJournal', () => {
  it('yields nothing for a directory without segments, or one that does not exist', async () => {
    const dir = await tempDir();
    expect((await read(dir)).summary).toMatchObject({ records: 0, nextSeq: undefined });
    expect((await read(join(dir, 'missing'))).summary).toMatchObject({ records: 0, nextSeq: undefined });
  });

  it('yields payloads that stay intact while later records are read through the same buffer', async () => {
    const dir = await tempDir();
    // One segment three times the size of the 1 MiB read buffer, so the buffer is refilled.
    const writer = await JournalWriter.open(dir);
    const expected: string[] = [];
    for (let i = 0; i < 3000; i++) expected.push(`${i}:`.padEnd(1000, String.fromCharCode(97 + (i % 26))));
    await Promise.all(expected.map((t) => writer.append(bytes(t))));
    await writer.close();
    const payloads: Uint8Array[] = [];
    for await (const record of readJournal(dir)) payloads.push(record.payload);
    expect(payloads.map(text)).toEqual(expected);
  });

  it('starts at fromSeq, skipping whole segments before it', async () => {
    const dir = await tempDir();
    await writeJournal(dir, 30, 4);
    const { records, summary } = await read(dir, { fromSeq: 14 });
    expect(records.map((r) => r.seq)).toEqual(seqs(14, 30));
    expect(records[0]!.text).toBe(payloadFor(14));
    expect(summary).toMatchObject({ records: 17, nextSeq: 31 });
    expect((await read(dir, { fromSeq: 31 })).records).toEqual([]);
  });

  it('refuses a fromSeq older than the oldest segment, since those records are gone', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir, { firstSeq: 100 });
    await writer.append(bytes('x'));
    await writer.close();
    const { error } = await read(dir, { fromSeq: 50 });
    expect(error).toBeInstanceOf(JournalCorruptError);
    expect((error as Error).message).toMatch(/records 50 to 99 are missing/);
  });

  it('refuses a fromSeq past the end of the journal, since the records in between are gone', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 5);
    const { error } = await read(dir, { fromSeq: 9 });
    expect(error).toMatchObject({
      file: segment,
      offset: offsetOf(5),
      reason: 'the journal ends before record 9: records 6 to 8 are missing',
    });
  });

  it('repairs a journal that ends before fromSeq by dropping the records older than fromSeq and continuing at fromSeq', async () => {
    const dir = await tempDir();
    const segments = await writeJournal(dir, 10, 4);
    const { records, summary } = await read(dir, { fromSeq: 14, repair: true });
    expect(records).toEqual([]);
    expect(summary?.nextSeq).toBe(14);
    expect(summary?.repair).toMatchObject({
      deletedFiles: segments,
      droppedRecords: 10,
      droppedRecordsExact: true,
    });
    expect(await readdir(dir)).toEqual([]);
    const writer = await JournalWriter.open(dir, { firstSeq: summary?.nextSeq });
    expect(await writer.append(bytes('first after the snapshot'))).toBe(14);
    await writer.close();
    expect((await read(dir, { fromSeq: 14 })).records).toEqual([
      { seq: 14, text: 'first after the snapshot' },
    ]);
  });

  it('cuts a record torn mid-payload off the last segment, logs it once, and lets the writer append after it', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 5);
    await truncate(segment!, offsetOf(4) + RECORD_HEADER_BYTES + 5);
    const { records, logs, summary } = await read(dir);
    expect(records.map((r) => r.seq)).toEqual(seqs(1, 4));
    expect(summary?.tornTail).toEqual({
      file: segment,
      offset: offsetOf(4),
      droppedBytes: RECORD_HEADER_BYTES + 5,
      reason: expect.stringMatching(/incomplete record/),
    });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain(segment!);
    expect(logs[0]).toContain(`at byte ${offsetOf(4)}`);
    expect(logs[0]).toContain(`dropped ${RECORD_HEADER_BYTES + 5} bytes`);
    expect(summary?.nextSeq).toBe(5);
    expect((await stat(segment!)).size).toBe(offsetOf(4));

    const writer = await JournalWriter.open(dir);
    expect(await writer.append(bytes(payloadFor(5)))).toBe(5);
    await writer.close();
    const again = await read(dir);
    expect(again.records.map((r) => r.text)).toEqual(seqs(1, 5).map(payloadFor));
    expect(again.logs).toEqual([]);
  });

  it('cuts a torn record header (fewer than 8 bytes) off the last segment', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 3);
    await truncate(segment!, offsetOf(2) + 3);
    const { records, summary } = await read(dir);
    expect(records.map((r) => r.seq)).toEqual([1, 2]);
    expect(summary?.tornTail).toMatchObject({ offset: offsetOf(2), droppedBytes: 3 });
  });

  it('treats a full-length last record with a zeroed payload as a torn tail', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 4);
    const handle = await open(segment!, 'r+');
    await handle.write(new Uint8Array(PAYLOAD_BYTES), 0, PAYLOAD_BYTES, offsetOf(3) + RECORD_HEADER_BYTES);
    await handle.close();
    const { records, summary } = await read(dir);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(summary?.tornTail).toMatchObject({
      offset: offsetOf(3),
      droppedBytes: RECORD_SIZE,
      reason: expect.stringMatching(/checksum/),
    });
    const writer = await JournalWriter.open(dir);
    expect(writer.nextSeq).toBe(4);
    await writer.close();
  });

  it('treats zeros after the last record (a file extended but never written) as a torn tail', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 3);
    await appendFile(segment!, new Uint8Array(4096));
    const { records, summary } = await read(dir);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(summary?.tornTail).toMatchObject({ offset: offsetOf(3), droppedBytes: 4096 });
  });

  it('lets the writer cut a torn tail itself when it opens first', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 3);
    await truncate(segment!, offsetOf(2) + 10);
    const logs: string[] = [];
    const writer = await JournalWriter.open(dir, { log: (line) => logs.push(line) });
    expect(logs).toEqual([expect.stringContaining(`cut torn tail of ${segment} at byte ${offsetOf(2)}`)]);
    expect(await writer.append(bytes(payloadFor(3)))).toBe(3);
    await writer.close();
    expect((await read(dir)).records.map((r) => r.text)).toEqual(seqs(1, 3).map(payloadFor));
  });

  it('throws JournalCorruptError naming file and offset for a flipped byte mid-journal, after yielding the records before it', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 10);
    await patchByte(segment!, offsetOf(4) + RECORD_HEADER_BYTES + 3, (b) => b ^ 0x01);
    const { records, error } = await read(dir);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(error).toBeInstanceOf(JournalCorruptError);
    expect(error).toMatchObject({ code: 'JOURNAL_CORRUPT', file: segment, offset: offsetOf(4) });
    expect((error as Error).message).toContain(segment!);
    expect((error as Error).message).toContain(`byte ${offsetOf(4)}`);
    // Nothing was changed on disk without repair.
    expect((await stat(segment!)).size).toBe(offsetOf(10));
    await expect(JournalWriter.open(dir)).rejects.toBeInstanceOf(JournalCorruptError);
  });

  it('throws for an impossible record length even at the end of the last segment', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 3);
    await patchByte(segment!, offsetOf(2) + 3, () => 0x7f);
    const { records, error } = await read(dir);
    expect(records).toHaveLength(2);
    expect(error).toMatchObject({
      file: segment,
      offset: offsetOf(2),
      reason: expect.stringMatching(/impossible/),
    });
  });

  it('treats a length that runs past the end of the file as corruption when intact records follow it', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 10);
    // Record 3's length now claims 1 MiB: without the check this would look like a torn tail and
    // silently drop records 4 to 10.
    await patchByte(segment!, offsetOf(2) + 2, () => 0x10);
    const { records, error } = await read(dir);
    expect(records.map((r) => r.seq)).toEqual([1, 2]);
    expect(error).toMatchObject({
      file: segment,
      offset: offsetOf(2),
      reason: expect.stringMatching(/intact record/),
    });
  });

  it('repairs mid-journal damage by keeping the valid prefix and reporting exactly what it dropped', async () => {
    const dir = await tempDir();
    const segments = await writeJournal(dir, 12, 4);
    expect(segments).toHaveLength(3);
    // Damage record 6, the second record of the second segment.
    await patchByte(segments[1]!, offsetOf(1) + RECORD_HEADER_BYTES, (b) => b ^ 0xff);
    const { records, logs, summary, error } = await read(dir, { repair: true });
    expect(error).toBeUndefined();
    expect(records.map((r) => r.seq)).toEqual(seqs(1, 5));
    expect(summary?.repair).toEqual({
      file: segments[1],
      offset: offsetOf(1),
      reason: 'record checksum mismatch',
      deletedFiles: [segments[2]],
      droppedBytes: 3 * RECORD_SIZE + offsetOf(4),
      firstDroppedSeq: 6,
      droppedRecords: 7,
      droppedRecordsExact: true,
    });
    expect(summary?.nextSeq).toBe(6);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain(segments[1]!);
    expect(logs[0]).toContain(`byte ${offsetOf(1)}`);
    expect(logs[0]).toContain('7 record(s) from sequence 6');
    expect((await readdir(dir)).sort().map((name) => join(dir, name))).toEqual(segments.slice(0, 2));
    expect((await stat(segments[1]!)).size).toBe(offsetOf(1));

    const writer = await JournalWriter.open(dir);
    expect(await writer.append(bytes('after repair'))).toBe(6);
    await writer.close();
    const after = await read(dir);
    expect(after.error).toBeUndefined();
    expect(after.records.at(-1)).toEqual({ seq: 6, text: 'after repair' });
  });

  it('says when the number of records a repair dropped is only a lower bound', async () => {
    const dir = await tempDir();
    const [segment] = await writeJournal(dir, 10);
    await patchByte(segment!, offsetOf(7) + RECORD_HEADER_BYTES, (b) => b ^ 0x40);
    const { records, summary } = await read(dir, { repair: true });
    expect(records).toHaveLength(7);
    expect(summary?.repair).toMatchObject({
      deletedFiles: [],
      droppedBytes: 3 * RECORD_SIZE,
      droppedRecords: 0,
      droppedRecordsExact: false,
    });
  });

  it('treats a gap in sequence numbers between segments as corruption', async () => {
    const dir = await tempDir();
    const segments = await writeJournal(dir, 12, 4);
    await unlink(segments[1]!);
    const { records, error } = await read(dir);
    expect(records.map((r) => r.seq)).toEqual(seqs(1, 4));
    expect(error).toMatchObject({
      file: segments[2],
      offset: 0,
      reason: expect.stringMatching(/expected a segment starting at 5/),
    });

    const repaired = await read(dir, { repair: true });
    expect(repaired.summary?.repair).toMatchObject({
      deletedFiles: [segments[2]],
      droppedRecords: 4,
      firstDroppedSeq: 5,
    });
    expect(repaired.summary?.nextSeq).toBe(5);
  });

  it('treats a torn-looking end of a segment that is not the last as corruption', async () => {
    const dir = await tempDir();
    const segments = await writeJournal(dir, 8, 4);
    await truncate(segments[0]!, offsetOf(3) + 4);
    const { records, error } = await read(dir);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(error).toMatchObject({
      file: segments[0],
      offset: offsetOf(3),
      reason: expect.stringMatching(/not the last/),
    });
  });

  it('treats a damaged segment header as corruption and repairs by dropping that segment', async () => {
    const dir = await tempDir();
    const segments = await writeJournal(dir, 8, 4);
    await patchByte(segments[1]!, 1, (b) => b ^ 0x20);
    const { error } = await read(dir);
    expect(error).toMatchObject({ file: segments[1], offset: 0, reason: expect.stringMatching(/magic/) });
    const repaired = await read(dir, { repair: true });
    expect(repaired.records.map((r) => r.seq)).toEqual(seqs(1, 4));
    expect(repaired.summary?.repair).toMatchObject({ deletedFiles: [segments[1]], firstDroppedSeq: 5 });
  });
});
