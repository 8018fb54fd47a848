import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../shared/close-codes.js';
import { RawClient, startScene } from '../helpers/raw-client.js';

// Session lifecycle at the protocol level: what watchers, waiters and the holder itself see when
// a holder drops, comes back, is taken over, says bye, or lets a lease-level TTL run out.

describe('a holder that drops without a close frame', () => {
  it('keeps its lease for the session TTL, then watchers see expired and the waiter acquire it', async () => {
    const scene = await startScene();
    const ttlMs = 1_000;
    const { client: watcher } = await RawClient.session(scene.url, {}, { label: 'watcher' });
    await watcher.call({ type: 'watch', prefix: 'jobs/' }, 'watching');
    const { client: holder, welcome: hw } = await RawClient.session(
      scene.url,
      { ttlMs, owner: 'holder' },
      { label: 'holder' },
    );
    const { client: waiter, welcome: ww } = await RawClient.session(
      scene.url,
      { owner: 'waiter' },
      { label: 'waiter' },
    );
    const lastRequestAt = performance.now();
    const held = await holder.call({ type: 'acquire', name: 'jobs/nightly' }, 'granted');
    const waitRef = waiter.ref();
    expect(
      await waiter.request({ type: 'acquire', ref: waitRef, name: 'jobs/nightly', wait: true }),
    ).toMatchObject({ type: 'queued', position: 1 });
    await watcher.waitForEvents((evs) =>
      evs.some((e) => e.kind === 'acquired' && e.token === held.lease.token),
    );
    const mark = watcher.mark();

    const droppedAt = performance.now();
    holder.ws.terminate();
    const events = await watcher.waitForEvents((evs) => evs.some((e) => e.sessionId === ww.sessionId), {
      since: mark,
      timeoutMs: ttlMs + 5_000,
      label: 'the waiter to acquire jobs/nightly',
    });
    const arrivedAt = performance.now();
    const [expired, acquired] = events;
    expect(events).toHaveLength(2);
    expect(expired).toMatchObject({
      kind: 'expired',
      name: 'jobs/nightly',
      reason: 'session-expired',
      sessionId: hw.sessionId,
      token: held.lease.token,
    });
    expect(acquired).toMatchObject({
      kind: 'acquired',
      name: 'jobs/nightly',
      sessionId: ww.sessionId,
      owner: 'waiter',
      reason: 'session-expired',
      previous: { sessionId: hw.sessionId, token: held.lease.token },
      revision: (expired?.revision ?? 0) + 1,
    });
    expect(acquired?.token).toBeGreaterThan(held.lease.token);
    // Not before the TTL since the holder was last heard, and within a small bound after the drop.
    expect(arrivedAt - lastRequestAt).toBeGreaterThanOrEqual(ttlMs);
    expect(arrivedAt - droppedAt).toBeLessThan(ttlMs + 1_500);
    // The waiter's acquire is answered with the grant.
    expect(
      await waiter.waitFor((f) => 'ref' in f && f.ref === waitRef && f.type === 'granted'),
    ).toMatchObject({
      lease: { name: 'jobs/nightly', token: acquired?.token },
    });
  });
});

