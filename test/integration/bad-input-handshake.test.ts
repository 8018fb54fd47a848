import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../shared/close-codes.js';
import { HandshakeRefused, RawClient, RawTcp, startScene, upgradeRequest } from '../helpers/raw-client.js';

// Every case: the upgrade is refused (or the socket dropped) with the status or close code the
// case calls for, and the bystander session opened before it is untouched.

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function lines(overrides: Record<string, string | null> = {}, port = 0): string[] {
  const base: Record<string, string> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
  };
  const out: string[] = [];
  for (const [k, v] of Object.entries({ ...base, ...overrides })) if (v !== null) out.push(`${k}: ${v}`);
  return out;
}

describe('HTTP upgrade abuse', () => {
  it.each([
    {
      what: 'thousands of headers (past the header size limit)',
      extraLines: Array.from({ length: 5000 }, (_, i) => `X-Filler-${i}: a`),
      status: 431,
    },
    {
      what: 'more headers than maxHeadersCount, with the upgrade headers last (CVE-2024-37890 class)',
      headerLines: [...Array.from({ length: 500 }, (_, i) => `a${i}: 1`), ...lines()],
      status: 400,
    },
    { what: 'a 64 KiB header', extraLines: [`X-Big: ${'a'.repeat(64 * 1024)}`], status: 431 },
    { what: 'a doubled Upgrade header', extraLines: ['Upgrade: websocket'], status: 400 },
    { what: 'Upgrade: WebSocket2', headerLines: lines({ Upgrade: 'WebSocket2' }), status: 400 },
    { what: 'a bad Sec-WebSocket-Key', headerLines: lines({ 'Sec-WebSocket-Key': 'short' }), status: 400 },
    {
      what: 'a Sec-WebSocket-Key of 16 bytes that is not base64',
      headerLines: lines({ 'Sec-WebSocket-Key': '!!!!!!!!!!!!!!!!!!!!!!==' }),
      status: 400,
    },
    {
      what: 'a Sec-WebSocket-Protocol with 10k spaces',
      extraLines: [`Sec-WebSocket-Protocol: a${' '.repeat(10_000)}b`],
      status: 400,
    },
    { what: 'a POST upgrade', method: 'POST', extraLines: ['Content-Length: 0'], status: 405 },
    { what: 'an upgrade on the wrong path', path: '/v2', status: 404 },
    { what: 'an upgrade on a path that only starts like ours', path: '/v1/../admin', status: 404 },
  ])('refuses $what with HTTP $status', async ({ status, ...req }) => {
    const scene = await startScene();
    const tcp = await RawTcp.connect(scene.port, { label: 'attacker' });
    await tcp.write(upgradeRequest(scene.port, req));
    const head = await tcp.waitForHead();
    expect(head.status).toBe(status);
    // Nothing is left open for the attacker.
    await tcp.waitForEnd();
    expect(scene.broker.broker.connectionCount).toBe(1);
    await scene.bystander.expectUndisturbed();
  });

  it('refuses Sec-WebSocket-Version 12 with 400 and names the version it speaks', async () => {
    const scene = await startScene();
    const tcp = await RawTcp.connect(scene.port, { label: 'attacker' });
    const head = await tcp.upgrade(scene.port, { headerLines: lines({ 'Sec-WebSocket-Version': '12' }) });
    expect(head.status).toBe(400);
    expect(head.headers['sec-websocket-version']).toMatch(/\b13\b/);
    await tcp.waitForEnd();
    await scene.bystander.expectUndisturbed();
  });

  it('refuses an HTTP/1.0 upgrade (RFC 6455 requires HTTP/1.1)', async () => {
    const scene = await startScene();
    const tcp = await RawTcp.connect(scene.port, { label: 'attacker' });
    const head = await tcp.upgrade(scene.port, { httpVersion: '1.0', headerLines: lines({}, scene.port) });
    expect(head.status).toBe(505);
    await tcp.waitForEnd();
    expect(scene.broker.broker.connectionCount).toBe(1);
    await scene.bystander.expectUndisturbed();
  });

  it('answers an upgrade without an Upgrade header as plain HTTP: 426 Upgrade Required', async () => {
    const scene = await startScene();
    const tcp = await RawTcp.connect(scene.port, { label: 'attacker' });
    const head = await tcp.upgrade(scene.port, { headerLines: lines({ Upgrade: null }) });
    expect(head.status).toBe(426);
    expect(head.headers.upgrade).toBe('websocket');
    expect(scene.broker.broker.connectionCount).toBe(1);
    await scene.bystander.expectUndisturbed();
  });

  it.each(['constructor', '__proto__', 'permessage-deflate; __proto__=1; constructor'])(
    'ignores Sec-WebSocket-Extensions: %s and negotiates no extension',
    async (value) => {
      const scene = await startScene();
      const tcp = await RawTcp.connect(scene.port, { label: 'attacker' });
      const head = await tcp.upgrade(scene.port, { extraLines: [`Sec-WebSocket-Extensions: ${value}`] });
      expect(head.status).toBe(101);
      expect(head.headers['sec-websocket-extensions']).toBeUndefined();
      // The connection is an ordinary one.
      const welcome = await tcp.hello();
      expect(welcome.resumed).toBe(false);
      await scene.bystander.expectUndisturbed();
    },
  );
});

