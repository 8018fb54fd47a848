/**
 * Fault proxy: a loopback TCP proxy for integration tests and benches that injects network faults
 * (latency, partitions, stalls, resets) between a client and the broker while a test runs. It
 * replaces `tc netem`/toxiproxy, which these machines do not have. It forwards raw bytes, so it
 * works for WebSocket (the HTTP upgrade passes through untouched) or any other TCP protocol.
 *
 * ```ts
 * const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: brokerPort } });
 * onTestFinished(() => proxy.close());
 * const client = new WebSocket(proxy.url('/v1'));
 * proxy.setLatency(50, { jitterMs: 10 });            // +50..60 ms each way, order kept
 * proxy.blackhole(true);                              // partition: bytes dropped, sockets stay open
 * await proxy.waitFor((s) => s.toTarget.bytesDropped > 0, { label: 'a dropped ping' });
 * proxy.blackhole(false);
 * proxy.resetAll();                                   // both ends see ECONNRESET
 * ```
 *
 * Semantics worth knowing:
 * - Every fault setting is proxy-wide and applies to existing and future connections. `direction`
 *   is `'toTarget'` (client to target), `'toClient'` (target to client) or `'both'` (default).
 * - Each chunk gets its delay when it arrives; a chunk never overtakes an earlier one in the same
 *   direction, so jitter stretches gaps but never reorders. Latency applies to each direction, so a
 *   round trip gains at least twice the latency.
 * - `blackhole` drops data that falls due while it is on. FIN and RST are held (not dropped) and
 *   delivered once it is lifted, like TCP retransmitting them after a partition heals. The dropped
 *   bytes leave a hole in the stream: a WebSocket that keeps using the connection afterwards will
 *   most likely fail with a framing error. Use it to make peers detect a dead link (missing pongs,
 *   renew timeouts); use `pause()` for a stall that heals without loss.
 * - Bytes held by latency or `pause` count against `maxQueuedBytes` (per direction, per
 *   connection). Past it the proxy stops reading the sender, which then sees real TCP backpressure
 *   (its write buffer grows). With latency this also caps throughput at about maxQueuedBytes/latency.
 * - `resetAll`/`closeAll`/`close` discard bytes still queued by latency or pause.
 * - A peer's RST is mirrored as an RST to the other side; a target that refuses the connection
 *   shows up as an RST to the client.
 * - `stats` counts per direction: received = delivered + dropped + queued, where delivered means
 *   handed to the outgoing socket. `waitFor` re-checks its predicate on every change, so tests can
 *   wait for a fact ("4 bytes dropped", "no connections left") instead of sleeping.
 * - `close()` resolves only once the listener and every socket have closed and no timer is left.
 */
import {
  type AddressInfo,
  createServer,
  isIPv4,
  connect as netConnect,
  type Server,
  type Socket,
} from 'node:net';
import { performance } from 'node:perf_hooks';

export type FaultDirection = 'both' | 'toTarget' | 'toClient';

export interface FaultProxyOptions {
  /** Where to forward connections; must be a loopback address. */
  target: { host: string; port: number };
  /** Loopback address to listen on (port is always ephemeral). */
  listenHost?: string;
  /** Bytes queued per direction per connection before the proxy stops reading the sender. */
  maxQueuedBytes?: number;
}

export const FAULT_PROXY_DEFAULTS = {
  listenHost: '127.0.0.1',
  maxQueuedBytes: 1024 * 1024,
  waitForTimeoutMs: 5_000,
} as const;

export interface FaultDirectionStats {
  bytesReceived: number;
  bytesDelivered: number;
  bytesDropped: number;
  /** Held right now by latency or pause, across live connections. */
  bytesQueued: number;
}

export interface FaultProxyStats {
  /** Live proxied pairs (same as `proxy.connections`). */
  connections: number;
  /** Every connection the listener accepted, refused ones included. */
  connectionsAccepted: number;
  connectionsRefused: number;
  toTarget: FaultDirectionStats;
  toClient: FaultDirectionStats;
}

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** `ws://host:port/path`; `path` defaults to `/`. */
  url(path?: string): string;
  setLatency(latencyMs: number, options?: { jitterMs?: number; direction?: FaultDirection }): void;
  blackhole(on: boolean, options?: { direction?: FaultDirection }): void;
  pause(options?: { direction?: FaultDirection }): void;
  resume(options?: { direction?: FaultDirection }): void;
  resetAll(): void;
  closeAll(): void;
  refuseNew(on: boolean): void;
  readonly connections: number;
  /** A fresh snapshot on every read. */
  readonly stats: FaultProxyStats;
  /** Resolves with the first stats snapshot that satisfies `predicate`; rejects on timeout or close. */
  waitFor(
    predicate: (stats: FaultProxyStats) => boolean,
    options?: { timeoutMs?: number; label?: string },
  ): Promise<FaultProxyStats>;
  close(): Promise<void>;
}

