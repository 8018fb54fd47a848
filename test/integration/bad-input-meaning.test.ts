import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../shared/close-codes.js';
import type { ServerFrame } from '../../shared/frames.js';
import { BYSTANDER_LEASE, RawClient, RawTcp, type Scene, startScene } from '../helpers/raw-client.js';

// Well-formed frames that ask for something wrong. Each gets an error with its ref and the
// exact catalog code; the connection stays usable unless the case says otherwise, and nothing
// changes for anyone else.

async function attacker(scene: Scene, hello: Record<string, unknown> = {}) {
  return RawClient.session(scene.url, { owner: 'attacker', ...hello }, { label: 'attacker' });
}

function errorCode(reply: ServerFrame): string | undefined {
  return reply.type === 'error' ? reply.code : undefined;
}

describe('hello', () => {
  it('refuses a request before hello with HELLO_REQUIRED and closes with 4005', async () => {
    const scene = await startScene();
    const client = await RawClient.open(scene.url, { label: 'attacker' });
    const reply = await client.request({ type: 'acquire', ref: 3, name: 'early' });
    expect(reply).toMatchObject({ type: 'error', ref: 3, code: 'HELLO_REQUIRED' });
    expect((await client.waitForClose()).code).toBe(CloseCodes.HELLO_REFUSED);
    await scene.bystander.expectUndisturbed();
  });

  it.each([0, 2, 999])(
    'refuses protocol version %s with UNSUPPORTED_VERSION and closes with 4005',
    async (version) => {
      const scene = await startScene();
      const client = await RawClient.open(scene.url, { label: 'attacker' });
      expect(await client.request({ type: 'hello', ref: 1, version })).toMatchObject({
        type: 'error',
        ref: 1,
        code: 'UNSUPPORTED_VERSION',
      });
      expect((await client.waitForClose()).code).toBe(CloseCodes.HELLO_REFUSED);
      await scene.bystander.expectUndisturbed();
    },
  );

  it('answers a second hello with ALREADY_HELLO and keeps the session', async () => {
    const scene = await startScene();
    const { client, welcome } = await attacker(scene);
    expect(await client.request({ type: 'hello', version: 1 })).toMatchObject({ code: 'ALREADY_HELLO' });
    expect(await client.request({ type: 'keepalive' })).toMatchObject({ type: 'ok' });
    expect(scene.broker.store.sessionDeadline(welcome.sessionId)).toBeDefined();
    await scene.bystander.expectUndisturbed();
  });

  it.each<{ what: string; fields: Record<string, unknown> }>([
    { what: 'a session ttlMs of 0', fields: { ttlMs: 0 } },
    { what: 'a session ttlMs of -1', fields: { ttlMs: -1 } },
    { what: 'a session ttlMs of 1e308', fields: { ttlMs: 1e308 } },
    { what: 'a session ttlMs of NaN', fields: { ttlMs: Number.NaN } },
    { what: 'a session ttlMs of "5000"', fields: { ttlMs: '5000' } },
    { what: 'a sessionId without a secret', fields: { sessionId: 'abc' } },
    { what: 'an owner over 256 bytes', fields: { owner: 'o'.repeat(257) } },
    { what: 'a secret over 128 characters', fields: { sessionId: 'abc', secret: 's'.repeat(129) } },
  ])('answers hello with $what with BAD_REQUEST, and a correct hello still works', async ({ fields }) => {
    const scene = await startScene();
    const client = await RawClient.open(scene.url, { label: 'attacker' });
    expect(await client.request({ type: 'hello', version: 1, ...fields })).toMatchObject({
      type: 'error',
      code: 'BAD_REQUEST',
    });
    expect((await client.hello()).resumed).toBe(false);
    await scene.bystander.expectUndisturbed();
  });

  it('clamps a huge but valid session ttlMs to maxTtlMs', async () => {
    const scene = await startScene({ maxTtlMs: 60_000 });
    const { welcome } = await attacker(scene, { ttlMs: Number.MAX_SAFE_INTEGER });
    expect(welcome.ttlMs).toBe(60_000);
    await scene.bystander.expectUndisturbed();
  });
});

