import { describe, expect, it } from 'vitest';
import type { RunningBroker } from '../../server/index.js';
import { acquire, call, leasePath, openSession, rawRequest, startHttpBroker } from './http-kit.js';

const JSON_TYPE = { 'content-type': 'application/json' };

/** After any bad input: the broker still answers, and a well-behaved session still works. */
async function expectStillServing(broker: RunningBroker): Promise<void> {
  expect((await call(broker, 'GET', '/healthz')).status).toBe(200);
  const s = await openSession(broker);
  const r = await acquire(broker, s, `bystander/${s.id}`);
  expect(r.status).toBe(200);
}

function errorOf(text: string): { code: string; message: string } {
  return JSON.parse(text);
}

describe('HTTP bad input', () => {
  it('answers 400 for malformed JSON, non-objects and invalid UTF-8 bodies', async () => {
    const broker = await startHttpBroker();
    const bodies: (string | Uint8Array)[] = [
      '{',
      '{"ttlMs": 5000,}',
      'nul',
      '[]',
      'null',
      '42',
      '"text"',
      '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]',
      `${'['.repeat(8000)}${']'.repeat(8000)}`,
      new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]),
    ];
    for (const body of bodies) {
      const r = await rawRequest(broker, 'POST', '/v1/sessions', JSON_TYPE, body);
      expect(r.status, String(body).slice(0, 40)).toBe(400);
      expect(errorOf(r.text).code).toBe('BAD_REQUEST');
    }
    await expectStillServing(broker);
  });

  it('answers 415 for a body that is not application/json', async () => {
    const broker = await startHttpBroker();
    for (const type of [
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
    ]) {
      const headers: Record<string, string> = { 'content-length': '2' };
      if (type) headers['content-type'] = type;
      const r = await rawRequest(broker, 'POST', '/v1/sessions', headers, '{}');
      expect(r.status, String(type)).toBe(415);
      expect(errorOf(r.text).code).toBe('BAD_REQUEST');
    }
    const ok = await rawRequest(
      broker,
      'POST',
      '/v1/sessions',
      { 'content-type': 'Application/JSON; charset=UTF-8' },
      '{}',
    );
    expect(ok.status).toBe(201);
    await expectStillServing(broker);
  });

  it('answers 413 for a body over maxHttpBodyBytes, declared or chunked', async () => {
    const broker = await startHttpBroker({ maxHttpBodyBytes: 4096 });
    const big = JSON.stringify({ owner: 'x'.repeat(5000) });
    const declared = await rawRequest(broker, 'POST', '/v1/sessions', JSON_TYPE, big);
    expect(declared.status).toBe(413);
    expect(declared.headers.connection).toBe('close');
    const chunks = Array.from({ length: 10 }, () => ' '.repeat(1000));
    const chunked = await rawRequest(
      broker,
      'POST',
      '/v1/sessions',
      { ...JSON_TYPE, 'transfer-encoding': 'chunked' },
      ['{', ...chunks, '}'],
    );
    expect(chunked.status).toBe(413);
    await expectStillServing(broker);
  });

  it('answers 414 for a huge URL and survives one past the header limit', async () => {
    const broker = await startHttpBroker();
    const long = await rawRequest(broker, 'GET', `/v1/leases/${'a'.repeat(5000)}`);
    expect(long.status).toBe(414);
    const longQuery = await rawRequest(broker, 'GET', `/v1/leases?prefix=${'a'.repeat(5000)}`);
    expect(longQuery.status).toBe(414);
    const huge = await rawRequest(broker, 'GET', `/v1/leases/${'a'.repeat(20_000)}`).catch((e: Error) => e);
    if (!(huge instanceof Error)) expect([400, 414, 431]).toContain(huge.status);
    await expectStillServing(broker);
  });

  it('refuses invalid lease names in the path and the query with 400 NAME_INVALID', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker);
    const bad = [
      '%00',
      'a%00b',
      '%FF',
      '%C0%AF',
      '%ED%A0%80',
      '%E2%82',
      '%',
      '%zz',
      '%7F',
      '%C2%85',
      encodeURIComponent('x'.repeat(513)),
    ];
    for (const name of bad) {
      const get = await rawRequest(broker, 'GET', `/v1/leases/${name}`);
      expect(get.status, name).toBe(400);
      expect(errorOf(get.text).code, name).toBe('NAME_INVALID');
      const post = await rawRequest(
        broker,
        'POST',
        `/v1/leases/${name}/acquire`,
        { ...JSON_TYPE, 'leasewire-session-secret': s.secret },
        JSON.stringify({ session: s.id }),
      );
      expect(post.status, name).toBe(400);
      const list = await rawRequest(broker, 'GET', `/v1/leases?prefix=${name}`);
      expect(list.status, name).toBe(400);
    }
    const empty = await rawRequest(broker, 'GET', '/v1/leases/');
    expect(errorOf(empty.text).code).toBe('NAME_INVALID');
    // Names that only look odd are fine: they are compared byte for byte.
    for (const name of ['__proto__', 'constructor', 'a/b/c', 'ünïcödé', '😀']) {
      expect((await acquire(broker, s, name)).status, name).toBe(200);
      expect((await call(broker, 'GET', leasePath(name))).status, name).toBe(200);
    }
    expect((await call(broker, 'GET', leasePath('%FF'))).status).toBe(404);
    await expectStillServing(broker);
  });

  it('refuses bad TTLs, tokens and field types with 400 and changes nothing', async () => {
    const broker = await startHttpBroker();
    for (const ttlMs of [0, -1, '5000', 1e308, 1.5, Number.MAX_SAFE_INTEGER + 2, true, [], {}]) {
      const r = await call(broker, 'POST', '/v1/sessions', { body: { ttlMs } });
      expect(r.status, JSON.stringify(ttlMs)).toBe(400);
      expect(r.body.code).toBe('BAD_REQUEST');
    }
    // JSON has no NaN or Infinity; 1e999 parses as Infinity.
    const inf = await rawRequest(broker, 'POST', '/v1/sessions', JSON_TYPE, '{"ttlMs": 1e999}');
    expect(inf.status).toBe(400);
    for (const owner of [42, 'x'.repeat(300), '\ud800']) {
      const r = await call(broker, 'POST', '/v1/sessions', { body: { owner } });
      expect(r.status, String(owner).slice(0, 10)).toBe(400);
    }
    expect(broker.store.stats.sessions).toBe(0);

    const s = await openSession(broker);
    const held = await acquire(broker, s, 'x');
    for (const body of [
      { session: s.id, token: '1' },
      { session: s.id, token: 1.5 },
      { session: s.id, token: 0 },
      { session: s.id, token: -1 },
      { session: s.id },
      { token: held.body.lease.token },
      { session: 42, token: held.body.lease.token },
      { session: 'x'.repeat(100), token: held.body.lease.token },
    ]) {
      const r = await call(broker, 'POST', leasePath('x', 'release'), { body, secret: s.secret });
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    for (const extra of [
      { ttlMs: 0 },
      { ttlMs: '5000' },
      { wait: 'yes' },
      { waitTimeoutMs: -1 },
      { waitTimeoutMs: 1e308 },
    ]) {
      const r = await acquire(broker, s, 'y', extra);
      expect(r.status, JSON.stringify(extra)).toBe(400);
    }
    expect((await call(broker, 'GET', leasePath('x'))).body).toMatchObject({
      lease: { token: held.body.lease.token },
    });
    expect((await call(broker, 'GET', leasePath('y'))).status).toBe(404);
    await expectStillServing(broker);
  });

  it('ignores __proto__ keys in bodies', async () => {
    const broker = await startHttpBroker();
    const r = await rawRequest(
      broker,
      'POST',
      '/v1/sessions',
      JSON_TYPE,
      '{"__proto__": {"ttlMs": 1}, "owner": "p"}',
    );
    expect(r.status).toBe(201);
    expect(JSON.parse(r.text).ttlMs).toBe(broker.options.defaultTtlMs);
    expect(({} as Record<string, unknown>).ttlMs).toBeUndefined();
  });

  it('answers 404 for unknown routes and 405 with Allow for wrong methods', async () => {
    const broker = await startHttpBroker();
    for (const path of ['/nope', '/v1/nope', '/v1/leases/a/explode', '/v2/leases', '/v1/sessions/x/y/z']) {
      const r = await rawRequest(broker, 'GET', path);
      expect(r.status, path).toBe(404);
      expect(errorOf(r.text).code).toBe('NOT_FOUND');
    }
    for (const [method, path, allow] of [
      ['PUT', '/v1/leases/a', 'GET, HEAD'],
      ['DELETE', '/v1/leases', 'GET, HEAD'],
      ['GET', '/v1/sessions', 'POST'],
      ['GET', '/v1/leases/a/acquire', 'POST'],
      ['POST', '/v1/watch', 'GET, HEAD'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['POST', '/metrics', 'GET, HEAD'],
      ['PATCH', '/v1/sessions/abc', 'DELETE'],
    ] as const) {
      const r = await rawRequest(broker, method, path);
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.allow, `${method} ${path}`).toBe(allow);
    }
    const head = await rawRequest(broker, 'HEAD', '/healthz');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    await expectStillServing(broker);
  });

  it('answers 401 for a missing secret and 403 for a wrong one on every session-scoped route', async () => {
    const broker = await startHttpBroker();
    const s = await openSession(broker);
    const routes: [string, string, unknown][] = [
      ['POST', `/v1/sessions/${s.id}/keepalive`, undefined],
      ['DELETE', `/v1/sessions/${s.id}`, undefined],
      ['POST', leasePath('a', 'acquire'), { session: s.id }],
      ['POST', leasePath('a', 'release'), { session: s.id, token: 1 }],
      ['POST', leasePath('a', 'renew'), { session: s.id, token: 1 }],
    ];
    for (const [method, path, body] of routes) {
      const missing = await call(broker, method, path, body === undefined ? {} : { body });
      expect(missing.status, `${method} ${path}`).toBe(401);
      const wrong = await call(broker, method, path, {
        ...(body === undefined ? {} : { body }),
        secret: 'wrong',
      });
      expect(wrong.status, `${method} ${path}`).toBe(403);
      expect(wrong.body.code).toBe('BAD_SECRET');
    }
    const stolen = await openSession(broker);
    const other = await call(broker, 'POST', leasePath('a', 'acquire'), {
      body: { session: s.id },
      secret: stolen.secret,
    });
    expect(other.status).toBe(403);
    expect((await call(broker, 'GET', leasePath('a'))).status).toBe(404);
    await expectStillServing(broker);
  });
});