interface DirectionSettings {
  latencyMs: number;
  jitterMs: number;
  blackholed: boolean;
  paused: boolean;
}

interface DirectionCounters {
  bytesReceived: number;
  bytesDelivered: number;
  bytesDropped: number;
}

type LaneItem = { kind: 'data'; chunk: Buffer; dueAt: number } | { kind: 'end' | 'reset'; dueAt: number };

/** One direction of one proxied connection: an ordered queue of chunks and FIN/RST markers. */
class Lane {
  queuedBytes = 0;
  private readonly queue: LaneItem[] = [];
  private timer: NodeJS.Timeout | undefined;
  private awaitingDrain = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly settings: DirectionSettings,
    private readonly counters: DirectionCounters,
    private readonly maxQueuedBytes: number,
    private readonly changed: () => void,
  ) {}

  pushData(chunk: Buffer): void {
    this.counters.bytesReceived += chunk.length;
    this.queuedBytes += chunk.length;
    this.queue.push({ kind: 'data', chunk, dueAt: this.nextDueAt() });
    this.flush();
  }

  pushMarker(kind: 'end' | 'reset'): void {
    this.queue.push({ kind, dueAt: this.nextDueAt() });
    this.flush();
  }

  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // Only the head is ever delivered, so a chunk that drew less jitter waits behind an earlier
    // one: the byte stream keeps its order.
    while (!this.settings.paused) {
      const head = this.queue[0];
      if (head === undefined) break;
      const waitMs = head.dueAt - performance.now();
      if (waitMs > 0) {
        // Timers may fire up to a millisecond early against performance.now(); flush re-checks.
        this.timer = setTimeout(() => this.flush(), Math.ceil(waitMs));
        break;
      }
      if (head.kind === 'data') {
        this.queue.shift();
        this.queuedBytes -= head.chunk.length;
        this.deliver(head.chunk);
        continue;
      }
      // A partition holds FIN/RST rather than losing them, so the last item waits for the lift.
      if (this.settings.blackholed) break;
      this.queue.shift();
      if (head.kind === 'end') {
        if (!this.to.destroyed) this.to.end();
      } else {
        resetSocket(this.to);
      }
    }
    this.updateFlow();
    this.changed();
  }

  /** Drops everything still queued; used when the pair is torn down or the receiver is gone. */
  clear(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.counters.bytesDropped += this.queuedBytes;
    this.queuedBytes = 0;
    this.queue.length = 0;
  }

  private deliver(chunk: Buffer): void {
    if (this.settings.blackholed || this.to.destroyed || !this.to.writable) {
      this.counters.bytesDropped += chunk.length;
      return;
    }
    this.counters.bytesDelivered += chunk.length;
    if (!this.to.write(chunk) && !this.awaitingDrain) {
      this.awaitingDrain = true;
      this.to.once('drain', () => {
        this.awaitingDrain = false;
        this.updateFlow();
      });
    }
  }

  private nextDueAt(): number {
    const { latencyMs, jitterMs } = this.settings;
    return performance.now() + latencyMs + (jitterMs > 0 ? Math.random() * jitterMs : 0);
  }

  /** Stops reading the sender while the receiver is backed up or the queue is full. */
  private updateFlow(): void {
    if (this.from.destroyed) return;
    const hold = this.awaitingDrain || this.queuedBytes >= this.maxQueuedBytes;
    if (hold && !this.from.isPaused()) this.from.pause();
    else if (!hold && this.from.isPaused()) this.from.resume();
  }
}

interface Pair {
  client: Socket;
  upstream: Socket;
  toTarget: Lane;
  toClient: Lane;
  /** Set once resetAll/closeAll/close took over; peer events no longer drive forwarding. */
  torn: boolean;
}