describe('resume', () => {
  it('refuses a resume with a wrong secret (BAD_SECRET, 4005) without refreshing or touching the real session', async () => {
    const scene = await startScene();
    const { client: victim, welcome } = await RawClient.session(
      scene.url,
      { ttlMs: 10_000 },
      { label: 'victim' },
    );
    const held = await victim.call({ type: 'acquire', name: 'victim/lease' }, 'granted');
    // The victim is between connections: nothing refreshes its session now.
    victim.ws.terminate();
    await victim.waitForClose();
    const deadline = scene.broker.store.sessionDeadline(welcome.sessionId);
    expect(deadline).toBeDefined();

    const thief = await RawClient.open(scene.url, { label: 'thief' });
    const reply = await thief.request({
      type: 'hello',
      version: 1,
      sessionId: welcome.sessionId,
      secret: `${welcome.secret.slice(0, -1)}x`,
    });
    expect(reply).toMatchObject({ type: 'error', code: 'BAD_SECRET' });
    expect((await thief.waitForClose()).code).toBe(CloseCodes.HELLO_REFUSED);

    expect(scene.broker.store.sessionDeadline(welcome.sessionId)).toBe(deadline);
    expect(await scene.bystander.client.request({ type: 'get', name: 'victim/lease' })).toMatchObject({
      lease: { token: held.lease.token, sessionId: welcome.sessionId },
    });
    // The real owner comes back with the right secret and finds its lease.
    const back = await RawClient.open(scene.url, { label: 'victim again' });
    const resumed = await back.hello({ sessionId: welcome.sessionId, secret: welcome.secret });
    expect(resumed).toMatchObject({
      resumed: true,
      leases: [{ name: 'victim/lease', token: held.lease.token }],
    });
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'victim/lease' });
  });

  it('does not take over a live session on a wrong secret', async () => {
    const scene = await startScene();
    const { client: victim, welcome } = await RawClient.session(scene.url, {}, { label: 'victim' });
    const thief = await RawClient.open(scene.url, { label: 'thief' });
    const reply = await thief.request({
      type: 'hello',
      version: 1,
      sessionId: welcome.sessionId,
      secret: 'guess',
    });
    expect(reply).toMatchObject({ type: 'error', code: 'BAD_SECRET' });
    expect((await thief.waitForClose()).code).toBe(CloseCodes.HELLO_REFUSED);
    expect(await victim.request({ type: 'keepalive' })).toMatchObject({ type: 'ok' });
    expect(victim.closed).toBeUndefined();
    await scene.bystander.expectUndisturbed();
  });

  it('refuses to resume an expired session with SESSION_EXPIRED and closes with 4005', async () => {
    const scene = await startScene();
    const { client: gone, welcome } = await RawClient.session(
      scene.url,
      { ttlMs: 500 },
      { label: 'short-lived' },
    );
    await gone.call({ type: 'acquire', name: 'expiring/lease' }, 'granted');
    gone.ws.terminate();
    await scene.bystander.client.waitForEvents(
      (evs) => evs.some((e) => e.kind === 'expired' && e.sessionId === welcome.sessionId),
      { since: scene.bystander.since, label: 'the short-lived session to expire' },
    );
    const late = await RawClient.open(scene.url, { label: 'late resumer' });
    const reply = await late.request({
      type: 'hello',
      version: 1,
      sessionId: welcome.sessionId,
      secret: welcome.secret,
    });
    expect(reply).toMatchObject({ type: 'error', code: 'SESSION_EXPIRED' });
    expect((await late.waitForClose()).code).toBe(CloseCodes.HELLO_REFUSED);
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'expiring/lease' });
  });

  it('refuses to resume a session id that never existed with SESSION_EXPIRED', async () => {
    const scene = await startScene();
    const client = await RawClient.open(scene.url, { label: 'attacker' });
    const reply = await client.request({
      type: 'hello',
      version: 1,
      sessionId: 'no-such-session',
      secret: 'x',
    });
    expect(reply).toMatchObject({ type: 'error', code: 'SESSION_EXPIRED' });
    expect((await client.waitForClose()).code).toBe(CloseCodes.HELLO_REFUSED);
    await scene.bystander.expectUndisturbed();
  });
});

