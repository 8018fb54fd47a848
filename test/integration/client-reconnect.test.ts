import { describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../client/index.js';
import {
  abortedAt,
  ItemLog,
  proxyFor,
  statusReached,
  testBroker,
  testClient,
  within,
} from '../client/support.js';

describe('client: reconnecting', () => {
  it('resumes after the socket dies: same session, same lease and token, missed watch events delivered once', async () => {
    const broker = await testBroker();
    const proxy = await proxyFor(broker);
    const a = await testClient(proxy.url('/v1'), { ttlMs: 5_000, owner: 'a' });
    const b = await testClient(broker.url, { owner: 'b' });
    const log = new ItemLog();
    await a.watch('rooms/', { onEvent: log.onEvent });
    const lease = await a.acquire('rooms/a');
    await log.waitForEvent('acquired', 'rooms/a');
    const sessionId = a.sessionId;

    proxy.refuseNew(true);
    proxy.resetAll();
    await statusReached(a, 'suspended');
    // Changes while a is away.
    const bLease = await b.acquire('rooms/b');
    await bLease.setMeta('while away');
    // A request made while disconnected waits for the resume.
    const listed = a.list('rooms/');
    proxy.refuseNew(false);

    await statusReached(a, 'resumed');
    expect(a.sessionId).toBe(sessionId);
    expect(lease.held).toBe(true);
    expect(lease.signal.aborted).toBe(false);
    expect((await a.get('rooms/a'))?.token).toBe(lease.token);
    expect((await within(listed, 'the queued list')).map((l) => l.name)).toEqual(['rooms/a', 'rooms/b']);

    await bLease.release();
    await log.waitForEvent('released', 'rooms/b');
    expect(log.events).toEqual([
      'acquired rooms/a',
      'acquired rooms/b',
      'updated rooms/b',
      'released rooms/b',
    ]);
    const revisions = log.revisions;
    expect(new Set(revisions).size).toBe(revisions.length);
    expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
  });

  it('re-issues a waiting acquire after a resume (the broker drops waits with the connection)', async () => {
    const broker = await testBroker();
    const proxy = await proxyFor(broker);
    const a = await testClient(proxy.url('/v1'), { ttlMs: 5_000, owner: 'a' });
    const b = await testClient(broker.url, { owner: 'b' });
    const held = await b.acquire('jobs/1');
    const waiting = a.acquire('jobs/1');
    await within(
      (async () => {
        while (((await b.get('jobs/1'))?.waiters ?? 0) === 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      'a to be queued',
    );
    proxy.refuseNew(true);
    proxy.resetAll();
    await statusReached(a, 'suspended');
    // The broker dropped a's wait with its connection.
    await within(
      (async () => {
        while (((await b.get('jobs/1'))?.waiters ?? 1) !== 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      'the broker to drop the wait',
    );
    proxy.refuseNew(false);
    await statusReached(a, 'resumed');
    await held.release();
    const lease = await within(waiting, 'the re-issued wait to be granted');
    expect(lease.owner).toBe('a');
    expect(lease.token).toBeGreaterThan(held.token);
  });

  it('aborts a dropped client’s lease locally no later than a watcher elsewhere sees it expire', async () => {
    const broker = await testBroker({ minTtlMs: 100 });
    const proxy = await proxyFor(broker);
    const a = await testClient(proxy.url('/v1'), { ttlMs: 1_200, owner: 'a', connectTimeoutMs: 300 });
    const watcher = await testClient(broker.url, { owner: 'w' });
    const b = await testClient(broker.url, { owner: 'b' });
    const log = new ItemLog();
    await watcher.watch('locks/', { onEvent: log.onEvent });
    const lease = await a.acquire('locks/x');
    const waiting = b.acquire('locks/x');

    // A partition: the sockets stay open, nothing gets through, new connections hang.
    proxy.blackhole(true);
    const abortTime = await abortedAt(lease.signal, 'the local abort', 5_000);
    const expired = await log.waitForEvent('expired', 'locks/x');
    const granted = await within(waiting, 'b to get the expired lease');

    expect(abortTime).toBeLessThanOrEqual(expired.at);
    expect((lease.signal.reason as LeaseLostError).reason).toBe('expired');
    expect(a.status).toBe('expired');
    expect(granted.token).toBeGreaterThan(lease.token);
  });

  it('opens a new session after the broker refuses to resume an expired one, and the watch carries on', async () => {
    const broker = await testBroker({ minTtlMs: 100 });
    const proxy = await proxyFor(broker);
    const a = await testClient(proxy.url('/v1'), { ttlMs: 800, owner: 'a' });
    const b = await testClient(broker.url, { owner: 'b' });
    const log = new ItemLog();
    await a.watch('', { onEvent: log.onEvent });
    const lease = await a.acquire('gone');
    const oldSession = a.sessionId;
    const statuses: string[] = [];
    a.onStatus((c) => statuses.push(`${c.status}${c.reason ? `:${c.reason}` : ''}`));

    proxy.refuseNew(true);
    proxy.resetAll();
    await abortedAt(lease.signal, 'the lease to be given up');
    // Wait until the broker has expired the session too (b can take the lease).
    const bLease = await within(b.acquire('gone'), 'b to get the lease after the expiry');
    proxy.refuseNew(false);

    await statusReached(a, 'connected');
    expect(a.sessionId).not.toBe(oldSession);
    expect(statuses).toEqual(['suspended:ABNORMAL_CLOSURE', 'expired:safety-deadline', 'connected']);
    // The watch re-attached from its last revision: it saw the expiry and b's grant, in order, once.
    await log.waitForEvent('acquired', 'gone');
    await bLease.release();
    await log.waitForEvent('released', 'gone');
    expect(log.events).toEqual(['acquired gone', 'expired gone', 'acquired gone', 'released gone']);
    // The new session works.
    expect((await a.acquire('fresh')).sessionId).toBe(a.sessionId);
  });

  it('fails queued requests for an expired session with SESSION_EXPIRED when new sessions are off', async () => {
    const broker = await testBroker({ minTtlMs: 100 });
    const proxy = await proxyFor(broker);
    const a = await testClient(proxy.url('/v1'), {
      ttlMs: 600,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100, newSessionOnExpiry: false },
    });
    const lease = await a.acquire('one');
    proxy.refuseNew(true);
    proxy.resetAll();
    await statusReached(a, 'suspended');
    const renewing = lease.renew().catch((e: unknown) => e);
    await abortedAt(lease.signal, 'the local abort');
    // Long enough for the broker to have expired it as well: wait for the refusal.
    await within(
      (async () => {
        const other = await testClient(broker.url);
        while ((await other.get('one')) !== null) await new Promise((r) => setTimeout(r, 20));
      })(),
      'the broker to expire the session',
    );
    // A renew still queued when the lease was given up fails with the loss, not later.
    expect(await renewing).toBeInstanceOf(LeaseLostError);
    const queuedGet = a.get('one');
    proxy.refuseNew(false);
    // The broker refuses the resume; with newSessionOnExpiry off the client stays expired.
    await expect(within(queuedGet, 'the queued get to fail')).rejects.toMatchObject({
      code: 'SESSION_EXPIRED',
    });
    expect(a.status).toBe('expired');
    await expect(a.get('one')).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });
  });
});
