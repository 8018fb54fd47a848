import { afterEach, describe, expect, it } from 'vitest';
import { type Client, connect, type WatchItem } from '../../client/index.js';
import { type RunningBroker, startBroker } from '../../server/index.js';

// A memory broker that restarts starts a new history: its revisions are unrelated to the old
// ones. A watch must not "resume" into it from an old revision; it must start from a snapshot.

const brokers: RunningBroker[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all(brokers.splice(0).map((b) => b.close()));
});

async function next(it: AsyncIterator<WatchItem>, what: string, timeoutMs = 20_000): Promise<WatchItem> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    const r = await Promise.race([it.next(), timeout]);
    if (r.done) throw new Error(`watch ended while waiting for ${what}`);
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

describe('a watch across a memory broker restart', () => {
  it('takes a fresh snapshot (reason reset) instead of replaying the new, unrelated history', async () => {
    const first = await startBroker({ port: 0, store: 'memory', logLevel: 'silent', minTtlMs: 200 });
    brokers.push(first);
    const port = first.port;
    const watcher = await connect(first.url, {
      owner: 'watcher',
      ttlMs: 500,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    clients.push(watcher);
    const watch = await watcher.watch('room/');
    const it = watch[Symbol.asyncIterator]();
    expect(await next(it, 'the initial snapshot')).toMatchObject({ type: 'snapshot', reason: 'initial' });
    const actor = await connect(first.url, {
      owner: 'actor',
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    clients.push(actor);
    await (await actor.acquire('room/1')).release();
    expect(await next(it, 'acquired')).toMatchObject({ type: 'event', event: { kind: 'acquired' } });
    expect(await next(it, 'released')).toMatchObject({ type: 'event', event: { kind: 'released' } });

    await first.close();
    brokers.splice(brokers.indexOf(first), 1);
    const second = await startBroker({ port, store: 'memory', logLevel: 'silent', minTtlMs: 200 });
    brokers.push(second);
    // The new history runs past the watcher's last revision before it comes back.
    const other = await connect(second.url, { owner: 'other' });
    clients.push(other);
    for (let i = 0; i < 5; i++) await (await other.acquire(`room/new-${i}`)).release();
    const held = await other.acquire('room/held');

    const item = await next(it, 'the snapshot after the restart');
    expect(item).toMatchObject({ type: 'snapshot', reason: 'reset' });
    // From the snapshot on, the watch follows the new history: the state it builds converges.
    const state = new Map<string, number>();
    let revision = 0;
    if (item.type === 'snapshot') {
      revision = item.revision;
      for (const l of item.leases) state.set(l.name, l.token);
    }
    while (state.get('room/held') !== held.token) {
      const e = await next(it, 'room/held to be held in the rebuilt state');
      if (e.type !== 'event') throw new Error(`unexpected ${e.type}`);
      expect(e.event.revision).toBeGreaterThan(revision);
      revision = e.event.revision;
      if (e.event.kind === 'acquired') state.set(e.event.name, e.event.token);
      else if (e.event.kind !== 'updated') state.delete(e.event.name);
    }
    expect([...state]).toEqual([['room/held', held.token]]);
  });
});