describe('requests with wrong fields', () => {
  it('answers an unknown op with UNKNOWN_OP and keeps the connection', async () => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    expect(await client.request({ type: 'explode', ref: 41 })).toMatchObject({
      type: 'error',
      ref: 41,
      code: 'UNKNOWN_OP',
    });
    expect(await client.request({ type: 'toString' })).toMatchObject({ code: 'UNKNOWN_OP' });
    expect(await client.request({ type: '__proto__' })).toMatchObject({ code: 'UNKNOWN_OP' });
    expect(await client.request({ type: 'keepalive' })).toMatchObject({ type: 'ok' });
    await scene.bystander.expectUndisturbed();
  });

  it.each<{ what: string; fields: Record<string, unknown> }>([
    { what: 'a lease ttlMs of 0', fields: { ttlMs: 0 } },
    { what: 'a lease ttlMs of -1', fields: { ttlMs: -1 } },
    { what: 'a lease ttlMs of 1e308', fields: { ttlMs: 1e308 } },
    { what: 'a lease ttlMs of NaN', fields: { ttlMs: Number.NaN } },
    { what: 'a lease ttlMs of "5000"', fields: { ttlMs: '5000' } },
    { what: 'a lease ttlMs of 1.5', fields: { ttlMs: 1.5 } },
    { what: 'a waitTimeoutMs of -1', fields: { wait: true, waitTimeoutMs: -1 } },
    { what: 'wait as a string', fields: { wait: 'yes' } },
    { what: 'meta as a string', fields: { meta: 'not binary' } },
  ])('answers an acquire with $what with BAD_REQUEST', async ({ fields }) => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    expect(await client.request({ type: 'acquire', ref: 5, name: 'jobs/a', ...fields })).toMatchObject({
      type: 'error',
      ref: 5,
      code: 'BAD_REQUEST',
    });
    expect(await client.request({ type: 'get', name: 'jobs/a' })).toMatchObject({ lease: null });
    await scene.bystander.expectUndisturbed();
  });

  it('reads a field sent as undefined by our own encoder as absent', async () => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    const granted = await client.request({
      type: 'acquire',
      name: 'jobs/u',
      ttlMs: undefined,
      wait: undefined,
    });
    expect(granted).toMatchObject({ type: 'granted', lease: { name: 'jobs/u' } });
    expect(granted).not.toHaveProperty('lease.ttlMs');
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'jobs/u' });
  });

  it('answers meta over maxMetaBytes with META_TOO_LARGE', async () => {
    const scene = await startScene({ maxMetaBytes: 16 });
    const { client } = await attacker(scene);
    const reply = await client.request({ type: 'acquire', name: 'jobs/a', meta: new Uint8Array(17) });
    expect(errorCode(reply)).toBe('META_TOO_LARGE');
    await scene.bystander.expectUndisturbed();
  });

  it.each<{ what: string; token: unknown }>([
    { what: 'a string', token: '1' },
    { what: 'a float', token: 1.5 },
    { what: 'zero', token: 0 },
    { what: 'negative', token: -1 },
    { what: 'past 2^53', token: 2 ** 53 + 2 },
    { what: 'missing', token: undefined },
  ])('answers release and renew with a token that is $what with BAD_REQUEST', async ({ token }) => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    await client.call({ type: 'acquire', name: 'jobs/a' }, 'granted');
    for (const type of ['release', 'renew', 'setMeta']) {
      const reply = await client.request({ type, name: 'jobs/a', token, meta: null });
      expect(errorCode(reply), type).toBe('BAD_REQUEST');
    }
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'jobs/a' });
  });

  it('refuses a stale token of the same session with STALE_TOKEN and keeps the current grant', async () => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    const first = await client.call({ type: 'acquire', name: 'jobs/a' }, 'granted');
    await client.call({ type: 'release', name: 'jobs/a', token: first.lease.token }, 'ok');
    const second = await client.call({ type: 'acquire', name: 'jobs/a' }, 'granted');
    expect(second.lease.token).toBeGreaterThan(first.lease.token);
    for (const type of ['release', 'renew', 'setMeta']) {
      const reply = await client.request({ type, name: 'jobs/a', token: first.lease.token, meta: null });
      expect(errorCode(reply), type).toBe('STALE_TOKEN');
    }
    expect(await client.request({ type: 'get', name: 'jobs/a' })).toMatchObject({
      lease: { token: second.lease.token, revision: second.lease.revision },
    });
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'jobs/a' });
  });

  it("refuses release, renew and setMeta of another session's lease with NOT_HOLDER, even with its token", async () => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    const { token } = scene.bystander.lease;
    for (const type of ['release', 'renew', 'setMeta']) {
      const reply = await client.request({ type, name: BYSTANDER_LEASE, token, meta: new Uint8Array(1) });
      expect(errorCode(reply), type).toBe('NOT_HOLDER');
    }
    await scene.bystander.expectUndisturbed();
  });

  it('answers a double release with NOT_HOLDER the second time', async () => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    const granted = await client.call({ type: 'acquire', name: 'jobs/a' }, 'granted');
    await client.call({ type: 'release', name: 'jobs/a', token: granted.lease.token }, 'ok');
    const again = await client.request({ type: 'release', name: 'jobs/a', token: granted.lease.token });
    expect(errorCode(again)).toBe('NOT_HOLDER');
    expect(errorCode(await client.request({ type: 'release', name: 'never/held', token: 1 }))).toBe(
      'NOT_HOLDER',
    );
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'jobs/a' });
  });

  it('answers a retried acquire with the same ref with the same grant and one event', async () => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    const first = await client.call({ type: 'acquire', ref: 70, name: 'jobs/retry' }, 'granted');
    const mark = client.mark();
    const retry = await client.request({ type: 'acquire', ref: 70, name: 'jobs/retry' });
    expect(client.frames.slice(mark).filter((f) => 'ref' in f && f.ref === 70)).toHaveLength(1);
    expect(retry).toMatchObject({
      type: 'granted',
      lease: { token: first.lease.token, revision: first.lease.revision },
    });
    const seen = scene.bystander.client.events(scene.bystander.since).filter((e) => e.name === 'jobs/retry');
    expect(seen.map((e) => e.kind)).toEqual(['acquired']);
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'jobs/retry' });
  });

  it('answers cancel without a wait and unwatch of an unknown watch with NOT_FOUND', async () => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    expect(errorCode(await client.request({ type: 'cancel', name: 'jobs/a' }))).toBe('NOT_FOUND');
    expect(errorCode(await client.request({ type: 'unwatch', watchId: 12345 }))).toBe('NOT_FOUND');
    // The bystander's watch id means nothing on another connection.
    expect(errorCode(await client.request({ type: 'unwatch', watchId: scene.bystander.watchId }))).toBe(
      'NOT_FOUND',
    );
    await scene.bystander.expectUndisturbed();
  });
});