describe('resuming a session', () => {
  it('keeps the lease and token, and a watch re-attached with fromRevision replays exactly the missed events', async () => {
    const scene = await startScene();
    const { client: first, welcome } = await RawClient.session(
      scene.url,
      { ttlMs: 10_000 },
      { label: 'first' },
    );
    const held = await first.call({ type: 'acquire', name: 'jobs/mine' }, 'granted');
    const watching = await first.call({ type: 'watch', prefix: 'jobs/' }, 'watching');
    expect(watching.snapshot?.map((l) => l.name)).toEqual(['jobs/mine']);
    const { client: other } = await RawClient.session(scene.url, {}, { label: 'other' });

    // One change seen live, then the connection drops (no close frame).
    const seenLive = await other.call({ type: 'acquire', name: 'jobs/a' }, 'granted');
    await first.waitForEvents((evs) => evs.some((e) => e.revision === seenLive.lease.revision));
    const lastSeen = Math.max(...first.events().map((e) => e.revision));
    first.ws.terminate();
    await first.waitForClose();

    // Changes while it is away: three under the prefix, one outside it.
    const missed: { kind: string; name: string; revision: number }[] = [];
    const b = await other.call({ type: 'acquire', name: 'jobs/b' }, 'granted');
    missed.push({ kind: 'acquired', name: 'jobs/b', revision: b.lease.revision });
    await other.call({ type: 'acquire', name: 'elsewhere/x' }, 'granted');
    const released = await other.call({ type: 'release', name: 'jobs/a', token: seenLive.lease.token }, 'ok');
    missed.push({ kind: 'released', name: 'jobs/a', revision: released.revision });
    const c = await other.call({ type: 'acquire', name: 'jobs/c' }, 'granted');
    missed.push({ kind: 'acquired', name: 'jobs/c', revision: c.lease.revision });

    const second = await RawClient.open(scene.url, { label: 'second' });
    const resumed = await second.hello({ sessionId: welcome.sessionId, secret: welcome.secret });
    expect(resumed).toMatchObject({
      resumed: true,
      sessionId: welcome.sessionId,
      leases: [{ name: 'jobs/mine', token: held.lease.token }],
    });
    const rewatch = await second.call({ type: 'watch', prefix: 'jobs/', fromRevision: lastSeen }, 'watching');
    expect(rewatch.snapshot).toBeUndefined();
    expect(rewatch.events?.map((e) => ({ kind: e.kind, name: e.name, revision: e.revision }))).toEqual(
      missed,
    );
    expect(rewatch.revision).toBe(c.lease.revision);

    // Later changes arrive once each, after the replay, with nothing repeated.
    const d = await other.call({ type: 'acquire', name: 'jobs/d' }, 'granted');
    const live = await second.waitForEvents((evs) => evs.some((e) => e.revision === d.lease.revision));
    expect(live).toHaveLength(1);
    expect(live[0]).toMatchObject({ kind: 'acquired', name: 'jobs/d', revision: d.lease.revision });
    const all = [...first.events(), ...(rewatch.events ?? []), ...live].map((e) => e.revision);
    expect(new Set(all).size).toBe(all.length);
    // The lease was never given up.
    expect(await second.request({ type: 'get', name: 'jobs/mine' })).toMatchObject({
      lease: { token: held.lease.token, sessionId: welcome.sessionId, revision: held.lease.revision },
    });
  });

  it('takes the session over from a socket that is still open, closing the old one with 4002', async () => {
    const scene = await startScene();
    const { client: old, welcome } = await RawClient.session(scene.url, {}, { label: 'old socket' });
    const held = await old.call({ type: 'acquire', name: 'jobs/mine' }, 'granted');
    const fresh = await RawClient.open(scene.url, { label: 'new socket' });
    const resumed = await fresh.hello({ sessionId: welcome.sessionId, secret: welcome.secret });
    expect(resumed).toMatchObject({
      resumed: true,
      leases: [{ name: 'jobs/mine', token: held.lease.token }],
    });
    expect((await old.waitForClose()).code).toBe(CloseCodes.SESSION_TAKEN_OVER);
    // The new socket speaks for the session: it can release with the token.
    expect(
      await fresh.request({ type: 'release', name: 'jobs/mine', token: held.lease.token }),
    ).toMatchObject({
      type: 'ok',
    });
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'jobs/mine' });
  });
});

