/**
 * Helpers for the HTTP API and metrics integration tests: a broker on port 0 closed when the
 * test ends, JSON calls with `fetch`, raw requests with `node:http` (for bodies and headers
 * fetch will not send), an SSE reader, a minimal WebSocket peer, and a Prometheus text parser.
 * Every wait has a timeout and says what it waited for.
 */
import { request as httpRequest } from 'node:http';
import { Packr } from 'msgpackr';
import { onTestFinished } from 'vitest';
import { WebSocket } from 'ws';
import { type Clock, systemClock } from '../../server/clock.js';
import { type BrokerOptions, type RunningBroker, type StartExtras, startBroker } from '../../server/index.js';
import type { SessionNotice } from '../../server/storage/lease-store.js';
import { encodeFrame } from '../../shared/codec.js';
import type { ServerFrame, WelcomeReply } from '../../shared/frames.js';

export const WAIT_MS = 5_000;

/** Starts a memory-store broker on port 0; it is closed when the current test finishes. */
export async function startHttpBroker(
  options: Partial<BrokerOptions> = {},
  extras: StartExtras = {},
): Promise<RunningBroker> {
  const broker = await startBroker({ port: 0, store: 'memory', logLevel: 'silent', ...options }, extras);
  onTestFinished(() => broker.close());
  return broker;
}

export interface JsonReply<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

/** The system clock plus an offset a test can jump forward (timers still run on real time). */
export function jumpableClock(): Clock & { jump(ms: number): void } {
  let offset = 0;
  return {
    now: () => ({ mono: performance.now() + offset, wall: Date.now() + offset }),
    setTimer: systemClock.setTimer,
    clearTimer: systemClock.clearTimer,
    jump(ms: number) {
      offset += ms;
    },
  };
}

/** One JSON call. `body` is sent as JSON; `secret` goes in Leasewire-Session-Secret. */
export async function call<T = Record<string, unknown>>(
  broker: RunningBroker,
  method: string,
  path: string,
  opts: { body?: unknown; secret?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<JsonReply<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.secret !== undefined) headers['leasewire-session-secret'] = opts.secret;
  const init: RequestInit = { method, headers };
  if (opts.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(`${broker.httpUrl}${path}`, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new Error(`${method} ${path}: ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, headers: res.headers, body: body as T };
}

export interface HttpSession {
  id: string;
  secret: string;
  ttlMs: number;
  heartbeatIntervalMs: number;
}

export async function openSession(
  broker: RunningBroker,
  body: { ttlMs?: number; owner?: string } = {},
): Promise<HttpSession> {
  const r = await call<HttpSession>(broker, 'POST', '/v1/sessions', { body });
  if (r.status !== 201) throw new Error(`opening a session answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

export function leasePath(name: string, action?: string): string {
  return `/v1/leases/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;
}

export function acquire(
  broker: RunningBroker,
  s: HttpSession,
  name: string,
  extra: Record<string, unknown> = {},
  signal?: AbortSignal,
) {
  return call<{
    lease: { token: number; name: string; sessionId: string; meta?: string };
    code?: string;
    details?: Record<string, unknown>;
  }>(broker, 'POST', leasePath(name, 'acquire'), {
    body: { session: s.id, ...extra },
    secret: s.secret,
    ...(signal ? { signal } : {}),
  });
}

/** Resolves with the first store notice matching `pick` (subscribe before causing it). */
export function nextNotice(
  broker: RunningBroker,
  pick: (n: SessionNotice) => boolean,
  what: string,
): Promise<SessionNotice> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`));
    }, WAIT_MS);
    const off = broker.store.onNotice((n) => {
      if (!pick(n)) return;
      clearTimeout(timer);
      off();
      resolve(n);
    });
  });
}

/**
 * Resolves when the store next answers an acquire of `name` with `queued` (the wait is in
 * place). Wraps the store's acquire for the rest of the test.
 */
export function queuedOn(broker: RunningBroker, name: string): Promise<void> {
  const store = broker.store;
  const original = store.acquire;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      store.acquire = original;
      reject(new Error(`timed out after ${WAIT_MS} ms waiting for an acquire of ${name} to be queued`));
    }, WAIT_MS);
    store.acquire = async (sessionId, n, params) => {
      const result = await original.call(store, sessionId, n, params);
      if (n === name && result.kind === 'queued') {
        clearTimeout(timer);
        store.acquire = original;
        resolve();
      }
      return result;
    };
    onTestFinished(() => {
      clearTimeout(timer);
      store.acquire = original;
    });
  });
}

/** Resolves once the broker's watch hub holds exactly `n` subscriptions (re-checked on every add and remove). */
export function hubSizeReaches(broker: RunningBroker, n: number): Promise<void> {
  const hub = broker.broker.hub;
  const { add, remove } = hub;
  return new Promise((resolve, reject) => {
    const restore = () => {
      clearTimeout(timer);
      hub.add = add;
      hub.remove = remove;
    };
    const check = () => {
      if (hub.size !== n) return;
      restore();
      resolve();
    };
    const timer = setTimeout(() => {
      restore();
      reject(new Error(`timed out waiting for ${n} watch subscriptions (now ${hub.size})`));
    }, WAIT_MS);
    hub.add = (prefix, sink) => {
      const sub = add.call(hub, prefix, sink);
      check();
      return sub;
    };
    hub.remove = (sub) => {
      remove.call(hub, sub);
      check();
    };
    onTestFinished(restore);
    check();
  });
}

