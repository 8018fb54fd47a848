import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  acquire,
  call,
  hubSizeReaches,
  leasePath,
  openSession,
  SseReader,
  startHttpBroker,
  WsPeer,
} from './http-kit.js';

type Ev = { kind: string; name: string; revision: number; token: number; reason?: string; meta?: string };

function releaseBody(s: { id: string }, token: number) {
  return { session: s.id, token };
}

describe('HTTP watch (Server-Sent Events)', () => {
  it('opens with a snapshot of the prefix, then streams live events with the revision as id', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker, { owner: 'w' });
    await acquire(broker, s, 'jobs/a', { meta: 'aGk=' });
    await acquire(broker, s, 'other/x');

    const watch = await SseReader.open(broker, '/v1/watch?prefix=jobs%2F');
    expect(watch.status).toBe(200);
    expect(watch.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const snap = await watch.waitFor((m) => m.event === 'snapshot', 'the snapshot');
    const data = snap.data as { revision: number; leases: { name: string; meta?: string }[] };
    expect(data.leases.map((l) => l.name)).toEqual(['jobs/a']);
    expect(data.leases[0]?.meta).toBe('aGk=');
    expect(snap.id).toBe(`${data.revision}:${broker.store.epoch}`);

    const b = await acquire(broker, s, 'jobs/b');
    await acquire(broker, s, 'other/y');
    await call(broker, 'POST', leasePath('jobs/b', 'release'), {
      body: releaseBody(s, b.body.lease.token),
      secret: s.secret,
    });
    await watch.until(() => (watch.messages.length >= 3 ? true : undefined), 'two live events');
    const live = watch.messages.slice(1).map((m) => ({ id: m.id, ...(m.data as Ev) }));
    expect(live.map((e) => [e.kind, e.name])).toEqual([
      ['acquired', 'jobs/b'],
      ['released', 'jobs/b'],
    ]);
    for (const e of live) expect(e.id).toBe(`${e.revision}:${broker.store.epoch}`);
    expect(Number.parseInt(live[0]?.id ?? '', 10)).toBe(live[0]?.revision);
    expect(live[1]?.reason).toBe('release');
  });

  it('streams events caused over the WebSocket protocol too', async () => {
    const broker = await startHttpBroker();
    const watch = await SseReader.open(broker, '/v1/watch');
    await watch.waitFor((m) => m.event === 'snapshot', 'the snapshot');
    const { peer } = await WsPeer.session(broker, { owner: 'ws' });
    await peer.request({ type: 'acquire', name: 'from-ws' });
    const ev = await watch.waitFor((m) => m.event === 'message', 'the acquired event');
    expect(ev.data).toMatchObject({ kind: 'acquired', name: 'from-ws', owner: 'ws' });
  });

  it('resumes with Last-Event-ID without gaps or duplicates', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker);
    const first = await SseReader.open(broker, '/v1/watch?prefix=r%2F');
    await first.waitFor((m) => m.event === 'snapshot', 'the snapshot');
    const tokens: number[] = [];
    for (const n of ['r/1', 'r/2']) tokens.push((await acquire(broker, s, n)).body.lease.token);
    await first.until(() => (first.messages.length >= 3 ? true : undefined), 'two events');
    const lastSeen = first.messages.at(-1)?.id;
    first.close();

    // Changes while nobody watches, some outside the prefix.
    await acquire(broker, s, 'elsewhere');
    await call(broker, 'POST', leasePath('r/1', 'release'), {
      body: releaseBody(s, tokens[0] ?? 0),
      secret: s.secret,
    });
    await acquire(broker, s, 'r/3');

    const second = await SseReader.open(broker, '/v1/watch?prefix=r%2F', { 'last-event-id': lastSeen ?? '' });
    const marker = await second.waitFor((m) => m.event === 'watching', 'the end of the replay');
    const replayed = second.messages.filter((m) => m.event === 'message').map((m) => m.data as Ev);
    expect(replayed.map((e) => [e.kind, e.name])).toEqual([
      ['released', 'r/1'],
      ['acquired', 'r/3'],
    ]);
    expect(marker.id).toBe(`${broker.store.revision}:${broker.store.epoch}`);

    await acquire(broker, s, 'r/4');
    await second.waitFor((m) => m.event === 'message' && (m.data as Ev).name === 'r/4', 'the live r/4 event');
    const all = [...first.messages, ...second.messages]
      .filter((m) => m.event === 'message')
      .map((m) => m.data as Ev);
    const revisions = all.map((e) => e.revision);
    expect(new Set(revisions).size).toBe(revisions.length);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
    expect(all.map((e) => e.name)).toEqual(['r/1', 'r/2', 'r/1', 'r/3', 'r/4']);
  });

  it('takes fromRevision from the query when there is no Last-Event-ID', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker);
    await acquire(broker, s, 'a');
    const from = broker.store.revision;
    await acquire(broker, s, 'b');
    const watch = await SseReader.open(broker, `/v1/watch?fromRevision=${from}`);
    await watch.waitFor((m) => m.event === 'watching', 'the end of the replay');
    expect(watch.messages.filter((m) => m.event === 'message').map((m) => (m.data as Ev).name)).toEqual([
      'b',
    ]);
  });

  it('answers 410 COMPACTED for a Last-Event-ID from another history (a restarted memory broker)', async () => {
    const before = await startHttpBroker();
    const s1 = await openSession(before);
    await acquire(before, s1, 'a');
    const old = await SseReader.open(before, '/v1/watch');
    const snap = await old.waitFor((m) => m.event === 'snapshot', 'the snapshot');
    old.close();

    const after = await startHttpBroker();
    const s2 = await openSession(after);
    for (const n of ['x', 'y']) await acquire(after, s2, n);
    const resumed = await SseReader.open(after, '/v1/watch', { 'last-event-id': snap.id ?? '' });
    expect(resumed.status).toBe(410);
    expect(JSON.parse(resumed.errorBody).code).toBe('COMPACTED');
    // A bare revision is taken as this history's.
    const bare = await SseReader.open(after, '/v1/watch', { 'last-event-id': '1' });
    await bare.waitFor((m) => m.event === 'watching', 'the end of the replay');
    expect(bare.messages.filter((m) => m.event === 'message').map((m) => (m.data as Ev).name)).toEqual(['y']);
    const future = await SseReader.open(after, '/v1/watch', { 'last-event-id': '99' });
    expect(future.status).toBe(410);
  });

  it('answers 410 COMPACTED for a revision older than the history', async () => {
    const broker = await startHttpBroker({ historyLimit: 2 });
    const s = await openSession(broker);
    for (const n of ['a', 'b', 'c', 'd']) await acquire(broker, s, n);
    const watch = await SseReader.open(broker, '/v1/watch', { 'last-event-id': '0' });
    expect(watch.status).toBe(410);
    expect(JSON.parse(watch.errorBody)).toMatchObject({ code: 'COMPACTED', details: { oldestRevision: 3 } });
    expect(broker.broker.hub.size).toBe(0);
  });

  it('refuses a bad prefix or revision with 400', async () => {
    const broker = await startHttpBroker();
    for (const [path, headers, code] of [
      ['/v1/watch?prefix=%FF', {}, 'NAME_INVALID'],
      ['/v1/watch?prefix=a%00', {}, 'NAME_INVALID'],
      ['/v1/watch?fromRevision=-1', {}, 'BAD_REQUEST'],
      ['/v1/watch?fromRevision=1e3', {}, 'BAD_REQUEST'],
      ['/v1/watch', { 'last-event-id': 'abc' }, 'BAD_REQUEST'],
      ['/v1/watch', { 'last-event-id': '1:' }, 'BAD_REQUEST'],
      ['/v1/watch', { 'last-event-id': ':abc' }, 'BAD_REQUEST'],
      ['/v1/watch', { 'last-event-id': '1:a b' }, 'BAD_REQUEST'],
      ['/v1/watch?prefix=a&prefix=b', {}, 'BAD_REQUEST'],
    ] as const) {
      const r = await SseReader.open(broker, path, headers);
      expect(r.status, path).toBe(400);
      expect(JSON.parse(r.errorBody).code, path).toBe(code);
    }
    expect(broker.broker.hub.size).toBe(0);
  });

  it('sends comment heartbeats on a quiet stream', async () => {
    const broker = await startHttpBroker({ sseHeartbeatMs: 50 });
    const watch = await SseReader.open(broker, '/v1/watch');
    await watch.until(() => (watch.comments >= 2 ? true : undefined), 'two heartbeats');
  });

  it('limits open streams with maxHttpWatches and frees the slot when a reader leaves', async () => {
    const broker = await startHttpBroker({ maxHttpWatches: 1 });
    const one = await SseReader.open(broker, '/v1/watch');
    await one.waitFor((m) => m.event === 'snapshot', 'the snapshot');
    const two = await SseReader.open(broker, '/v1/watch');
    expect(two.status).toBe(429);
    expect(JSON.parse(two.errorBody)).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      details: { limit: 'maxHttpWatches' },
    });
    const gone = hubSizeReaches(broker, 0);
    one.close();
    await gone;
    const three = await SseReader.open(broker, '/v1/watch');
    expect(three.status).toBe(200);
  });

  it('drops a reader that falls more than maxBufferedBytes behind', async () => {
    const broker = await startHttpBroker({ maxBufferedBytes: 64 * 1024 });
    // A raw reader that never reads: the socket buffers fill, then the broker's buffer.
    const sock = connect(broker.port, broker.host);
    sock.on('error', () => {});
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const subscribed = hubSizeReaches(broker, 1);
    sock.write('GET /v1/watch HTTP/1.1\r\nHost: x\r\n\r\n');
    sock.pause();
    await subscribed;
    const dropped = hubSizeReaches(broker, 0);
    // Events with 1 KiB of meta, pipelined over a WebSocket so the kernel's buffers fill fast.
    const { peer } = await WsPeer.session(broker);
    const meta = new Uint8Array(1024).fill(7);
    let n = 0;
    for (let batch = 0; batch < 40 && broker.broker.hub.size > 0; batch++) {
      let last: Promise<unknown> = Promise.resolve();
      for (let i = 0; i < 250; i++) last = peer.request({ type: 'acquire', name: `n/${n++}`, meta });
      await last;
    }
    await dropped;
    sock.destroy();
    expect((await call(broker, 'GET', '/healthz')).status).toBe(200);
  });

  it('ends streams when the broker closes', async () => {
    const broker = await startHttpBroker();
    const watch = await SseReader.open(broker, '/v1/watch');
    await watch.waitFor((m) => m.event === 'snapshot', 'the snapshot');
    const started = performance.now();
    await broker.close();
    await watch.until(() => (watch.ended ? true : undefined), 'the stream to end');
    expect(performance.now() - started).toBeLessThan(broker.options.drainTimeoutMs);
  });
});
