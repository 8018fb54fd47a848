import { describe, expect, it } from 'vitest';
import { acquire, call, openSession, SseReader, startHttpBroker, WsPeer } from './http-kit.js';

describe('HTTP sessions', () => {
  it('opens a session with a clamped TTL, a heartbeat interval and a Location', async () => {
    const broker = await startHttpBroker({ minTtlMs: 500, maxTtlMs: 60_000 });
    const r = await call(broker, 'POST', '/v1/sessions', { body: { ttlMs: 5_000, owner: 'worker-1' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ ttlMs: 5_000, heartbeatIntervalMs: 1_666 });
    expect(typeof r.body.id).toBe('string');
    expect(typeof r.body.secret).toBe('string');
    expect(r.headers.get('location')).toBe(`/v1/sessions/${r.body.id}`);
    expect(r.headers.get('cache-control')).toBe('no-store');

    const low = await call(broker, 'POST', '/v1/sessions', { body: { ttlMs: 1 } });
    expect(low.body.ttlMs).toBe(500);
    const high = await call(broker, 'POST', '/v1/sessions', { body: { ttlMs: 10_000_000 } });
    expect(high.body.ttlMs).toBe(60_000);
    const none = await call(broker, 'POST', '/v1/sessions');
    expect(none.status).toBe(201);
    expect(none.body.ttlMs).toBe(broker.options.defaultTtlMs);
  });

  it('keeps a session alive with keepalive and reports its remaining time', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker, { ttlMs: 3_000 });
    const r = await call(broker, 'POST', `/v1/sessions/${s.id}/keepalive`, { secret: s.secret });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: s.id, ttlMs: 3_000, heartbeatIntervalMs: 1_000 });
    expect(r.body.expiresInMs).toBeGreaterThan(2_500);
  });

  it('answers 401 without the secret header and 403 with a wrong one, without refreshing', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker);
    const missing = await call(broker, 'POST', `/v1/sessions/${s.id}/keepalive`);
    expect(missing.status).toBe(401);
    expect(missing.body.code).toBe('BAD_SECRET');
    expect(missing.headers.get('www-authenticate')).toBe('Leasewire-Session-Secret');
    const wrong = await call(broker, 'POST', `/v1/sessions/${s.id}/keepalive`, { secret: 'not-it' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.code).toBe('BAD_SECRET');
    const long = await call(broker, 'POST', `/v1/sessions/${s.id}/keepalive`, { secret: 'x'.repeat(1000) });
    expect(long.status).toBe(403);
    const del = await call(broker, 'DELETE', `/v1/sessions/${s.id}`, { secret: 'not-it' });
    expect(del.status).toBe(403);
    const lease = await acquire(broker, { ...s, secret: 'not-it' }, 'a');
    expect(lease.status).toBe(403);
    expect((await call(broker, 'GET', '/v1/leases/a')).status).toBe(404);
  });

  it('answers 410 SESSION_EXPIRED for an unknown session', async () => {
    const broker = await startHttpBroker();
    const r = await call(broker, 'POST', '/v1/sessions/no-such-session/keepalive', { secret: 'x' });
    expect(r.status).toBe(410);
    expect(r.body.code).toBe('SESSION_EXPIRED');
  });

  it('ends a session with DELETE and releases its leases', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker);
    expect((await acquire(broker, s, 'jobs/a')).status).toBe(200);
    const watch = await SseReader.open(broker, '/v1/watch?prefix=jobs/');
    await watch.waitFor((m) => m.event === 'snapshot', 'the snapshot');
    const r = await call(broker, 'DELETE', `/v1/sessions/${s.id}`, { secret: s.secret });
    expect(r.status).toBe(200);
    const ev = await watch.waitFor((m) => m.event === 'message', 'the released event');
    expect(ev.data).toMatchObject({ kind: 'released', name: 'jobs/a', reason: 'session-closed' });
    expect((await call(broker, 'GET', '/v1/leases/jobs%2Fa')).status).toBe(404);
    const again = await call(broker, 'POST', `/v1/sessions/${s.id}/keepalive`, { secret: s.secret });
    expect(again.status).toBe(410);
  });

  it('expires an HTTP session that stops calling, and watchers see its lease expire', async () => {
    const broker = await startHttpBroker({ minTtlMs: 100 });
    const watch = await SseReader.open(broker, '/v1/watch');
    await watch.waitFor((m) => m.event === 'snapshot', 'the snapshot');
    const s = await openSession(broker, { ttlMs: 500 });
    expect((await acquire(broker, s, 'leader')).status).toBe(200);
    const ev = await watch.waitFor(
      (m) => m.event === 'message' && (m.data as { kind: string }).kind === 'expired',
      'the expired event',
    );
    expect(ev.data).toMatchObject({
      kind: 'expired',
      name: 'leader',
      sessionId: s.id,
      reason: 'session-expired',
    });
    const r = await call(broker, 'POST', `/v1/sessions/${s.id}/keepalive`, { secret: s.secret });
    expect(r.status).toBe(410);
  });

  it('is the same kind of session as a WebSocket one: a WebSocket hello can resume it', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker, { owner: 'http' });
    const granted = await acquire(broker, s, 'shared');
    const { welcome } = await WsPeer.session(broker, { sessionId: s.id, secret: s.secret });
    expect(welcome.resumed).toBe(true);
    expect(welcome.leases).toEqual([{ name: 'shared', token: granted.body.lease.token }]);
  });
});
