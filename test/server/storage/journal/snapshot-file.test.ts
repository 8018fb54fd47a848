import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJournal } from '../../../../server/storage/journal/journal-reader.js';
import { JournalWriter } from '../../../../server/storage/journal/journal-writer.js';
import {
  pruneBefore,
  readLatestSnapshot,
  snapshotFileName,
  writeSnapshot,
} from '../../../../server/storage/journal/snapshot-file.js';
import { bytes, text, useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();

// A toy state machine: each record is "key=value"; the state is the map; a snapshot is its JSON.
type State = Record<string, string>;
const apply = (state: State, payload: Uint8Array) => {
  const [key, value] = text(payload).split('=') as [string, string];
  state[key] = value;
};
const encodeState = (state: State) => bytes(JSON.stringify(state));
const decodeState = (payload: Uint8Array) => JSON.parse(text(payload)) as State;

async function recover(dir: string, logs: string[] = []): Promise<{ state: State; replayed: number[] }> {
  const log = (line: string) => logs.push(line);
  const snapshot = await readLatestSnapshot(dir, { log });
  const state = snapshot ? decodeState(snapshot.payload) : {};
  const replayed: number[] = [];
  for await (const { seq, payload } of readJournal(dir, { fromSeq: (snapshot?.seq ?? 0) + 1, log })) {
    apply(state, payload);
    replayed.push(seq);
  }
  return { state, replayed };
}

describe('snapshot files', () => {
  it('recovers from the snapshot at seq S plus the records after S, once older segments are pruned', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir, { segmentBytes: 150 });
    const live: State = {};
    let snapshotSeq = 0;
    for (let i = 1; i <= 60; i++) {
      const payload = bytes(`k${i % 7}=v${i}`);
      const seq = await writer.append(payload);
      apply(live, payload);
      if (i === 41) {
        snapshotSeq = seq;
        await writeSnapshot(dir, seq, encodeState(live));
      }
    }
    await writer.close();
    const segmentsBefore = (await readdir(dir)).filter((name) => name.endsWith('.wal'));

    const report = await pruneBefore(dir, snapshotSeq);
    expect(report.keptSnapshotSeq).toBe(41);
    expect(report.deletedSegments.length).toBeGreaterThan(0);
    const segmentsAfter = (await readdir(dir)).filter((name) => name.endsWith('.wal')).sort();
    expect(segmentsAfter.length).toBe(segmentsBefore.length - report.deletedSegments.length);
    // The oldest kept segment still holds record S + 1, and every deleted one held only records <= S.
    const oldestKept = Number(segmentsAfter[0]!.slice(0, 18));
    expect(oldestKept).toBeLessThanOrEqual(snapshotSeq + 1);
    for (const path of report.deletedSegments) expect(Number(path.slice(-22, -4))).toBeLessThan(oldestKept);

    const { state, replayed } = await recover(dir);
    expect(state).toEqual(live);
    expect(replayed).toEqual(Array.from({ length: 19 }, (_, i) => 42 + i));
  });

  it('writes the snapshot under its zero-padded name with magic, seq, length and checksum', async () => {
    const dir = await tempDir();
    const path = await writeSnapshot(dir, 42, bytes('state'));
    expect(path).toBe(join(dir, 'snapshot-000000000000000042.snap'));
    expect(await readdir(dir)).toEqual(['snapshot-000000000000000042.snap']);
    const raw = await readFile(path);
    expect(raw.subarray(0, 4).toString()).toBe('LWS1');
    expect(raw.readBigUInt64LE(8)).toBe(42n);
    expect(raw.readUInt32LE(16)).toBe(5);
    expect(await readLatestSnapshot(dir)).toEqual({ seq: 42, payload: bytes('state'), file: path });
  });

  it('falls back to the older snapshot when the newest one is broken, and logs the broken one', async () => {
    const dir = await tempDir();
    await writeSnapshot(dir, 10, bytes('older'));
    const newest = await writeSnapshot(dir, 20, bytes('newer'));
    const raw = await readFile(newest);
    raw[raw.length - 1]! ^= 0x01;
    await writeFile(newest, raw);
    const logs: string[] = [];
    const snapshot = await readLatestSnapshot(dir, { log: (line) => logs.push(line) });
    expect(snapshot).toMatchObject({ seq: 10, payload: bytes('older') });
    expect(logs).toEqual([
      expect.stringMatching(/skipping .*snapshot-000000000000000020\.snap: checksum mismatch/),
    ]);
  });

  it('skips a truncated snapshot and one whose header names another seq', async () => {
    const dir = await tempDir();
    await writeSnapshot(dir, 5, bytes('good'));
    const truncated = await writeSnapshot(dir, 6, bytes('will be cut'));
    await writeFile(truncated, (await readFile(truncated)).subarray(0, 30));
    const renamed = await writeSnapshot(dir, 7, bytes('moved'));
    await writeFile(join(dir, snapshotFileName(8)), await readFile(renamed));
    await writeFile(renamed, bytes('garbage'));
    const logs: string[] = [];
    expect(await readLatestSnapshot(dir, { log: (line) => logs.push(line) })).toMatchObject({ seq: 5 });
    expect(logs).toHaveLength(3);
    expect(logs[0]).toMatch(/file name says 8/);
  });

  it('returns undefined when there is no valid snapshot', async () => {
    const dir = await tempDir();
    expect(await readLatestSnapshot(dir)).toBeUndefined();
    await writeFile(join(dir, snapshotFileName(3)), bytes('not a snapshot'));
    expect(await readLatestSnapshot(dir, { log: () => {} })).toBeUndefined();
  });

  it('prunes older snapshots but keeps the newest valid one', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir);
    for (let i = 0; i < 5; i++) await writer.append(bytes(`r${i}`));
    await writer.close();
    await writeSnapshot(dir, 1, bytes('s1'));
    await writeSnapshot(dir, 3, bytes('s3'));
    const newest = await writeSnapshot(dir, 5, bytes('s5'));
    const report = await pruneBefore(dir, 5);
    expect(report.deletedSnapshots.map((path) => path.slice(dir.length + 1))).toEqual([
      snapshotFileName(1),
      snapshotFileName(3),
    ]);
    expect(await readLatestSnapshot(dir)).toMatchObject({ seq: 5, file: newest });
    // The only segment is the last one, which is never deleted.
    expect(report.deletedSegments).toEqual([]);
  });

  it('never prunes records that the newest valid snapshot does not cover', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir, { segmentBytes: 100 });
    for (let i = 0; i < 40; i++) await writer.append(bytes(`record-${i}`));
    await writer.close();

    const withoutSnapshot = await pruneBefore(dir, 30);
    expect(withoutSnapshot).toEqual({
      keptSnapshotSeq: undefined,
      deletedSegments: [],
      deletedSnapshots: [],
    });

    await writeSnapshot(dir, 10, bytes('state at 10'));
    await pruneBefore(dir, 30);
    const replayed: number[] = [];
    for await (const { seq } of readJournal(dir, { fromSeq: 11 })) replayed.push(seq);
    expect(replayed).toEqual(Array.from({ length: 30 }, (_, i) => 11 + i));
  });
});
