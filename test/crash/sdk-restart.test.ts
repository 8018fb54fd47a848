/**
 * The SDK's side of a crash: a client built with `connect` holds a lease and a watch while the
 * broker child process is killed with SIGKILL and restarted on the same data dir and port. The
 * client must resume (status `resumed`, never `expired`), keep its lease and token, and its watch
 * must continue from where it was, with every event exactly once.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { connect } from '../../client/index.js';
import type { StatusChange } from '../../client/status.js';
import type { WatchItem } from '../../client/watch.js';
import type { LeaseEvent } from '../../shared/frames.js';
import { startBrokerProcess } from '../helpers/broker-process.js';
import { disposeAll, RawClient } from '../helpers/raw-client.js';
import { useTempDirs } from '../server/storage/journal/temp-dir.js';

const tempDir = useTempDirs();
const ROUNDS = 3;

/** Resolves when `matches` holds for a value pushed by `subscribe`'s callback. */
function waitFor<T>(
  subscribe: (cb: (v: T) => void) => () => void,
  matches: (v: T) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const off = subscribe((v) => {
      if (!matches(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

describe('the SDK across broker crashes', () => {
  it('resumes its session with its lease and token, and its watch continues without gap or repeat', async () => {
    const broker = await startBrokerProcess({
      dataDir: await tempDir(),
      label: 'broker',
      options: { fsync: 'batch' },
    });
    const sdk = await connect(broker.url, {
      ttlMs: 10_000,
      owner: 'sdk',
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    onTestFinished(() => sdk.close());
    onTestFinished(disposeAll);
    const statuses: StatusChange[] = [];
    const statusListeners = new Set<(c: StatusChange) => void>();
    sdk.onStatus((c) => {
      statuses.push(c);
      for (const l of statusListeners) l(c);
    });
    const items: WatchItem[] = [];
    const itemListeners = new Set<(i: WatchItem) => void>();
    const watch = await sdk.watch('', {
      onEvent: (i) => {
        items.push(i);
        for (const l of itemListeners) l(i);
      },
    });
    const lease = await sdk.acquire('sdk/held');

    const writer = { session: { sessionId: '', secret: '' }, client: undefined as RawClient | undefined };
    const opened = await RawClient.session(
      broker.url,
      { ttlMs: 30_000, owner: 'writer' },
      { label: 'writer' },
    );
    writer.client = opened.client;
    writer.session = { sessionId: opened.welcome.sessionId, secret: opened.welcome.secret };
    let lastRevision = 0;
    const churn = async (round: number) => {
      const c = writer.client!;
      for (let i = 0; i < 10; i++) {
        const g = await c.call({ type: 'acquire', name: `w/${round}/${i}` }, 'granted');
        lastRevision = g.lease.revision;
        if (i % 2 === 0)
          lastRevision = (
            await c.call({ type: 'release', name: `w/${round}/${i}`, token: g.lease.token }, 'ok')
          ).revision;
      }
    };
    const delivered = (revision: number) =>
      waitFor<WatchItem>(
        (cb) => {
          itemListeners.add(cb);
          return () => itemListeners.delete(cb);
        },
        (i) => i.type === 'event' && i.event.revision >= revision,
        `the watch to deliver revision ${revision}`,
      );

    for (let round = 1; round <= ROUNDS; round++) {
      const seen = delivered(lastRevision + 1);
      await churn(round);
      await seen;
      const resumed = waitFor<StatusChange>(
        (cb) => {
          statusListeners.add(cb);
          return () => statusListeners.delete(cb);
        },
        (c) => c.status === 'resumed',
        `the client to resume after kill ${round}`,
      );
      await broker.kill9();
      await broker.restart();
      await resumed;
      expect(lease.signal.aborted).toBe(false);
      expect(lease.held).toBe(true);
      const reopened = await RawClient.open(broker.url, { label: 'writer' });
      await reopened.call({ type: 'hello', version: 1, ...writer.session }, 'welcome');
      writer.client = reopened;
    }
    const seen = delivered(lastRevision + 1);
    await churn(ROUNDS + 1);
    await seen;

    expect(statuses.map((s) => s.status)).toEqual(
      Array.from({ length: ROUNDS }, () => ['suspended', 'resumed']).flat(),
    );
    expect(await sdk.get('sdk/held')).toMatchObject({ token: lease.token, sessionId: sdk.sessionId });
    const next = await sdk.acquire('sdk/after');
    // Ten grants per churn, all acknowledged: the next token follows them, across every restart.
    expect(next.token).toBe(lease.token + 10 * (ROUNDS + 1) + 1);

    // The watch saw one snapshot, then every event of the broker's history exactly once, in order.
    const history = await RawClient.session(broker.url, {}, { label: 'verifier' });
    const all = await history.client.call({ type: 'watch', prefix: '', fromRevision: 0 }, 'watching');
    const upTo = lastRevision;
    expect(items[0]).toMatchObject({ type: 'snapshot', reason: 'initial' });
    const events = items.slice(1).map((i) => (i.type === 'event' ? i.event : undefined));
    const got = events.filter((e): e is LeaseEvent => e !== undefined && e.revision <= upTo);
    expect(events.every((e) => e !== undefined)).toBe(true);
    expect(got.map((e) => `${e.revision} ${e.kind} ${e.name} ${e.token}`)).toEqual(
      (all.events ?? [])
        .filter((e) => e.revision <= upTo)
        .map((e) => `${e.revision} ${e.kind} ${e.name} ${e.token}`),
    );
    await watch.close();
  }, 90_000);
});
