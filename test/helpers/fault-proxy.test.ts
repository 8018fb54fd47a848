import { once } from 'node:events';
import { type AddressInfo, createServer, connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';

const WAIT_MS = 5_000;

/** Rejects with a clear message if `promise` does not settle in time; leaves no timer behind. */
async function within<T>(promise: Promise<T>, label: string, timeoutMs = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface EchoServer {
  port: number;
  /** Everything any connection has received, in arrival order. */
  received(): string;
  /** Sockets accepted and not yet closed. */
  readonly open: number;
  readonly accepted: number;
  /** Errors seen on accepted sockets (e.g. ECONNRESET). */
  readonly errors: NodeJS.ErrnoException[];
  /** Resolves once `predicate` holds; re-checked on every server-side event. */
  until(predicate: () => boolean, label: string): Promise<void>;
}

/** A real TCP echo server on port 0; answers FIN with FIN. Closed when the test finishes. */
async function startEchoServer(): Promise<EchoServer> {
  let received = '';
  let open = 0;
  let accepted = 0;
  const errors: NodeJS.ErrnoException[] = [];
  const checks = new Set<() => void>();
  const changed = (): void => {
    for (const check of checks) check();
  };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    accepted += 1;
    open += 1;
    sockets.add(socket);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      errors.push(error);
      changed();
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      socket.write(chunk);
      changed();
    });
    socket.on('close', () => {
      open -= 1;
      sockets.delete(socket);
      changed();
    });
    changed();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    received: () => received,
    get open() {
      return open;
    },
    get accepted() {
      return accepted;
    },
    errors,
    until(predicate, label) {
      let check = (): void => {};
      const reached = new Promise<void>((resolve) => {
        check = () => {
          if (predicate()) resolve();
        };
      });
      checks.add(check);
      check();
      return within(reached, `echo server: ${label}`).finally(() => checks.delete(check));
    },
  };
}

interface Client {
  socket: Socket;
  /** Everything received so far. */
  text(): string;
  /** Resolves once the received text is at least `expected` long; fails if it differs. */
  read(expected: string): Promise<void>;
  /** Resolves with the socket's first error. */
  error(): Promise<NodeJS.ErrnoException>;
  /** Resolves once the socket has closed, with whether it closed because of an error. */
  closed(): Promise<boolean>;
}

async function connectClient(port: number): Promise<Client> {
  const client = openClient(port);
  await within(once(client.socket, 'connect'), 'client connect');
  return client;
}

/** Starts connecting without waiting: a refused connection may fail before 'connect'. */
function openClient(port: number): Client {
  const socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
  let text = '';
  const readers = new Set<() => void>();
  const errorSeen = new Promise<NodeJS.ErrnoException>((resolve) => socket.on('error', resolve));
  const closeSeen = new Promise<boolean>((resolve) => socket.once('close', resolve));
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const reader of readers) reader();
  });
  socket.on('close', () => {
    for (const reader of readers) reader();
  });
  onTestFinished(() => {
    socket.destroy();
  });
  return {
    socket,
    text: () => text,
    async read(expected) {
      let check = (): void => {};
      const reached = new Promise<void>((resolve, reject) => {
        check = () => {
          if (text.length >= expected.length) resolve();
          else if (socket.closed) reject(new Error(`socket closed after reading ${JSON.stringify(text)}`));
        };
      });
      readers.add(check);
      check();
      try {
        await within(reached, `client to read ${JSON.stringify(expected)}`);
      } finally {
        readers.delete(check);
      }
      expect(text).toBe(expected);
    },
    error: () => within(errorSeen, 'a client socket error'),
    closed: () => within(closeSeen, 'client socket close'),
  };
}

async function startProxy(port: number): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port } });
  onTestFinished(() => proxy.close());
  return proxy;
}