describe('lease names', () => {
  it.each<{ what: string; name: unknown }>([
    { what: 'empty', name: '' },
    { what: '10 KiB long', name: 'n'.repeat(10 * 1024) },
    { what: 'one byte over 512', name: `${'é'.repeat(256)}x` },
    { what: 'holding NUL', name: 'a\u0000b' },
    { what: 'holding DEL', name: 'a\u007fb' },
    { what: 'holding a C1 control (NEL)', name: 'a\u0085b' },
    { what: 'holding a newline', name: 'jobs/\nx' },
    { what: 'a number', name: 42 },
    { what: 'missing', name: undefined },
  ])('refuses a name that is $what with NAME_INVALID', async ({ name }) => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    for (const type of ['acquire', 'get', 'cancel']) {
      expect(errorCode(await client.request({ type, name })), type).toBe('NAME_INVALID');
    }
    await scene.bystander.expectUndisturbed();
  });

  it('accepts a name of exactly 512 bytes and one with a surrogate pair', async () => {
    const scene = await startScene();
    const { client } = await attacker(scene);
    const long = `${'é'.repeat(255)}xy`;
    for (const name of [long, 'emoji/😀']) {
      expect(await client.request({ type: 'acquire', name })).toMatchObject({
        type: 'granted',
        lease: { name },
      });
    }
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === long || n === 'emoji/😀' });
  });

  it.each(['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf'])(
    'treats %s as an ordinary lease name',
    async (name) => {
      const scene = await startScene();
      const { client } = await attacker(scene);
      const granted = await client.call({ type: 'acquire', name }, 'granted');
      expect(granted.lease).toMatchObject({ name, waiters: 0 });
      expect(await client.request({ type: 'get', name })).toMatchObject({
        lease: { name, token: granted.lease.token },
      });
      const listed = await client.call({ type: 'list', prefix: name }, 'leases');
      expect(listed.leases.map((l) => l.name)).toEqual([name]);
      // Held means held: another session is told so, with the holder.
      const { client: other } = await RawClient.session(scene.url, {}, { label: 'other' });
      expect(await other.request({ type: 'acquire', name })).toMatchObject({
        code: 'LEASE_HELD',
        details: { holder: { token: granted.lease.token } },
      });
      await client.call({ type: 'release', name, token: granted.lease.token }, 'ok');
      expect(await client.request({ type: 'get', name })).toMatchObject({ lease: null });
      // A name that is not held reads as not held, not as something inherited.
      expect(await other.request({ type: 'get', name: `${name}/x` })).toMatchObject({ lease: null });
      const seen = scene.bystander.client.events(scene.bystander.since).filter((e) => e.name === name);
      expect(seen.map((e) => e.kind)).toEqual(['acquired', 'released']);
      await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === name });
    },
  );
});