describe('connections that never finish', () => {
  it('drops a slowloris that drips its headers one byte at a time within a few seconds', async () => {
    const scene = await startScene({ headersTimeoutMs: 2_000 });
    const started = performance.now();
    const tcp = await RawTcp.connect(scene.port, { label: 'slowloris' });
    const text = `GET /v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Drip: ${'a'.repeat(10_000)}`;
    let i = 0;
    const drip = setInterval(() => void tcp.write(text.charAt(i++)), 100);
    try {
      const ended = await tcp.waitForEnd(10_000);
      expect(ended.atMs - started).toBeLessThan(10_000);
    } finally {
      clearInterval(drip);
    }
    // It never got past the HTTP layer.
    expect(tcp.text()).not.toContain(' 101 ');
    await scene.bystander.expectUndisturbed();
  });

  it('drops a thousand idle TCP connections after headersTimeoutMs while serving everyone else', async () => {
    const scene = await startScene({ headersTimeoutMs: 2_000 });
    const idle = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => RawTcp.connect(scene.port, { label: `idle ${i}` })),
    );
    // The broker keeps serving while they sit there.
    await scene.bystander.expectUndisturbed();
    await Promise.all(idle.map((t) => t.waitForEnd(10_000)));
    expect(idle.every((t) => !t.text().includes(' 101 '))).toBe(true);
    await scene.bystander.expectUndisturbed();
  });

  it('closes a socket that upgrades and never says hello with 4001 after helloTimeoutMs', async () => {
    const scene = await startScene({ helloTimeoutMs: 300 });
    const started = performance.now();
    const silent = await RawClient.open(scene.url, { label: 'silent' });
    const close = await silent.waitForClose();
    expect(close.code).toBe(CloseCodes.HELLO_TIMEOUT);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(silent.frames).toEqual([]);
    await scene.bystander.expectUndisturbed();
  });
});

describe('cross-site WebSocket hijacking', () => {
  const allowedOrigins = ['https://app.example'];

  it.each([
    { what: 'a foreign Origin', origin: 'https://evil.example' },
    { what: 'a null Origin', origin: 'null' },
    { what: 'an Origin that only starts like an allowed one', origin: 'https://app.example.evil' },
    { what: 'no Origin at all', origin: undefined },
  ])('refuses $what with 403 when allowedOrigins is set', async ({ origin }) => {
    const scene = await startScene({ allowedOrigins }, { origin: 'https://app.example' });
    const attempt = RawClient.open(scene.url, {
      label: 'cross-site page',
      ...(origin === undefined ? {} : { origin }),
    });
    await expect(attempt).rejects.toBeInstanceOf(HandshakeRefused);
    await expect(attempt).rejects.toMatchObject({ status: 403 });
    await scene.bystander.expectUndisturbed();
  });

  it('accepts an allowed Origin', async () => {
    const scene = await startScene({ allowedOrigins }, { origin: 'https://app.example' });
    const { welcome } = await RawClient.session(scene.url, {}, { origin: 'https://app.example' });
    expect(welcome.sessionId).toBeTruthy();
  });
});