describe('ending a session', () => {
  it('releases every lease at once on bye, with reason session-closed, and hands them to waiters', async () => {
    const scene = await startScene();
    const { client: holder, welcome: hw } = await RawClient.session(
      scene.url,
      { ttlMs: 60_000 },
      { label: 'holder' },
    );
    const { client: waiter, welcome: ww } = await RawClient.session(scene.url, {}, { label: 'waiter' });
    const a = await holder.call({ type: 'acquire', name: 'jobs/a' }, 'granted');
    const b = await holder.call({ type: 'acquire', name: 'jobs/b' }, 'granted');
    const waitRef = waiter.ref();
    await waiter.request({ type: 'acquire', ref: waitRef, name: 'jobs/a', wait: true });
    const watcher = scene.bystander.client;
    const mark = watcher.mark();

    expect(await holder.request({ type: 'bye' })).toMatchObject({ type: 'ok' });
    expect((await holder.waitForClose()).code).toBe(CloseCodes.NORMAL);
    const events = await watcher.waitForEvents((evs) => evs.length >= 3, {
      since: mark,
      timeoutMs: 2_000,
      label: 'the releases (long before the 60 s session TTL)',
    });
    expect(
      events.map((e) => ({ kind: e.kind, name: e.name, reason: e.reason, sessionId: e.sessionId })),
    ).toEqual(
      expect.arrayContaining([
        { kind: 'released', name: 'jobs/a', reason: 'session-closed', sessionId: hw.sessionId },
        { kind: 'released', name: 'jobs/b', reason: 'session-closed', sessionId: hw.sessionId },
        { kind: 'acquired', name: 'jobs/a', reason: 'session-closed', sessionId: ww.sessionId },
      ]),
    );
    expect(events).toHaveLength(3);
    const releasedTokens = events.filter((e) => e.kind === 'released').map((e) => e.token);
    expect(releasedTokens.sort((x, y) => x - y)).toEqual([a.lease.token, b.lease.token]);
    expect(
      await waiter.waitFor((f) => 'ref' in f && f.ref === waitRef && f.type === 'granted'),
    ).toMatchObject({
      lease: { name: 'jobs/a' },
    });
    expect(await waiter.request({ type: 'get', name: 'jobs/b' })).toMatchObject({ lease: null });
    // The session is gone: it cannot be resumed.
    const again = await RawClient.open(scene.url, { label: 'resumer' });
    expect(
      await again.request({ type: 'hello', version: 1, sessionId: hw.sessionId, secret: hw.secret }),
    ).toMatchObject({ code: 'SESSION_EXPIRED' });
  });

  it('sends lost to the holder and expired (lease-ttl) to watchers when a lease TTL passes without a renew', async () => {
    const scene = await startScene();
    const leaseTtlMs = 600;
    const { client: holder } = await RawClient.session(scene.url, {}, { label: 'holder' });
    const acquiredAt = performance.now();
    const held = await holder.call({ type: 'acquire', name: 'jobs/bounded', ttlMs: leaseTtlMs }, 'granted');
    expect(held.lease.ttlMs).toBe(leaseTtlMs);
    const lost = await holder.waitFor((f) => f.type === 'lost', { label: 'a lost push' });
    expect(performance.now() - acquiredAt).toBeGreaterThanOrEqual(leaseTtlMs);
    expect(lost).toEqual({
      type: 'lost',
      name: 'jobs/bounded',
      token: held.lease.token,
      reason: 'lease-ttl',
    });
    const events = await scene.bystander.client.waitForEvents(
      (evs) => evs.some((e) => e.kind === 'expired' && e.name === 'jobs/bounded'),
      { since: scene.bystander.since, label: 'the expired event' },
    );
    const expired = events.find((e) => e.kind === 'expired');
    expect(expired).toMatchObject({
      kind: 'expired',
      name: 'jobs/bounded',
      reason: 'lease-ttl',
      token: held.lease.token,
    });
    // The session itself is fine; the lease is simply gone.
    expect(
      await holder.request({ type: 'renew', name: 'jobs/bounded', token: held.lease.token }),
    ).toMatchObject({
      code: 'NOT_HOLDER',
    });
    expect(await holder.request({ type: 'keepalive' })).toMatchObject({ type: 'ok' });
  });
});