describe('limits', () => {
  // The floods below cost the broker tens of thousands of refusals; on a loaded two-core box that
  // takes a while, hence their own test timeouts.
  it('caps watches at maxWatchesPerSession under a flood of 100k watch requests; earlier watches still work', async () => {
    // ~10 MB of replies pile up while this process is busy sending the flood; on a loaded machine
    // that once tripped the slow-consumer bound (4004), which is not what this test is about.
    const scene = await startScene({ maxRequestsPerSecond: 1_000_000, maxBufferedBytes: 64 * 1024 * 1024 });
    const max = scene.broker.options.maxWatchesPerSession;
    const tcp = await RawTcp.upgraded(scene.port, 'attacker');
    await tcp.hello();
    const count = 100_000;
    const refs = Array.from({ length: count }, (_, i) => 100 + i);
    await tcp.sendMessages(refs.map((ref) => ({ type: 'watch', ref, prefix: 'flood/' })));
    await tcp.waitForMessage((m) => 'ref' in m && m.ref === refs.at(-1), 'the reply to the last watch', {
      timeoutMs: 50_000,
    });
    const replies = tcp.messages().filter((m) => 'ref' in m && m.ref !== undefined && m.ref >= 100);
    expect(replies).toHaveLength(count);
    const watching = replies.filter((f) => f.type === 'watching');
    const refused = replies.filter((f) => f.type === 'error');
    expect(watching).toHaveLength(max);
    expect(watching.map((f) => f.ref)).toEqual(refs.slice(0, max));
    expect(refused).toHaveLength(count - max);
    expect(refused[0]).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      details: { limit: 'maxWatchesPerSession', max },
    });
    expect(new Set(refused.map(errorCode))).toEqual(new Set(['LIMIT_EXCEEDED']));
    // The accepted watches deliver (once per connection), and freeing one makes room for another.
    const since = tcp.messages().length;
    await scene.bystander.client.call({ type: 'acquire', name: 'flood/x' }, 'granted');
    await tcp.waitForMessage(
      (m) => m.type === 'events' && m.events.some((e) => e.name === 'flood/x'),
      'the event',
      {
        since,
      },
    );
    const { watchId } = watching[0] as { watchId: number };
    expect(await tcp.request({ type: 'unwatch', ref: 2, watchId })).toMatchObject({ type: 'ok' });
    expect(await tcp.request({ type: 'watch', ref: 3, prefix: 'flood/' })).toMatchObject({
      type: 'watching',
    });
    expect(errorCode(await tcp.request({ type: 'watch', ref: 4, prefix: 'flood/' }))).toBe('LIMIT_EXCEEDED');
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'flood/x' });
    expect(scene.broker.broker.hub.size).toBe(max + 1); // the attacker's plus the bystander's
  }, 60_000);

  it('caps waits at maxWaitsPerSession under a flood of waiting acquires; earlier waits still get granted', async () => {
    const max = 50;
    const scene = await startScene({ maxWaitsPerSession: max, maxRequestsPerSecond: 1_000_000 });
    const { client: holder } = await RawClient.session(scene.url, {}, { label: 'holder' });
    const names = Array.from({ length: max + 10 }, (_, i) => `held/${i}`);
    const grants = await Promise.all(names.map((name) => holder.call({ type: 'acquire', name }, 'granted')));
    const tcp = await RawTcp.upgraded(scene.port, 'attacker');
    await tcp.hello();
    const count = 20_000;
    const refs = Array.from({ length: count }, (_, i) => 100 + i);
    await tcp.sendMessages(
      refs.map((ref, i) => ({ type: 'acquire', ref, name: names[i % names.length], wait: true })),
    );
    await tcp.waitForMessage((m) => 'ref' in m && m.ref === refs.at(-1), 'the reply to the last acquire', {
      timeoutMs: 50_000,
    });
    const replies = tcp.messages().filter((m) => 'ref' in m && m.ref !== undefined && m.ref >= 100);
    expect(replies).toHaveLength(count);
    const queued = replies.filter((f) => f.type === 'queued');
    expect(queued.map((f) => (f as { name: string }).name)).toEqual(names.slice(0, max));
    const codes = new Set(replies.filter((f) => f.type === 'error').map(errorCode));
    expect(codes).toEqual(new Set(['LIMIT_EXCEEDED', 'ALREADY_WAITING']));
    expect(scene.broker.store.stats.waiters).toBe(max);
    // The earliest wait is still live: releasing the lease grants it to the attacker.
    const firstGrant = grants[0] as { lease: { token: number } };
    await holder.call({ type: 'release', name: 'held/0', token: firstGrant.lease.token }, 'ok');
    expect(
      await tcp.waitForMessage(
        (m) => m.type === 'granted' && m.ref === refs[0],
        'the grant of the first wait',
      ),
    ).toMatchObject({ lease: { name: 'held/0' } });
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n.startsWith('held/') });
  }, 60_000);

  it('answers requests past maxRequestsPerSecond with RATE_LIMITED and serves the connection again later', async () => {
    const scene = await startScene({ maxRequestsPerSecond: 100 });
    const { client } = await attacker(scene);
    const first = client.ref();
    const count = 1000;
    for (let i = 0; i < count; i++) client.send({ type: 'keepalive', ref: first + i });
    for (let i = 1; i < count; i++) client.ref();
    await client.replyTo(first + count - 1, { what: 'the last keepalive' });
    const replies = client.frames.filter((f) => 'ref' in f && f.ref !== undefined && f.ref >= first);
    const ok = replies.filter((f) => f.type === 'ok').length;
    const limited = replies.filter((f) => errorCode(f) === 'RATE_LIMITED');
    expect(ok + limited.length).toBe(count);
    // A burst of one second's worth, plus whatever refilled while the flood arrived.
    expect(ok).toBeGreaterThanOrEqual(100);
    expect(ok).toBeLessThan(200);
    const last = limited.at(-1) as unknown as { details: { retryAfterMs: number } };
    expect(last.details.retryAfterMs).toBeGreaterThan(0);
    expect(last.details.retryAfterMs).toBeLessThanOrEqual(10);
    // Other connections are not limited by it; this one recovers after retryAfterMs.
    await scene.bystander.expectUndisturbed();
    await new Promise((resolve) => setTimeout(resolve, last.details.retryAfterMs));
    expect(await client.request({ type: 'keepalive' })).toMatchObject({ type: 'ok' });
  });
});
