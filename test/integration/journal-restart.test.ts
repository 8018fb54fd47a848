import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { LeaseEvent } from '../../shared/frames.js';
import { journalDir, startJournalBroker } from '../fixtures/journal-broker.js';
import { JournalFixture } from '../fixtures/journal-fixture.js';
import { RawClient } from '../helpers/raw-client.js';

function resume(url: string, s: { sessionId: string; secret: string }, label: string) {
  return RawClient.open(url, { label }).then(async (client) => ({
    client,
    reply: await client.request({ type: 'hello', version: 1, sessionId: s.sessionId, secret: s.secret }),
  }));
}

describe('journal store: restarts', () => {
  it('keeps sessions, leases and tokens, and continues tokens and revisions above them', async () => {
    const dir = await journalDir();
    const first = await startJournalBroker(dir);
    const a = await RawClient.session(first.url, { ttlMs: 10_000, owner: 'a' }, { label: 'a' });
    const b = await RawClient.session(first.url, { ttlMs: 10_000, owner: 'b' }, { label: 'b' });
    const ga = await a.client.call({ type: 'acquire', name: 'jobs/a' }, 'granted');
    const gb = await a.client.call({ type: 'acquire', name: 'jobs/b', ttlMs: 60_000 }, 'granted');
    const gc = await b.client.call({ type: 'acquire', name: 'jobs/c' }, 'granted');
    const released = await b.client.call({ type: 'release', name: 'jobs/c', token: gc.lease.token }, 'ok');
    const before = await a.client.call({ type: 'list', prefix: '' }, 'leases');
    await first.broker.close();

    const second = await startJournalBroker(dir);
    expect(second.store.recovery).toMatchObject({
      sessions: 2,
      leases: 2,
      revision: released.revision,
      lastToken: gc.lease.token,
    });
    const ra = await resume(second.url, a.welcome, 'a again');
    expect(ra.reply).toMatchObject({ type: 'welcome', resumed: true, sessionId: a.welcome.sessionId });
    expect(ra.reply.type === 'welcome' && ra.reply.leases).toEqual([
      { name: 'jobs/a', token: ga.lease.token },
      { name: 'jobs/b', token: gb.lease.token, ttlMs: 60_000 },
    ]);
    const after = await ra.client.call({ type: 'list', prefix: '' }, 'leases');
    const strip = (l: (typeof after.leases)[number]) => ({ ...l, expiresInMs: 0 });
    expect(after.leases.map(strip)).toEqual(before.leases.map(strip));
    expect(after.revision).toBe(before.revision);

    // L5/R3: the next grant's token and revision are above everything issued before the restart.
    const rb = await resume(second.url, b.welcome, 'b again');
    expect(rb.reply).toMatchObject({ type: 'welcome', resumed: true, leases: [] });
    const next = await rb.client.call({ type: 'acquire', name: 'jobs/c' }, 'granted');
    expect(next.lease.token).toBe(gc.lease.token + 1);
    expect(next.lease.revision).toBe(released.revision + 1);
  });

  it('gives every recovered session a fresh grace of its TTL and expires those that do not come back, visibly to a watcher resuming by fromRevision', async () => {
    const dir = await journalDir();
    const ttlMs = 600;
    const first = await startJournalBroker(dir);
    const gone = await RawClient.session(first.url, { ttlMs, owner: 'gone' }, { label: 'gone' });
    // The session that comes back has a longer TTL, so a slow machine cannot make it miss its grace.
    const back = await RawClient.session(first.url, { ttlMs: 10_000, owner: 'back' }, { label: 'back' });
    const watcher = await RawClient.session(first.url, { ttlMs: 20_000, owner: 'w' }, { label: 'watcher' });
    const watching = await watcher.client.call({ type: 'watch', prefix: '' }, 'watching');
    const x = await gone.client.call({ type: 'acquire', name: 'x' }, 'granted');
    const y = await back.client.call({ type: 'acquire', name: 'y' }, 'granted');
    const seen = await watcher.client.waitForEvents((evs) => evs.length === 2, { label: 'both grants' });
    const lastSeen = seen.at(-1)!.revision;
    expect(lastSeen).toBe(y.lease.revision);
    expect(watching.revision).toBe(0);
    await first.broker.close();
    // Down for longer than the TTL: the grace counts from recovery, not from when they were last heard.
    await delay(ttlMs + 100);

    const recoveryStarted = performance.now();
    const second = await startJournalBroker(dir);
    const [w, kept] = await Promise.all([
      resume(second.url, watcher.welcome, 'watcher again'),
      resume(second.url, back.welcome, 'back again'),
    ]);
    expect(w.reply).toMatchObject({ type: 'welcome', resumed: true });
    expect(kept.reply).toMatchObject({
      type: 'welcome',
      resumed: true,
      leases: [{ name: 'y', token: y.lease.token }],
    });
    const replay = await w.client.call({ type: 'watch', prefix: '', fromRevision: lastSeen }, 'watching');
    expect(replay.events).toEqual([]);

    const [expired] = await w.client.waitForEvents((evs) => evs.length > 0, {
      label: 'the expiry of the session that did not come back',
    });
    const expiredAfterMs = performance.now() - recoveryStarted;
    expect(expired).toMatchObject({
      kind: 'expired',
      name: 'x',
      token: x.lease.token,
      sessionId: gone.welcome.sessionId,
      reason: 'session-expired',
      revision: lastSeen + 1,
    } satisfies Partial<LeaseEvent>);
    // Not before the grace: recovery ended after recoveryStarted, and the deadline is its end + TTL.
    expect(expiredAfterMs).toBeGreaterThanOrEqual(ttlMs);
    const late = await resume(second.url, gone.welcome, 'gone again');
    expect(late.reply).toMatchObject({ type: 'error', code: 'SESSION_EXPIRED' });
    // The session that came back kept its lease.
    const got = await w.client.call({ type: 'get', name: 'y' }, 'lease');
    expect(got.lease).toMatchObject({ token: y.lease.token, sessionId: back.welcome.sessionId });
  });

  it.each(['a snapshot', 'the journal alone'])(
    'restores the watch history from %s: fromRevision replays it, older revisions answer COMPACTED',
    async (source) => {
      const dir = await journalDir();
      const historyLimit = 5;
      let events: LeaseEvent[];
      let revision: number;
      if (source === 'a snapshot') {
        // A clean close writes a snapshot; the history travels in it.
        const first = await startJournalBroker(dir, { historyLimit });
        const c = await RawClient.session(first.url, {}, { label: 'writer' });
        await c.client.call({ type: 'watch', prefix: '' }, 'watching');
        for (let i = 0; i < 4; i++) {
          const g = await c.client.call({ type: 'acquire', name: `h/${i}` }, 'granted');
          if (i % 2 === 0)
            await c.client.call({ type: 'release', name: `h/${i}`, token: g.lease.token }, 'ok');
        }
        events = await c.client.waitForEvents((evs) => evs.length === 6, { label: 'six events' });
        revision = 6;
        await first.broker.close();
      } else {
        // No snapshot: replay rebuilds the history from the journal's events.
        const fx = await JournalFixture.create(dir);
        const s = fx.openSession('writer');
        for (let i = 0; i < 4; i++) {
          const g = fx.acquire(s.id, `h/${i}`);
          if (i % 2 === 0) fx.release(s.id, `h/${i}`, g.token);
        }
        const done = await fx.close();
        revision = done.revision;
        events = fx.table.eventsSince(0) ?? [];
      }
      expect(revision).toBe(6);

      const second = await startJournalBroker(dir, { historyLimit });
      expect(second.store.recovery?.snapshotSeq === undefined).toBe(source !== 'a snapshot');
      const w = await RawClient.session(second.url, {}, { label: 'watcher' });
      const oldest = revision - historyLimit + 1;
      const replay = await w.client.call({ type: 'watch', prefix: '', fromRevision: oldest - 1 }, 'watching');
      expect(replay.revision).toBe(revision);
      expect(replay.events).toEqual(events.slice(oldest - 1));
      const partial = await w.client.call(
        { type: 'watch', prefix: 'h/3', fromRevision: revision - 2 },
        'watching',
      );
      expect(partial.events?.map((e) => `${e.kind} ${e.name}`)).toEqual(['acquired h/3']);
      const compacted = await w.client.request({ type: 'watch', prefix: '', fromRevision: oldest - 2 });
      expect(compacted).toMatchObject({
        type: 'error',
        code: 'COMPACTED',
        details: { oldestRevision: oldest },
      });
      const ahead = await w.client.request({ type: 'watch', prefix: '', fromRevision: revision + 1 });
      expect(ahead).toMatchObject({ type: 'error', code: 'COMPACTED' });
    },
  );
});
