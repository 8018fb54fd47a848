import { cp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LeaseInfo } from '../../shared/frames.js';
import { journalDir, startJournalBroker } from '../fixtures/journal-broker.js';
import { RawClient } from '../helpers/raw-client.js';

const SNAPSHOT_EVERY = 20;

/** The durable part of the state, for comparing before and after a restart. */
async function durableState(store: {
  list(p: string): Promise<{ leases: LeaseInfo[]; revision: number }>;
  stats: { lastToken: number };
}) {
  const { leases, revision } = await store.list('');
  // expiresInMs counts from now; meta is a Buffer live and a Uint8Array after decoding: compare bytes.
  const normal = leases.map((l) => ({ ...l, expiresInMs: 0, meta: l.meta && [...l.meta] }));
  return { leases: normal, revision, lastToken: store.stats.lastToken };
}

describe('journal store: snapshots', () => {
  it('snapshots every snapshotEveryRecords records, prunes what they cover, and recovers the same state from snapshot + tail', async () => {
    const dir = await journalDir();
    const { store, logs, url, broker } = await startJournalBroker(
      dir,
      { snapshotEveryRecords: SNAPSHOT_EVERY },
      { journal: { segmentBytes: 2_048 } },
    );
    const a = await RawClient.session(url, { ttlMs: 30_000, owner: 'a' }, { label: 'a' });
    const b = await RawClient.session(url, { ttlMs: 30_000, owner: 'b' }, { label: 'b' });
    // Records so far: the two sessionOpened records. Every acquire and release below is one more.
    let records = 2;
    const held = new Map<string, number>();
    const change = async (i: number): Promise<void> => {
      const c = i % 3 === 0 ? b.client : a.client;
      const name = `s/${i % 7}`;
      const token = held.get(name);
      if (token === undefined) {
        const g = await c.call({ type: 'acquire', name, meta: new Uint8Array([i % 256]) }, 'granted');
        held.set(name, g.lease.token);
      } else {
        const owner = (await c.call({ type: 'get', name }, 'lease')).lease?.sessionId;
        const holder = owner === a.welcome.sessionId ? a.client : b.client;
        await holder.call({ type: 'release', name, token }, 'ok');
        held.delete(name);
      }
      records++;
      // One change at a time, so each snapshot lands exactly on a multiple of SNAPSHOT_EVERY.
      if (records % SNAPSHOT_EVERY === 0) await logs.waitFor(new RegExp(`snapshot written seq=${records} `));
    };
    let i = 0;
    while (records < 5 * SNAPSHOT_EVERY) await change(i++);

    const files = await readdir(dir);
    expect(files.filter((f) => f.endsWith('.snap'))).toEqual([
      `snapshot-${String(100).padStart(18, '0')}.snap`,
    ]);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const pruned = logs.lines
      .map((l) => Number(/segmentsPruned=(\d+)/.exec(l)?.[1] ?? 0))
      .reduce((x, y) => x + y, 0);
    expect(pruned).toBeGreaterThan(0);
    // The oldest segment left holds record 101 or an earlier one: nothing the snapshot does not cover is gone.
    const segments = files.filter((f) => f.endsWith('.wal')).sort();
    expect(Number(segments[0]!.slice(0, 18))).toBeLessThanOrEqual(101);
    expect(Number(segments[0]!.slice(0, 18))).toBeGreaterThan(1);

    // A tail shorter than the snapshot interval: recovery must replay it on top of the snapshot.
    const tail = 7;
    for (let t = 0; t < tail; t++) await change(i++);
    const before = await durableState(store);
    expect(before.leases.length).toBeGreaterThan(0);

    // The data dir as a kill -9 would leave it now: every change was answered, so it is written,
    // and no snapshot is in progress.
    const image = await journalDir();
    await cp(dir, image, { recursive: true, filter: (src) => !src.endsWith(join(dir, 'LOCK')) });
    const crashed = await startJournalBroker(image, { snapshotEveryRecords: SNAPSHOT_EVERY });
    expect(crashed.store.recovery).toMatchObject({ snapshotSeq: 100, recordsReplayed: tail });
    expect(await durableState(crashed.store)).toEqual(before);

    // A clean stop writes a final snapshot: nothing to replay, same state.
    await broker.close();
    const restarted = await startJournalBroker(dir, { snapshotEveryRecords: SNAPSHOT_EVERY });
    expect(restarted.store.recovery).toMatchObject({ snapshotSeq: 100 + tail, recordsReplayed: 0 });
    expect(await durableState(restarted.store)).toEqual(before);
  });
});
