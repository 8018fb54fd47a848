import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connect, LeaseLostError, LeasewireError } from '../../client/index.js';
import { abortedAt, ItemLog, statusReached, testBroker, testClient, within } from '../client/support.js';

describe('client: acquiring and releasing', () => {
  it('connects, reports connected and exposes the granted session TTL', async () => {
    const broker = await testBroker();
    const client = await testClient(broker.url, { ttlMs: 4_000, owner: 'a', WebSocket });
    expect(client.status).toBe('connected');
    expect(client.ttlMs).toBe(4_000);
    expect(client.sessionId).toEqual(expect.any(String));
  });

  it('adds /v1 to a URL without a path', async () => {
    const broker = await testBroker();
    const client = await testClient(`ws://127.0.0.1:${broker.port}`);
    expect(client.status).toBe('connected');
  });

  it('rejects connect when nothing listens, and bad options with errors naming the option', async () => {
    await expect(connect('ws://127.0.0.1:1/v1', { connectTimeoutMs: 2_000 })).rejects.toThrow(Error);
    await expect(connect('http://127.0.0.1:1/v1')).rejects.toThrow(TypeError);
    await expect(connect('ws://127.0.0.1:1/v1', { ttlMs: -5 })).rejects.toThrow(/ttlMs/);
  });

  it('gives a free lease to the first client and refuses it to the second until released', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url, { owner: 'a' });
    const b = await testClient(broker.url, { owner: 'b' });

    const lease = await a.acquire('jobs/nightly', { meta: 'host-a' });
    expect(lease).toMatchObject({ name: 'jobs/nightly', owner: 'a', metaText: 'host-a', held: true });
    expect(await b.tryAcquire('jobs/nightly')).toBeNull();
    const held = await b.acquire('jobs/nightly', { wait: false }).catch((e: unknown) => e);
    expect(held).toBeInstanceOf(LeasewireError);
    expect((held as LeasewireError).code).toBe('LEASE_HELD');
    expect((held as LeasewireError).details.holder).toMatchObject({ owner: 'a', token: lease.token });

    await lease.release();
    expect(lease.held).toBe(false);
    expect(lease.signal.aborted).toBe(false);
    const second = await b.tryAcquire('jobs/nightly');
    expect(second?.token).toBeGreaterThan(lease.token);
  });

  it('returns the same lease when the holder acquires it again', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const first = await a.acquire('x');
    expect(await a.acquire('x')).toBe(first);
  });

  it('grants a waiting acquire when the holder releases', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url, { owner: 'a' });
    const b = await testClient(broker.url, { owner: 'b' });
    const lease = await a.acquire('queue/1');
    const waiting = b.acquire('queue/1');
    // b is queued on the broker before a lets go.
    await within(
      (async () => {
        while (((await a.get('queue/1'))?.waiters ?? 0) === 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      'b to be queued',
    );
    await lease.release();
    const granted = await within(waiting, 'the waiting acquire to be granted');
    expect(granted.owner).toBe('b');
    expect(granted.token).toBeGreaterThan(lease.token);
  });

  it('times out a waiting acquire with WAIT_TIMEOUT', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const b = await testClient(broker.url);
    await a.acquire('slow');
    await expect(b.acquire('slow', { waitTimeoutMs: 100 })).rejects.toMatchObject({ code: 'WAIT_TIMEOUT' });
  });

  it('cancels a waiting acquire when its signal aborts, and the lease goes to the next waiter', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const b = await testClient(broker.url);
    const c = await testClient(broker.url, { owner: 'c' });
    const lease = await a.acquire('busy');
    const ctrl = new AbortController();
    const bWait = b.acquire('busy', { signal: ctrl.signal });
    const cWait = c.acquire('busy');
    ctrl.abort(new Error('not needed any more'));
    await expect(bWait).rejects.toThrow('not needed any more');
    await lease.release();
    expect((await within(cWait, 'c to be granted')).owner).toBe('c');
  });

  it('runs withLease with the lease and releases it afterwards, also when the callback throws', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const result = await a.withLease('w', async (lease) => {
      expect((await a.get('w'))?.token).toBe(lease.token);
      return 42;
    });
    expect(result).toBe(42);
    expect(await a.get('w')).toBeNull();
    await expect(
      a.withLease('w', () => {
        throw new Error('job failed');
      }),
    ).rejects.toThrow('job failed');
    expect(await a.get('w')).toBeNull();
  });

  it('lists leases by prefix and updates metadata', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const one = await a.acquire('rooms/1');
    await a.acquire('rooms/2');
    await a.acquire('other');
    expect((await a.list('rooms/')).map((l) => l.name)).toEqual(['rooms/1', 'rooms/2']);
    await one.setMeta('busy');
    expect(one.metaText).toBe('busy');
    expect(new TextDecoder().decode((await a.get('rooms/1'))?.meta)).toBe('busy');
    await expect(a.acquire('bad\u0001name')).rejects.toMatchObject({ code: 'NAME_INVALID' });
    await expect(a.acquire('m', { meta: 'x'.repeat(2_000) })).rejects.toThrow(RangeError);
  });

  it('aborts a lease-level TTL lease locally when it is not renewed, no later than the broker says lost', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const watcher = await testClient(broker.url);
    const log = new ItemLog();
    await watcher.watch('ttl/', { onEvent: log.onEvent });
    const lease = await a.acquire('ttl/1', { ttlMs: 600 });
    expect(lease.ttlMs).toBe(600);
    const abortTime = await abortedAt(lease.signal, 'the lease-ttl abort');
    const expired = await log.waitForEvent('expired', 'ttl/1');
    expect(abortTime).toBeLessThanOrEqual(expired.at);
    const reason = lease.signal.reason as LeaseLostError;
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(reason.reason).toBe('lease-ttl');
    await expect(lease.renew()).rejects.toBe(reason);
  });

  it('keeps a lease-level TTL lease alive with autoRenew', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const b = await testClient(broker.url);
    const lease = await a.acquire('ttl/2', { ttlMs: 600, autoRenew: true });
    // Three TTLs later the lease is still a's: a waiter with a deadline never gets it.
    await expect(b.acquire('ttl/2', { waitTimeoutMs: 1_800 })).rejects.toMatchObject({
      code: 'WAIT_TIMEOUT',
    });
    expect(lease.held).toBe(true);
    expect(lease.signal.aborted).toBe(false);
  });

  it('releases every lease on close() without aborting their signals', async () => {
    const broker = await testBroker();
    const a = await connect(broker.url);
    const b = await testClient(broker.url, { owner: 'b' });
    const lease = await a.acquire('closing/1');
    const waiting = b.acquire('closing/1');
    const statuses: string[] = [];
    const iterating = (async () => {
      for await (const change of a.statusChanges()) statuses.push(change.status);
    })();
    await a.close();
    await within(iterating, 'statusChanges() to end after close');
    expect(statuses).toEqual(['closed']);
    expect(a.status).toBe('closed');
    expect(lease.signal.aborted).toBe(false);
    expect(lease.held).toBe(false);
    expect((await within(waiting, 'the waiter to get the released lease')).owner).toBe('b');
    await expect(a.get('x')).rejects.toMatchObject({ code: 'CANCELLED' });
    await statusReached(a, 'closed');
  });
});
