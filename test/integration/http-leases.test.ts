import { describe, expect, it, onTestFinished } from 'vitest';
import { encodeFrame } from '../../shared/codec.js';
import type { LeaseEvent } from '../../shared/frames.js';
import {
  acquire,
  call,
  leasePath,
  nextNotice,
  openSession,
  queuedOn,
  startHttpBroker,
  WsPeer,
} from './http-kit.js';

describe('HTTP leases', () => {
  it('acquires, reads, renews and releases a lease with its fencing token', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker, { owner: 'worker-1' });
    const granted = await acquire(broker, s, 'jobs/nightly', {
      meta: Buffer.from('host-a').toString('base64'),
    });
    expect(granted.status).toBe(200);
    const { token } = granted.body.lease;
    expect(granted.body.lease).toMatchObject({ name: 'jobs/nightly', owner: 'worker-1', sessionId: s.id });
    expect(Buffer.from(granted.body.lease.meta ?? '', 'base64').toString()).toBe('host-a');

    const again = await acquire(broker, s, 'jobs/nightly');
    expect(again.status).toBe(200);
    expect(again.body.lease.token).toBe(token);

    const got = await call(broker, 'GET', leasePath('jobs/nightly'));
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      lease: {
        name: 'jobs/nightly',
        token,
        owner: 'worker-1',
        sessionId: s.id,
        waiters: 0,
        meta: 'aG9zdC1h',
      },
    });
    expect(got.body.revision).toBeGreaterThan(0);
    expect((got.body.lease as { expiresInMs: number }).expiresInMs).toBeGreaterThan(0);

    const listed = await call<{ revision: number; leases: { name: string }[] }>(
      broker,
      'GET',
      '/v1/leases?prefix=jobs%2F',
    );
    expect(listed.status).toBe(200);
    expect(listed.body.leases.map((l) => l.name)).toEqual(['jobs/nightly']);
    expect((await call<{ leases: unknown[] }>(broker, 'GET', '/v1/leases?prefix=other')).body.leases).toEqual(
      [],
    );

    const renewed = await call(broker, 'POST', leasePath('jobs/nightly', 'renew'), {
      body: { session: s.id, token },
      secret: s.secret,
    });
    expect(renewed.status).toBe(200);
    expect(renewed.body).toMatchObject({ lease: { token } });

    const stale = await call(broker, 'POST', leasePath('jobs/nightly', 'release'), {
      body: { session: s.id, token: token + 1 },
      secret: s.secret,
    });
    expect(stale.status).toBe(409);
    expect(stale.body.code).toBe('STALE_TOKEN');

    const released = await call(broker, 'POST', leasePath('jobs/nightly', 'release'), {
      body: { session: s.id, token },
      secret: s.secret,
    });
    expect(released.status).toBe(200);
    expect(typeof released.body.revision).toBe('number');
    const free = await call(broker, 'GET', leasePath('jobs/nightly'));
    expect(free.status).toBe(404);
    expect(free.body.code).toBe('NOT_FOUND');

    const twice = await call(broker, 'POST', leasePath('jobs/nightly', 'release'), {
      body: { session: s.id, token },
      secret: s.secret,
    });
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('NOT_HOLDER');
  });

  it('answers 409 LEASE_HELD with the holder when another session holds the lease', async () => {
    const broker = await startHttpBroker();
    const a = await openSession(broker, { owner: 'a' });
    const b = await openSession(broker, { owner: 'b' });
    const held = await acquire(broker, a, 'x');
    const r = await acquire(broker, b, 'x');
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({
      code: 'LEASE_HELD',
      details: { holder: { owner: 'a', sessionId: a.id, token: held.body.lease.token } },
    });
    const renew = await call(broker, 'POST', leasePath('x', 'renew'), {
      body: { session: b.id, token: held.body.lease.token },
      secret: b.secret,
    });
    expect(renew.status).toBe(409);
    expect(renew.body.code).toBe('NOT_HOLDER');
  });

  it('answers 409 LOCK_DELAY with Retry-After while an expired name is held back', async () => {
    const broker = await startHttpBroker({ minTtlMs: 100, lockDelayMs: 5_000 });
    const a = await openSession(broker, { ttlMs: 500 });
    const b = await openSession(broker);
    const expired = nextNotice(
      broker,
      (n) => n.type === 'sessionEnded' && n.sessionId === a.id,
      'a to expire',
    );
    await acquire(broker, a, 'x');
    await expired;
    const r = await acquire(broker, b, 'x');
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('LOCK_DELAY');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('grants a long-polling HTTP acquire when a WebSocket holder releases', async () => {
    const broker = await startHttpBroker();
    const { peer } = await WsPeer.session(broker, { owner: 'ws-holder' });
    const held = await peer.request({ type: 'acquire', name: 'printer' });
    expect(held.type).toBe('granted');
    const token = (held as { lease: { token: number } }).lease.token;

    const s = await openSession(broker, { owner: 'http-waiter' });
    const queued = queuedOn(broker, 'printer');
    const polling = acquire(broker, s, 'printer', { wait: true, waitTimeoutMs: 10_000 });
    // The wait is queued once GET shows a waiter.
    await queued;
    const released = await peer.request({ type: 'release', name: 'printer', token });
    expect(released.type).toBe('ok');
    const r = await polling;
    expect(r.status).toBe(200);
    expect(r.body.lease).toMatchObject({ name: 'printer', sessionId: s.id });
    expect(r.body.lease.token).toBeGreaterThan(token);
  });

  it('grants a waiting WebSocket acquire when an HTTP holder releases', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker);
    const held = await acquire(broker, s, 'printer');
    const { peer } = await WsPeer.session(broker);
    const ref = 99;
    peer.ws.send(encodeFrame({ type: 'acquire', ref, name: 'printer', wait: true }));
    await peer.waitFor((f) => f.type === 'queued', 'the WebSocket wait to be queued');
    await call(broker, 'POST', leasePath('printer', 'release'), {
      body: { session: s.id, token: held.body.lease.token },
      secret: s.secret,
    });
    const granted = await peer.waitFor((f) => f.type === 'granted' && f.ref === ref, 'the WebSocket grant');
    expect(granted).toMatchObject({ lease: { name: 'printer' } });
  });

  it('times a long poll out with 409 WAIT_TIMEOUT, capped at maxHttpWaitMs', async () => {
    const broker = await startHttpBroker({ maxHttpWaitMs: 300 });
    const a = await openSession(broker);
    const b = await openSession(broker);
    await acquire(broker, a, 'x');
    const short = await acquire(broker, b, 'x', { wait: true, waitTimeoutMs: 100 });
    expect(short.status).toBe(409);
    expect(short.body).toMatchObject({ code: 'WAIT_TIMEOUT' });

    const started = performance.now();
    const capped = await acquire(broker, b, 'x', { wait: true, waitTimeoutMs: 60_000 });
    expect(capped.status).toBe(409);
    expect(capped.body.code).toBe('WAIT_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(5_000);

    const zero = await acquire(broker, b, 'x', { wait: true, waitTimeoutMs: 0 });
    expect(zero.status).toBe(409);
    expect(zero.body.code).toBe('WAIT_TIMEOUT');
  });

  it('keeps the session alive while a long poll waits longer than its TTL', async () => {
    const broker = await startHttpBroker({ minTtlMs: 100, maxHttpWaitMs: 2_000 });
    const a = await openSession(broker);
    const b = await openSession(broker, { ttlMs: 400 });
    await acquire(broker, a, 'x');
    const r = await acquire(broker, b, 'x', { wait: true, waitTimeoutMs: 1_500 });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('WAIT_TIMEOUT');
    const alive = await call(broker, 'POST', `/v1/sessions/${b.id}/keepalive`, { secret: b.secret });
    expect(alive.status).toBe(200);
  });

  it('cancels the wait when the long-polling client disconnects', async () => {
    const broker = await startHttpBroker();
    const a = await openSession(broker);
    const b = await openSession(broker);
    const held = await acquire(broker, a, 'x');
    const abort = new AbortController();
    const queued = queuedOn(broker, 'x');
    const polling = acquire(broker, b, 'x', { wait: true, waitTimeoutMs: 20_000 }, abort.signal);
    void polling.catch(() => {});
    await queued;
    const cancelled = nextNotice(
      broker,
      (n) => n.type === 'waitEnded' && n.sessionId === b.id && n.code === 'CANCELLED',
      'the wait to be cancelled',
    );
    abort.abort();
    await cancelled;
    const r = await call<{ lease: { waiters: number } }>(broker, 'GET', leasePath('x'));
    expect(r.body.lease.waiters).toBe(0);
    // The lease is not handed to the session that went away.
    await call(broker, 'POST', leasePath('x', 'release'), {
      body: { session: a.id, token: held.body.lease.token },
      secret: a.secret,
    });
    expect((await call(broker, 'GET', leasePath('x'))).status).toBe(404);
  });

  it('releases a grant that raced the long-polling client going away', async () => {
    const broker = await startHttpBroker();
    const a = await openSession(broker);
    const b = await openSession(broker);
    const held = await acquire(broker, a, 'x');
    // Hold back the cancel the disconnect triggers, so the grant wins the race.
    const store = broker.store;
    const cancelWait = store.cancelWait;
    let noticed: () => void = () => {};
    const disconnectNoticed = new Promise<void>((resolve) => {
      noticed = resolve;
    });
    store.cancelWait = async () => noticed();
    onTestFinished(() => {
      store.cancelWait = cancelWait;
    });
    const abort = new AbortController();
    const queued = queuedOn(broker, 'x');
    const polling = acquire(broker, b, 'x', { wait: true }, abort.signal);
    void polling.catch(() => {});
    await queued;
    abort.abort();
    await disconnectNoticed;
    const releasedByB = new Promise<LeaseEvent>((resolve) => {
      const off = store.onEvents((events) => {
        const e = events.find((ev) => ev.kind === 'released' && ev.sessionId === b.id);
        if (!e) return;
        off();
        resolve(e);
      });
    });
    await call(broker, 'POST', leasePath('x', 'release'), {
      body: { session: a.id, token: held.body.lease.token },
      secret: a.secret,
    });
    expect(await releasedByB).toMatchObject({ name: 'x', reason: 'release' });
    expect((await call(broker, 'GET', leasePath('x'))).status).toBe(404);
  });

  it('ends a long poll with 409 CANCELLED when its session is deleted', async () => {
    const broker = await startHttpBroker();
    const a = await openSession(broker);
    const b = await openSession(broker);
    await acquire(broker, a, 'x');
    const queued = queuedOn(broker, 'x');
    const polling = acquire(broker, b, 'x', { wait: true });
    await queued;
    expect((await call(broker, 'DELETE', `/v1/sessions/${b.id}`, { secret: b.secret })).status).toBe(200);
    const r = await polling;
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('CANCELLED');
  });

  it('answers 409 ALREADY_WAITING for a second wait on the same name', async () => {
    const broker = await startHttpBroker();
    const a = await openSession(broker);
    const b = await openSession(broker);
    await acquire(broker, a, 'x');
    const queued = queuedOn(broker, 'x');
    const first = acquire(broker, b, 'x', { wait: true, waitTimeoutMs: 200 });
    await queued;
    const second = await acquire(broker, b, 'x', { wait: true });
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('ALREADY_WAITING');
    expect((await first).status).toBe(409);
  });

  it('answers pending long polls with 503 when the broker closes', async () => {
    const broker = await startHttpBroker();
    const a = await openSession(broker);
    const b = await openSession(broker);
    await acquire(broker, a, 'x');
    const queued = queuedOn(broker, 'x');
    const polling = acquire(broker, b, 'x', { wait: true });
    await queued;
    const closing = broker.close();
    const r = await polling;
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('SHUTTING_DOWN');
    await closing;
  });

  it('accepts meta up to maxMetaBytes and answers 413 META_TOO_LARGE past it', async () => {
    const broker = await startHttpBroker({ maxMetaBytes: 16 });
    const s = await openSession(broker);
    const ok = await acquire(broker, s, 'a', { meta: Buffer.alloc(16, 1).toString('base64') });
    expect(ok.status).toBe(200);
    const big = await acquire(broker, s, 'b', { meta: Buffer.alloc(17, 1).toString('base64') });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('META_TOO_LARGE');
    for (const meta of ['not base64!', 'aGk', 'aGk=x', 42, { a: 1 }]) {
      const r = await acquire(broker, s, 'c', { meta });
      expect(r.status, JSON.stringify(meta)).toBe(400);
      expect(r.body.code).toBe('BAD_REQUEST');
    }
    expect((await call(broker, 'GET', leasePath('c'))).status).toBe(404);
  });
});