describe('fault proxy', () => {
  it('forwards bytes both ways and counts them', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);

    client.socket.write('hello');
    await client.read('hello');

    expect(echo.received()).toBe('hello');
    expect(proxy.connections).toBe(1);
    expect(proxy.stats).toMatchObject({
      connections: 1,
      connectionsAccepted: 1,
      toTarget: { bytesReceived: 5, bytesDelivered: 5, bytesDropped: 0, bytesQueued: 0 },
      toClient: { bytesReceived: 5, bytesDelivered: 5, bytesDropped: 0, bytesQueued: 0 },
    });
  });

  it('delays a round trip by at least the latency of both directions', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);
    proxy.setLatency(100);

    const startedAt = performance.now();
    client.socket.write('ping');
    await client.read('ping');

    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(200);
  });

  it('keeps byte order in each direction under jitter', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);
    proxy.setLatency(5, { jitterMs: 40 });

    let sent = '';
    for (let i = 0; i < 40; i += 1) {
      const message = `<${i}>`;
      sent += message;
      client.socket.write(message);
      // Separate writes into separate chunks so jitter gets a chance to reorder them.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await client.read(sent);

    expect(echo.received()).toBe(sent);
  });

  it('forwards a half-close after the bytes queued ahead of it', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);
    proxy.setLatency(30);

    client.socket.end('bye');
    await client.read('bye');
    const hadError = await client.closed();

    expect(hadError).toBe(false);
    await echo.until(() => echo.open === 0, 'its socket to close');
    await proxy.waitFor((s) => s.connections === 0, { label: 'the pair to close' });
  });

  it('drops traffic during a blackhole while both TCP sockets stay open, and forwards again once lifted', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);
    client.socket.write('before|');
    await client.read('before|');

    proxy.blackhole(true);
    client.socket.write('lost|');
    await proxy.waitFor((s) => s.toTarget.bytesDropped === 5, { label: 'the client bytes to be dropped' });

    expect(echo.received()).toBe('before|');
    expect(client.socket.destroyed).toBe(false);
    expect(echo.open).toBe(1);
    expect(proxy.connections).toBe(1);

    proxy.blackhole(false);
    client.socket.write('after|');
    await client.read('before|after|');
    expect(echo.received()).toBe('before|after|');
  });

  it('blackholes only the direction it is asked to', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);

    proxy.blackhole(true, { direction: 'toClient' });
    client.socket.write('one-way');
    await proxy.waitFor((s) => s.toClient.bytesDropped === 7, { label: 'the echo to be dropped' });

    expect(echo.received()).toBe('one-way');
    expect(client.text()).toBe('');
  });

  it('queues bytes during a pause and delivers them in order on resume', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);

    proxy.pause();
    client.socket.write('first|');
    client.socket.write('second|');
    await proxy.waitFor((s) => s.toTarget.bytesQueued === 13, { label: 'the client bytes to be queued' });
    expect(echo.received()).toBe('');

    proxy.resume();
    await client.read('first|second|');
    expect(proxy.stats.toTarget).toMatchObject({ bytesDelivered: 13, bytesDropped: 0, bytesQueued: 0 });
  });

  it('resets every open connection so the client sees ECONNRESET', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);
    client.socket.write('x');
    await client.read('x');

    proxy.resetAll();

    expect(proxy.connections).toBe(0);
    expect((await client.error()).code).toBe('ECONNRESET');
    await echo.until(() => echo.open === 0, 'its socket to close');
    expect(echo.errors.map((error) => error.code)).toEqual(['ECONNRESET']);
  });

  it('closes every open connection gracefully with a FIN', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);
    client.socket.write('x');
    await client.read('x');

    const ended = once(client.socket, 'end');
    proxy.closeAll();
    await within(ended, 'the client to see a FIN');
    const hadError = await client.closed();

    expect(hadError).toBe(false);
    await echo.until(() => echo.open === 0, 'its socket to close');
    expect(echo.errors).toEqual([]);
  });

  it('resets new connections while refusing and accepts them again afterwards', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(echo.port);

    proxy.refuseNew(true);
    const refused = openClient(proxy.port);
    expect((await refused.error()).code).toBe('ECONNRESET');
    expect(proxy.stats).toMatchObject({ connections: 0, connectionsAccepted: 1, connectionsRefused: 1 });
    expect(echo.accepted).toBe(0);

    proxy.refuseNew(false);
    const client = await connectClient(proxy.port);
    client.socket.write('ok');
    await client.read('ok');
  });

  it('resets the client when the target refuses the connection', async () => {
    // Take a port that was free a moment ago and is closed now.
    const gone = createServer();
    gone.listen(0, '127.0.0.1');
    await once(gone, 'listening');
    const gonePort = (gone.address() as AddressInfo).port;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    const proxy = await startProxy(gonePort);

    const client = openClient(proxy.port);

    expect((await client.error()).code).toBe('ECONNRESET');
    await proxy.waitFor((s) => s.connections === 0, { label: 'the failed pair to go away' });
    expect(proxy.stats).toMatchObject({ connectionsAccepted: 1, connectionsRefused: 0 });
  });

  it('carries a WebSocket handshake and messages, keeping the request path', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    onTestFinished(async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    });
    const paths: string[] = [];
    wss.on('connection', (ws, request) => {
      paths.push(request.url ?? '');
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    const proxy = await startProxy((wss.address() as AddressInfo).port);
    proxy.setLatency(20, { jitterMs: 20 });

    const ws = new WebSocket(proxy.url('/v1'));
    ws.on('error', () => {});
    onTestFinished(() => ws.terminate());
    await within(once(ws, 'open'), 'the WebSocket to open');
    const replies: string[] = [];
    const allReplies = new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        replies.push(String(data));
        if (replies.length === 3) resolve();
      });
    });
    for (const text of ['a', 'b', 'c']) ws.send(text);
    await within(allReplies, 'three echoed messages');

    expect(paths).toEqual(['/v1']);
    expect(replies).toEqual(['a', 'b', 'c']);
    const closed = once(ws, 'close');
    ws.close(1000);
    const [code] = await within(closed, 'the WebSocket close handshake');
    expect(code).toBe(1000);
  });

  it('leaves no sockets or timers behind after close, and a second close is harmless', async () => {
    const echo = await startEchoServer();
    const handles = (): string[] =>
      process
        .getActiveResourcesInfo()
        .filter((kind) => kind === 'TCPSocketWrap' || kind === 'TCPServerWrap' || kind === 'Timeout')
        .sort();
    // Servers of earlier tests release their libuv handles a loop turn after 'close'.
    for (let turn = 0; turn < 2; turn += 1) await new Promise((resolve) => setImmediate(resolve));
    const before = handles();
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
    const client = await connectClient(proxy.port);
    client.socket.write('x');
    await client.read('x');
    // Leave bytes in flight so a delivery timer is pending when close() runs.
    proxy.setLatency(10_000);
    client.socket.write('in flight');
    await proxy.waitFor((s) => s.toTarget.bytesQueued === 9, { label: 'bytes to be in flight' });

    await proxy.close();
    await proxy.close();
    await client.closed();
    await echo.until(() => echo.open === 0, 'its socket to close');

    expect(proxy.connections).toBe(0);
    expect(proxy.stats.toTarget).toMatchObject({ bytesQueued: 0, bytesDropped: 9 });
    expect(echo.received()).toBe('x');
    expect(handles()).toEqual(before);
  });

  it('rejects a target or listen address that is not loopback', async () => {
    await expect(startFaultProxy({ target: { host: '10.0.0.1', port: 80 } })).rejects.toThrow(
      /target\.host must be a loopback address/,
    );
    await expect(
      startFaultProxy({ target: { host: '127.0.0.1', port: 80 }, listenHost: '0.0.0.0' }),
    ).rejects.toThrow(/listenHost must be a loopback address/);
  });
});