interface Waiter {
  predicate: (stats: FaultProxyStats) => boolean;
  resolve: (stats: FaultProxyStats) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  // resetAndDestroy on a still-connecting socket waits for the connect; plain destroy is enough.
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

function directionsOf(direction: FaultDirection | undefined): Array<'toTarget' | 'toClient'> {
  switch (direction ?? 'both') {
    case 'both':
      return ['toTarget', 'toClient'];
    case 'toTarget':
      return ['toTarget'];
    case 'toClient':
      return ['toClient'];
    default:
      throw new TypeError(
        `fault proxy: direction must be 'both', 'toTarget' or 'toClient', got ${direction}`,
      );
  }
}

function checkNonNegative(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`fault proxy: ${name} must be a finite number >= 0, got ${value}`);
  }
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const { target } = options;
  const listenHost = options.listenHost ?? FAULT_PROXY_DEFAULTS.listenHost;
  const maxQueuedBytes = options.maxQueuedBytes ?? FAULT_PROXY_DEFAULTS.maxQueuedBytes;
  if (!isLoopback(target.host)) {
    throw new RangeError(`fault proxy: target.host must be a loopback address, got ${target.host}`);
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65_535) {
    throw new RangeError(`fault proxy: target.port must be an integer in 1..65535, got ${target.port}`);
  }
  if (!isLoopback(listenHost)) {
    throw new RangeError(`fault proxy: listenHost must be a loopback address, got ${listenHost}`);
  }
  if (!Number.isInteger(maxQueuedBytes) || maxQueuedBytes < 1) {
    throw new RangeError(`fault proxy: maxQueuedBytes must be a positive integer, got ${maxQueuedBytes}`);
  }

  const settings: Record<'toTarget' | 'toClient', DirectionSettings> = {
    toTarget: { latencyMs: 0, jitterMs: 0, blackholed: false, paused: false },
    toClient: { latencyMs: 0, jitterMs: 0, blackholed: false, paused: false },
  };
  const counters: Record<'toTarget' | 'toClient', DirectionCounters> = {
    toTarget: { bytesReceived: 0, bytesDelivered: 0, bytesDropped: 0 },
    toClient: { bytesReceived: 0, bytesDelivered: 0, bytesDropped: 0 },
  };
  let connectionsAccepted = 0;
  let connectionsRefused = 0;
  let refusing = false;
  let closePromise: Promise<void> | undefined;
  const pairs = new Set<Pair>();
  /** Every socket the proxy owns until its 'close'; close() waits for this to empty. */
  const sockets = new Set<Socket>();
  const waiters = new Set<Waiter>();

  const snapshot = (): FaultProxyStats => {
    let queuedToTarget = 0;
    let queuedToClient = 0;
    for (const pair of pairs) {
      queuedToTarget += pair.toTarget.queuedBytes;
      queuedToClient += pair.toClient.queuedBytes;
    }
    return {
      connections: pairs.size,
      connectionsAccepted,
      connectionsRefused,
      toTarget: { ...counters.toTarget, bytesQueued: queuedToTarget },
      toClient: { ...counters.toClient, bytesQueued: queuedToClient },
    };
  };

  const changed = (): void => {
    if (waiters.size === 0) return;
    const stats = snapshot();
    for (const waiter of waiters) {
      if (!waiter.predicate(stats)) continue;
      waiters.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.resolve(stats);
    }
  };

  const track = (socket: Socket): void => {
    sockets.add(socket);
    // An unhandled socket error would kill the test process; the pair logic reacts to 'close'.
    socket.on('error', () => {});
    socket.once('close', () => {
      sockets.delete(socket);
      changed();
    });
  };

  const tearDown = (pair: Pair, how: 'reset' | 'end' | 'destroy'): void => {
    pair.torn = true;
    pairs.delete(pair);
    pair.toTarget.clear();
    pair.toClient.clear();
    for (const socket of [pair.client, pair.upstream]) {
      if (how === 'reset') resetSocket(socket);
      else if (how === 'end') {
        // Keep reading so the peer's answering FIN is seen and the socket can close.
        socket.end();
        socket.resume();
      } else socket.destroy();
    }
  };

  const wire = (pair: Pair, from: Socket, outbound: Lane, inbound: Lane): void => {
    let ended = false;
    from.on('data', (chunk: Buffer) => {
      if (!pair.torn) outbound.pushData(chunk);
    });
    from.on('end', () => {
      ended = true;
      if (!pair.torn) outbound.pushMarker('end');
    });
    from.on('close', (hadError: boolean) => {
      if (pair.torn) return;
      // Nothing can reach a closed socket any more; what was on its way to it is lost.
      inbound.clear();
      if (hadError || !ended) outbound.pushMarker('reset');
      if (pair.client.closed && pair.upstream.closed) {
        pairs.delete(pair);
        pair.toTarget.clear();
        pair.toClient.clear();
        changed();
      }
    });
  };

  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    track(client);
    connectionsAccepted += 1;
    if (refusing || closePromise !== undefined) {
      connectionsRefused += 1;
      resetSocket(client);
      changed();
      return;
    }
    client.setNoDelay(true);
    const upstream = netConnect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    track(upstream);
    const pair: Pair = {
      client,
      upstream,
      toTarget: new Lane(client, upstream, settings.toTarget, counters.toTarget, maxQueuedBytes, changed),
      toClient: new Lane(upstream, client, settings.toClient, counters.toClient, maxQueuedBytes, changed),
      torn: false,
    };
    pairs.add(pair);
    wire(pair, client, pair.toTarget, pair.toClient);
    wire(pair, upstream, pair.toClient, pair.toTarget);
    changed();
  });
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(new Error(`fault proxy: cannot listen on ${listenHost}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(0, listenHost, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const flushAll = (): void => {
    for (const pair of pairs) {
      pair.toTarget.flush();
      pair.toClient.flush();
    }
  };

  return {
    host: listenHost,
    port,
    url(path = '/') {
      const host = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
      return `ws://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`;
    },
    setLatency(latencyMs, latencyOptions = {}) {
      const jitterMs = latencyOptions.jitterMs ?? 0;
      checkNonNegative('latencyMs', latencyMs);
      checkNonNegative('jitterMs', jitterMs);
      for (const direction of directionsOf(latencyOptions.direction)) {
        settings[direction].latencyMs = latencyMs;
        settings[direction].jitterMs = jitterMs;
      }
    },
    blackhole(on, blackholeOptions = {}) {
      for (const direction of directionsOf(blackholeOptions.direction)) settings[direction].blackholed = on;
      if (!on) flushAll();
    },
    pause(pauseOptions = {}) {
      for (const direction of directionsOf(pauseOptions.direction)) settings[direction].paused = true;
    },
    resume(resumeOptions = {}) {
      for (const direction of directionsOf(resumeOptions.direction)) settings[direction].paused = false;
      flushAll();
    },
    resetAll() {
      for (const pair of [...pairs]) tearDown(pair, 'reset');
      changed();
    },
    closeAll() {
      for (const pair of [...pairs]) tearDown(pair, 'end');
      changed();
    },
    refuseNew(on) {
      refusing = on;
    },
    get connections() {
      return pairs.size;
    },
    get stats() {
      return snapshot();
    },
    waitFor(predicate, waitOptions = {}) {
      const timeoutMs = waitOptions.timeoutMs ?? FAULT_PROXY_DEFAULTS.waitForTimeoutMs;
      const label = waitOptions.label ?? 'a stats condition';
      const stats = snapshot();
      if (predicate(stats)) return Promise.resolve(stats);
      if (closePromise !== undefined) {
        return Promise.reject(new Error(`fault proxy: closed while waiting for ${label}`));
      }
      return new Promise<FaultProxyStats>((resolve, reject) => {
        const waiter: Waiter = {
          predicate,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            reject(
              new Error(
                `fault proxy: timed out after ${timeoutMs} ms waiting for ${label}; stats: ${JSON.stringify(snapshot())}`,
              ),
            );
          }, timeoutMs),
        };
        waiters.add(waiter);
      });
    },
    close() {
      closePromise ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const pair of [...pairs]) tearDown(pair, 'destroy');
        for (const socket of sockets) socket.destroy();
        for (const waiter of waiters) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error('fault proxy: closed while waiting'));
        }
        waiters.clear();
        await Promise.all([
          serverClosed,
          ...[...sockets].map(
            (socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())),
          ),
        ]);
        // A server emits 'close' before libuv has released its handle; that happens in the close
        // phase of the loop, which two setImmediate turns are guaranteed to have passed.
        for (let turn = 0; turn < 2; turn += 1) await new Promise((resolve) => setImmediate(resolve));
      })();
      return closePromise;
    },
  };
}
