import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  acquire,
  call,
  jumpableClock,
  leasePath,
  metric,
  nextNotice,
  openSession,
  parseMetrics,
  queuedOn,
  SseReader,
  scrape,
  startHttpBroker,
  WsPeer,
} from './http-kit.js';

describe('GET /metrics', () => {
  it('serves Prometheus text with every metric family described', async () => {
    const broker = await startHttpBroker();
    const res = await fetch(`${broker.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const family of [
      'leasewire_sessions',
      'leasewire_connections',
      'leasewire_leases_held',
      'leasewire_waiters',
      'leasewire_revision',
      'leasewire_store_writable',
      'leasewire_lease_events_total',
      'leasewire_watches',
      'leasewire_events_delivered_total',
      'leasewire_frames_in_total',
      'leasewire_errors_out_total',
      'leasewire_heartbeats_missed_total',
      'leasewire_connections_closed_total',
      'leasewire_expiry_lag_seconds',
      'leasewire_request_duration_seconds',
      'leasewire_event_loop_delay_seconds',
      'leasewire_http_requests_total',
      'leasewire_http_request_duration_seconds',
      'leasewire_http_long_polls',
      'leasewire_http_watch_streams',
    ]) {
      expect(text, family).toContain(`# TYPE ${family} `);
    }
    const m = parseMetrics(text);
    expect(metric(m, 'leasewire_store_writable')).toBe(1);
  });

  it('counts grants, releases, reassignments, waiters and leases as they happen', async () => {
    const broker = await startHttpBroker();
    const before = await scrape(broker);
    const a = await openSession(broker);
    const b = await openSession(broker);
    const held = await acquire(broker, a, 'x');
    const queued = queuedOn(broker, 'x');
    const waiting = acquire(broker, b, 'x', { wait: true });
    await queued;

    const during = await scrape(broker);
    expect(metric(during, 'leasewire_leases_held')).toBe(1);
    expect(metric(during, 'leasewire_waiters')).toBe(1);
    expect(metric(during, 'leasewire_http_long_polls')).toBe(1);
    expect(metric(during, 'leasewire_sessions{state="detached"}')).toBe(2);
    expect(
      metric(during, 'leasewire_lease_events_total{kind="acquired",reason="none"}') -
        metric(before, 'leasewire_lease_events_total{kind="acquired",reason="none"}'),
    ).toBe(1);

    await call(broker, 'POST', leasePath('x', 'release'), {
      body: { session: a.id, token: held.body.lease.token },
      secret: a.secret,
    });
    expect((await waiting).status).toBe(200);
    const after = await scrape(broker);
    expect(metric(after, 'leasewire_lease_events_total{kind="released",reason="release"}')).toBe(1);
    // The waiter's grant is a reassignment: an acquired event carrying why the previous holder left.
    expect(metric(after, 'leasewire_lease_events_total{kind="acquired",reason="release"}')).toBe(1);
    expect(metric(after, 'leasewire_waiters')).toBe(0);
    expect(metric(after, 'leasewire_http_long_polls')).toBe(0);
    expect(metric(after, 'leasewire_revision')).toBe(broker.store.revision);
    expect(metric(after, 'leasewire_http_requests_total{route="leases.acquire",status="200"}')).toBe(2);
    expect(metric(after, 'leasewire_http_request_duration_seconds_count{route="leases.acquire"}')).toBe(2);
  });

  it('observes expiry lag and counts expiries when a session times out', async () => {
    const broker = await startHttpBroker({ minTtlMs: 100 });
    const expired = nextNotice(
      broker,
      (n) => n.type === 'sessionEnded' && n.reason === 'expired',
      'the session to expire',
    );
    const s = await openSession(broker, { ttlMs: 500 });
    await acquire(broker, s, 'x');
    await expired;
    const m = await scrape(broker);
    expect(metric(m, 'leasewire_lease_events_total{kind="expired",reason="session-expired"}')).toBe(1);
    expect(metric(m, 'leasewire_expiry_lag_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'leasewire_expiry_lag_seconds_bucket{le="+Inf"}')).toBe(
      metric(m, 'leasewire_expiry_lag_seconds_count'),
    );
    expect(metric(m, 'leasewire_leases_held')).toBe(0);
    expect(metric(m, 'leasewire_sessions{state="detached"}')).toBe(0);
  });

  it('counts WebSocket frames, errors, request latency, attached sessions and connections', async () => {
    const broker = await startHttpBroker();
    const { peer } = await WsPeer.session(broker);
    await peer.request({ type: 'acquire', name: 'a' });
    await peer.request({ type: 'get', name: 'a' });
    const bad = await peer.request({ type: 'get', name: '' });
    expect(bad).toMatchObject({ type: 'error', code: 'NAME_INVALID' });
    const m = await scrape(broker);
    expect(metric(m, 'leasewire_frames_in_total{type="hello"}')).toBe(1);
    expect(metric(m, 'leasewire_frames_in_total{type="acquire"}')).toBe(1);
    expect(metric(m, 'leasewire_frames_in_total{type="invalid"}')).toBe(1);
    expect(metric(m, 'leasewire_errors_out_total{code="NAME_INVALID"}')).toBe(1);
    expect(metric(m, 'leasewire_request_duration_seconds_count{op="acquire"}')).toBe(1);
    expect(metric(m, 'leasewire_request_duration_seconds_count{op="get"}')).toBe(1);
    expect(metric(m, 'leasewire_sessions{state="attached"}')).toBe(1);
    expect(metric(m, 'leasewire_connections')).toBe(1);
  });

  it('counts watchers and events fanned out', async () => {
    const broker = await startHttpBroker();
    const w1 = await SseReader.open(broker, '/v1/watch');
    const w2 = await SseReader.open(broker, '/v1/watch?prefix=a');
    await w1.waitFor((x) => x.event === 'snapshot', 'the first snapshot');
    await w2.waitFor((x) => x.event === 'snapshot', 'the second snapshot');
    const s = await openSession(broker);
    await acquire(broker, s, 'a1');
    await acquire(broker, s, 'b1');
    await w1.until(() => (w1.messages.length >= 3 ? true : undefined), 'two events on the first watch');
    await w2.waitFor((x) => x.event === 'message', 'one event on the second watch');
    const m = await scrape(broker);
    expect(metric(m, 'leasewire_watches')).toBe(2);
    expect(metric(m, 'leasewire_http_watch_streams')).toBe(2);
    expect(metric(m, 'leasewire_events_delivered_total')).toBe(3);
  });

  it('counts missed heartbeats and closed connections by code', async () => {
    const clock = jumpableClock();
    const broker = await startHttpBroker({}, { clock });
    const { peer, welcome } = await WsPeer.session(broker, { ttlMs: 3_000 }, { autoPong: false });
    // Silent for more than two heartbeat intervals, but not for the session's TTL.
    clock.jump(2 * welcome.heartbeatIntervalMs + 200);
    const closed = await peer.waitClosed();
    expect([1006, 4007]).toContain(closed.code);
    const m = await scrape(broker);
    expect(metric(m, 'leasewire_heartbeats_missed_total')).toBe(1);
    expect(metric(m, 'leasewire_connections_closed_total{code="4007"}')).toBe(1);
    expect(metric(m, 'leasewire_sessions{state="detached"}')).toBe(1);
  });

  it('keeps each broker in its own registry', async () => {
    const one = await startHttpBroker();
    const two = await startHttpBroker();
    const s = await openSession(one);
    await acquire(one, s, 'only-in-one');
    const m1 = await scrape(one);
    const m2 = await scrape(two);
    expect(metric(m1, 'leasewire_leases_held')).toBe(1);
    expect(metric(m2, 'leasewire_leases_held')).toBe(0);
    expect(metric(m1, 'leasewire_http_requests_total{route="sessions.create",status="201"}')).toBe(1);
    expect(metric(m2, 'leasewire_http_requests_total{route="sessions.create",status="201"}')).toBe(0);
  });
});

describe('GET /healthz and /readyz', () => {
  it('report alive and ready with a journal store in a temp data dir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'leasewire-http-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const broker = await startHttpBroker({ store: 'journal', dataDir: dir, fsync: 'none' });
    expect((await call(broker, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await call(broker, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready' });
    const s = await openSession(broker);
    expect((await acquire(broker, s, 'durable')).status).toBe(200);
  });

  it('answers 503 UNAVAILABLE on /readyz while the store cannot write, 200 on /healthz', async () => {
    const broker = await startHttpBroker();
    let writable = false;
    // The memory store is always writable; shadow the getter to stand in for a sick disk.
    Object.defineProperty(broker.store, 'writable', { configurable: true, get: () => writable });
    const r = await call(broker, 'GET', '/readyz');
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('UNAVAILABLE');
    expect((await call(broker, 'GET', '/healthz')).status).toBe(200);
    expect(metric(await scrape(broker), 'leasewire_store_writable')).toBe(0);
    writable = true;
    expect((await call(broker, 'GET', '/readyz')).status).toBe(200);
  });
});