// ---- raw HTTP ----

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A request with exactly these headers and body bytes (no content-type added), via node:http. */
export function rawRequest(
  broker: RunningBroker,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Uint8Array | string | (Uint8Array | string)[],
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: broker.host, port: broker.port, method, path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(WAIT_MS, () => req.destroy(new Error(`${method} ${path}: no answer in ${WAIT_MS} ms`)));
    if (Array.isArray(body)) for (const part of body) req.write(part);
    else if (body !== undefined) req.write(body);
    req.end();
  });
}

// ---- Server-Sent Events ----

export interface SseMessage {
  event: string;
  id: string | undefined;
  data: unknown;
}

/** Reads an SSE stream with fetch; messages and comment lines are kept in order. */
export class SseReader {
  readonly messages: SseMessage[] = [];
  comments = 0;
  ended = false;
  private readonly listeners = new Set<() => void>();

  private constructor(
    readonly status: number,
    readonly headers: Headers,
    private readonly abort: AbortController,
  ) {}

  static async open(broker: RunningBroker, path: string, headers: Record<string, string> = {}) {
    const abort = new AbortController();
    const res = await fetch(`${broker.httpUrl}${path}`, { headers, signal: abort.signal });
    const reader = new SseReader(res.status, res.headers, abort);
    onTestFinished(() => reader.close());
    if (res.status !== 200 || !res.body) {
      reader.errorBody = await res.text();
      reader.ended = true;
      return reader;
    }
    void reader.pump(res.body);
    return reader;
  }

  errorBody = '';

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          this.parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
        this.notify();
      }
    } catch {
      // aborted or dropped
    }
    this.ended = true;
    this.notify();
  }

  private parse(block: string): void {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    let comment = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comment = true;
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length === 0) {
      if (comment) this.comments++;
      return;
    }
    this.messages.push({ event, id, data: JSON.parse(data.join('\n')) });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Resolves with the first message at index >= since matching `pick`. */
  waitFor(pick: (m: SseMessage) => boolean, what: string, since = 0): Promise<SseMessage> {
    return this.until(() => this.messages.slice(since).find(pick), what);
  }

  /** Resolves once `check` returns a value; re-checked whenever the stream delivers something. */
  until<T>(check: () => T | undefined, what: string, timeoutMs = WAIT_MS): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const v = check();
        if (v === undefined) return;
        done();
        resolve(v);
      };
      const timer = setTimeout(() => {
        done();
        const last = this.messages.slice(-3).map((m) => JSON.stringify(m).slice(0, 200));
        reject(new Error(`timed out waiting for ${what}; ended=${this.ended}, last: ${last.join(' | ')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(attempt);
      };
      this.listeners.add(attempt);
      attempt();
    });
  }

  close(): void {
    this.abort.abort();
  }
}

// ---- a minimal WebSocket peer ----

const unpackr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  int64AsType: 'number',
});

/** Speaks the WebSocket protocol with shared/codec frames; replies are matched by ref. */
export class WsPeer {
  readonly frames: ServerFrame[] = [];
  closed: { code: number } | undefined;
  private readonly listeners = new Set<() => void>();
  private nextRef = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(unpackr.unpack(data as Buffer) as ServerFrame);
      this.notify();
    });
    ws.on('close', (code) => {
      this.closed = { code };
      this.notify();
    });
    ws.on('error', () => {});
  }

  /** Connects and says hello; `autoPong: false` makes a peer that never answers pings. */
  static async session(
    broker: RunningBroker,
    hello: Record<string, unknown> = {},
    opts: { autoPong?: boolean } = {},
  ): Promise<{ peer: WsPeer; welcome: WelcomeReply }> {
    const ws = new WebSocket(broker.url, { perMessageDeflate: false, autoPong: opts.autoPong ?? true });
    const peer = new WsPeer(ws);
    onTestFinished(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const welcome = await peer.request({ type: 'hello', version: 1, ...hello });
    if (welcome.type !== 'welcome') throw new Error(`hello answered ${JSON.stringify(welcome)}`);
    return { peer, welcome };
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Sends a request; resolves with the first reply with its ref (skipping `queued`). */
  request(frame: Record<string, unknown>): Promise<ServerFrame> {
    const ref = this.nextRef++;
    this.ws.send(encodeFrame({ ...frame, ref }));
    return this.waitFor(
      (f) => 'ref' in f && f.ref === ref && f.type !== 'queued',
      `the reply to ${String(frame.type)}`,
    );
  }

  waitFor(pick: (f: ServerFrame) => boolean, what: string): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const f = this.frames.find(pick);
        if (f) {
          done();
          resolve(f);
        } else if (this.closed) {
          done();
          reject(new Error(`the socket closed (${this.closed.code}) while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}`));
      }, WAIT_MS);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(attempt);
      };
      this.listeners.add(attempt);
      attempt();
    });
  }

  waitClosed(): Promise<{ code: number }> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        if (!this.closed) return;
        done();
        resolve(this.closed);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error('timed out waiting for the socket to close'));
      }, WAIT_MS);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(attempt);
      };
      this.listeners.add(attempt);
      attempt();
    });
  }
}

// ---- Prometheus text ----

/** Parses exposition text into `name{labels}` → value (labels as printed, sorted by prom-client). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

export async function scrape(broker: RunningBroker): Promise<Map<string, number>> {
  const res = await fetch(`${broker.httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/** A metric's value, 0 when the series does not exist yet. */
export function metric(m: Map<string, number>, key: string): number {
  return m.get(key) ?? 0;
}
