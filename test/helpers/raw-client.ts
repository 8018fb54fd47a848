/**
 * Raw protocol clients for integration tests: they speak bytes and frames, not the SDK, so
 * tests can send exactly what an attacker or a buggy peer would.
 *
 * - {@link RawClient}: a `ws` client that sends raw bytes or encoded frames, matches replies by
 *   `ref`, waits for a frame matching a predicate and for the close (code + reason).
 * - {@link RawTcp}: a bare `net` socket for handshake-level abuse and hand-built WebSocket
 *   frames (unmasked, RSV bits, reserved opcodes, lying lengths, ...).
 * - {@link startScene}: a broker plus a well-behaved "bystander" session opened before an
 *   attack, which then proves that nothing changed and nobody else was affected.
 *
 * ```ts
 * const scene = await startScene({ helloTimeoutMs: 300 }); // cleaned up when the test ends
 * const c = await RawClient.open(scene.url);
 * await c.hello();
 * const reply = await c.request({ type: 'get', name: '' });
 * expect(reply).toMatchObject({ type: 'error', code: 'NAME_INVALID' });
 * await scene.bystander.expectUndisturbed();
 * ```
 *
 * Every wait has a timeout and names what it waited for; every socket has an `error` listener.
 * Sockets are tracked and destroyed by {@link disposeAll} (startScene registers it).
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { onTestFinished } from 'vitest';
import { WebSocket } from 'ws';
import { type BrokerOptions, type RunningBroker, startBroker } from '../../server/index.js';
import { encodeFrame } from '../../shared/codec.js';
import type { LeaseEvent, LeaseInfo, ServerFrame, WelcomeReply } from '../../shared/frames.js';

export const DEFAULT_WAIT_MS = 5_000;

/** Decodes broker frames without the broker's scan limits (an events frame may hold 1024 events). */
const unpackr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  int64AsType: 'number',
});

export interface CloseInfo {
  code: number;
  reason: string;
}

type FrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;

/** Anything that can be destroyed at the end of a test. */
interface Disposable {
  dispose(): void;
}
const live = new Set<Disposable>();

/** Destroys every RawClient and RawTcp still open. */
export function disposeAll(): void {
  for (const d of [...live]) d.dispose();
  live.clear();
}

/**
 * Runs `check` now and again each time the owner notifies `subscribers` (a frame arrived, the
 * socket closed), until it returns a value (resolve), throws (reject) or the timeout passes
 * (reject with a message naming the wait and the owner's `describe()`).
 */
function waitUntil<T>(
  subscribers: Set<() => void>,
  check: () => T | undefined,
  what: string,
  timeoutMs: number,
  describe: () => string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const attempt = () => {
      let value: T | undefined;
      try {
        value = check();
      } catch (err) {
        finish();
        reject(err);
        return;
      }
      if (value !== undefined) {
        finish();
        resolve(value);
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${describe()}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      subscribers.delete(attempt);
    };
    subscribers.add(attempt);
    attempt();
  });
}

function summarize(frame: unknown): string {
  const text = JSON.stringify(frame, (_k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v));
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

// ---------------------------------------------------------------------------------------------
// RawClient: a ws client

export interface RawClientOptions {
  /** Shown in error messages. */
  label?: string;
  headers?: Record<string, string>;
  origin?: string;
  /** Handshake timeout. */
  timeoutMs?: number;
}

/** The HTTP status a refused upgrade answered with. */
export class HandshakeRefused extends Error {
  constructor(
    readonly status: number,
    label: string,
  ) {
    super(`${label}: the broker refused the WebSocket upgrade with HTTP ${status}`);
  }
}

export class RawClient implements Disposable {
  /** Every frame received, decoded, in order. */
  readonly frames: ServerFrame[] = [];
  /** Set once the close handshake finished or the socket dropped. */
  closed: CloseInfo | undefined;
  readonly errors: Error[] = [];
  private readonly waiters = new Set<() => void>();
  private nextRef = 1;

  private constructor(
    readonly ws: WebSocket,
    readonly label: string,
  ) {
    live.add(this);
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.errors.push(new Error(`${label}: unexpected text frame from the broker`));
      } else {
        try {
          this.frames.push(unpackr.unpack(data as Buffer) as ServerFrame);
        } catch (err) {
          this.errors.push(new Error(`${label}: undecodable frame from the broker`, { cause: err }));
        }
      }
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      live.delete(this);
      this.notify();
    });
  }

  /** Opens a connection; rejects with {@link HandshakeRefused} if the upgrade is refused. */
  static open(url: string, options: RawClientOptions = {}): Promise<RawClient> {
    const label = options.label ?? 'client';
    const wsOptions: ConstructorParameters<typeof WebSocket>[2] = {
      perMessageDeflate: false,
      handshakeTimeout: options.timeoutMs ?? DEFAULT_WAIT_MS,
    };
    if (options.headers) wsOptions.headers = options.headers;
    if (options.origin !== undefined) wsOptions.origin = options.origin;
    const ws = new WebSocket(url, wsOptions);
    const client = new RawClient(ws, label);
    return new Promise((resolve, reject) => {
      ws.on('error', (err) => {
        client.errors.push(err);
        client.notify();
        reject(new Error(`${label}: could not connect to ${url}: ${err.message}`, { cause: err }));
      });
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        ws.terminate();
        reject(new HandshakeRefused(res.statusCode ?? 0, label));
      });
      ws.once('open', () => resolve(client));
    });
  }

  /** Opens a connection and sends hello; resolves with the welcome. */
  static async session(
    url: string,
    hello: Record<string, unknown> = {},
    options: RawClientOptions = {},
  ): Promise<{ client: RawClient; welcome: WelcomeReply }> {
    const client = await RawClient.open(url, options);
    const welcome = await client.hello(hello);
    return { client, welcome };
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  describe(): string {
    const last = this.frames.slice(-5).map(summarize);
    const state = this.closed
      ? `closed ${this.closed.code} ${JSON.stringify(this.closed.reason)}`
      : `readyState ${this.ws.readyState}`;
    const errs = this.errors.length ? `; errors: ${this.errors.map((e) => e.message).join(' | ')}` : '';
    return `${this.label} ${state}, ${this.frames.length} frames received, last: [${last.join(', ')}]${errs}`;
  }

  /** The number of frames received so far: pass it as `since` to look only at later frames. */
  mark(): number {
    return this.frames.length;
  }

  /** Sends raw bytes as one binary message (or text, or a fragment with `fin: false`). */
  sendRaw(
    data: Uint8Array | string,
    options: { binary?: boolean; fin?: boolean; mask?: boolean } = {},
  ): void {
    this.ws.send(data, { binary: typeof data !== 'string', ...options });
  }

  /** Encodes and sends a frame without waiting for anything. */
  send(frame: object): void {
    this.sendRaw(encodeFrame(frame));
  }

  /** A ref not used yet by this client. */
  ref(): number {
    return this.nextRef++;
  }

  /**
   * Sends a frame (a ref is added if missing) and resolves with the first frame carrying its
   * ref received after the send.
   */
  async request(frame: { type: string; ref?: number; [k: string]: unknown }, timeoutMs?: number) {
    const ref = frame.ref ?? this.ref();
    const since = this.mark();
    this.send({ ...frame, ref });
    return this.replyTo(ref, { what: frame.type, since, timeoutMs });
  }

  /** Sends pre-encoded bytes and resolves with the next frame carrying `ref`. */
  requestRaw(bytes: Uint8Array, ref: number, timeoutMs?: number): Promise<ServerFrame> {
    const since = this.mark();
    this.sendRaw(bytes);
    return this.replyTo(ref, { what: 'raw request', since, timeoutMs });
  }

  /** Resolves with the first frame carrying `ref` at index >= since (default: any so far). */
  replyTo(
    ref: number,
    opts: { what?: string; since?: number; timeoutMs?: number | undefined } = {},
  ): Promise<ServerFrame> {
    return this.waitFor((f) => 'ref' in f && f.ref === ref, {
      label: `the reply to ${opts.what ?? 'request'} ref ${ref}`,
      since: opts.since ?? 0,
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    });
  }

  /** Like {@link request}, but the reply must be of type `type`; an error reply throws with its code. */
  async call<T extends ServerFrame['type']>(
    frame: { type: string; ref?: number; [k: string]: unknown },
    type: T,
  ): Promise<FrameOf<T>> {
    const reply = await this.request(frame);
    if (reply.type !== type) {
      throw new Error(`${this.label}: ${frame.type} answered ${summarize(reply)}, expected ${type}`);
    }
    return reply as FrameOf<T>;
  }

  /** Sends hello (version 1 unless overridden) and resolves with the welcome. */
  hello(fields: Record<string, unknown> = {}): Promise<WelcomeReply> {
    return this.call({ type: 'hello', version: 1, ...fields }, 'welcome');
  }

  /**
   * Resolves with the first frame at index >= `since` (default 0: any frame so far) matching
   * `predicate`. Rejects early if the socket closes without one.
   */
  waitFor(
    predicate: (frame: ServerFrame) => boolean,
    opts: { label?: string; since?: number; timeoutMs?: number } = {},
  ): Promise<ServerFrame> {
    const what = opts.label ?? 'a matching frame';
    let from = opts.since ?? 0;
    return waitUntil(
      this.waiters,
      () => {
        for (; from < this.frames.length; from++) {
          const f = this.frames[from] as ServerFrame;
          if (predicate(f)) return f;
        }
        if (this.closed) throw new Error(`${this.label} closed before ${what} arrived; ${this.describe()}`);
        return undefined;
      },
      `${this.label}: ${what}`,
      opts.timeoutMs ?? DEFAULT_WAIT_MS,
      () => this.describe(),
    );
  }

  /** Lease events pushed in `events` frames at index >= since. */
  events(since = 0): LeaseEvent[] {
    const out: LeaseEvent[] = [];
    for (const f of this.frames.slice(since)) if (f.type === 'events') out.push(...f.events);
    return out;
  }

  /** Resolves once `predicate` holds for the events pushed at index >= since. */
  waitForEvents(
    predicate: (events: LeaseEvent[]) => boolean,
    opts: { label?: string; since?: number; timeoutMs?: number } = {},
  ): Promise<LeaseEvent[]> {
    const what = opts.label ?? 'matching events';
    return waitUntil(
      this.waiters,
      () => {
        const evs = this.events(opts.since ?? 0);
        if (predicate(evs)) return evs;
        if (this.closed) throw new Error(`${this.label} closed before ${what} arrived; ${this.describe()}`);
        return undefined;
      },
      `${this.label}: ${what}`,
      opts.timeoutMs ?? DEFAULT_WAIT_MS,
      () => this.describe(),
    );
  }

  /** Resolves with the close code and reason once the socket has closed. */
  waitForClose(timeoutMs = DEFAULT_WAIT_MS): Promise<CloseInfo> {
    return waitUntil(
      this.waiters,
      () => this.closed,
      `${this.label} to close`,
      timeoutMs,
      () => this.describe(),
    );
  }

  /** Closes cleanly and waits for the close; drops the socket if that takes too long. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.ws.close(1000);
    await this.waitForClose().catch(() => this.ws.terminate());
  }

  dispose(): void {
    live.delete(this);
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// Raw msgpack pieces, for frames our encoder would never produce

/** Bytes placed into a frame verbatim by {@link packWithRaw}. */
export class RawBytes {
  constructor(readonly bytes: Uint8Array) {}
}

/** Shorthand: `raw(0xa1, 0xff)` is the bytes a1 ff. */
export function raw(...bytes: number[]): RawBytes {
  return new RawBytes(Uint8Array.from(bytes));
}

/** Encodes a map whose values are encoded normally, except RawBytes values, copied verbatim. */
export function packWithRaw(fields: Record<string, unknown>): Uint8Array {
  const entries = Object.entries(fields);
  if (entries.length > 15) throw new RangeError('packWithRaw supports up to 15 fields');
  const parts: Uint8Array[] = [Uint8Array.of(0x80 | entries.length)];
  for (const [k, v] of entries) {
    parts.push(encodeFrame(k as unknown as object));
    parts.push(v instanceof RawBytes ? v.bytes : encodeFrame(v as object));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// RawTcp: a bare socket for the HTTP upgrade and hand-built WebSocket frames

export interface HttpHead {
  status: number;
  statusLine: string;
  headers: Record<string, string>;
}

export interface WsFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

export interface WsFrameSpec {
  opcode: number;
  payload?: Uint8Array;
  fin?: boolean;
  /** RSV1..3 as bits 0b100, 0b010, 0b001. */
  rsv?: number;
  /** Clients must mask; false sends the frame unmasked. */
  mask?: boolean;
  /** Announce this payload length instead of the real one (as a 64-bit length). */
  announcedLength?: bigint;
  /** The 4-byte masking key (random by default). */
  maskKey?: Uint8Array;
}

export const Opcodes = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };

/** Builds one WebSocket frame as a client would send it (masked unless told otherwise). */
export function encodeWsFrame(spec: WsFrameSpec): Buffer {
  const payload = Buffer.from(spec.payload ?? new Uint8Array(0));
  const mask = spec.mask ?? true;
  const b0 = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (spec.opcode & 0x0f);
  let header: Buffer;
  const maskBit = mask ? 0x80 : 0;
  if (spec.announcedLength !== undefined) {
    header = Buffer.alloc(10);
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(spec.announcedLength, 2);
  } else if (payload.length < 126) {
    header = Buffer.alloc(2);
    header[1] = maskBit | payload.length;
  } else if (payload.length < 0x10000) {
    header = Buffer.alloc(4);
    header[1] = maskBit | 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  header[0] = b0;
  if (!mask) return Buffer.concat([header, payload]);
  const key = spec.maskKey ?? randomBytes(4);
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = (payload[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([header, key, masked]);
}

/** A close frame payload: a 2-byte code and a reason (raw bytes allowed). */
export function closePayload(code: number, reason: Uint8Array | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : Buffer.from(reason);
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

export interface UpgradeRequest {
  method?: string;
  path?: string;
  httpVersion?: string;
  /** Replaces the standard upgrade headers when given (names as written on the wire). */
  headerLines?: string[];
  /** Extra header lines appended after the standard ones. */
  extraLines?: string[];
}

/** The text of an upgrade request: the standard headers unless `headerLines` replaces them. */
export function upgradeRequest(port: number, req: UpgradeRequest = {}): string {
  const lines = req.headerLines ?? [
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
  ];
  const all = [...lines, ...(req.extraLines ?? [])];
  return `${req.method ?? 'GET'} ${req.path ?? '/v1'} HTTP/${req.httpVersion ?? '1.1'}\r\n${all.join('\r\n')}\r\n\r\n`;
}

export class RawTcp implements Disposable {
  /** Set when the socket closed (the peer ended or reset it, or we destroyed it). */
  ended: { atMs: number; hadError: boolean } | undefined;
  readonly errors: Error[] = [];
  /** Bytes before the WebSocket frames begin (all of them until a 101 head has been read). */
  private head: Buffer = Buffer.alloc(0);
  /** Bytes after the 101 head not yet parsed into frames; undefined until the 101. */
  private pending: Buffer | undefined;
  private readonly parsed: WsFrame[] = [];
  private readonly decoded: ServerFrame[] = [];
  private decodedUpTo = 0;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly socket: Socket,
    readonly label: string,
  ) {
    live.add(this);
    socket.on('data', (chunk: Buffer) => {
      if (this.pending === undefined) this.head = Buffer.concat([this.head, chunk]);
      else this.parse(chunk);
      this.notify();
    });
    socket.on('error', (err) => {
      this.errors.push(err);
      this.notify();
    });
    socket.on('close', (hadError) => {
      this.ended = { atMs: performance.now(), hadError };
      live.delete(this);
      this.notify();
    });
  }

  static connect(port: number, opts: { host?: string; label?: string } = {}): Promise<RawTcp> {
    const socket = netConnect({ port, host: opts.host ?? '127.0.0.1' });
    const tcp = new RawTcp(socket, opts.label ?? 'tcp');
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new Error(`${tcp.label}: connect failed: ${err.message}`));
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(tcp);
      });
    });
  }

  /** Connects and completes a normal upgrade to /v1; rejects unless the answer is 101. */
  static async upgraded(port: number, label = 'tcp'): Promise<RawTcp> {
    const tcp = await RawTcp.connect(port, { label });
    const head = await tcp.upgrade(port);
    if (head.status !== 101) throw new Error(`${label}: upgrade answered ${head.statusLine}`);
    return tcp;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** The bytes received before any WebSocket frame, as text (the HTTP answer, if any). */
  text(): string {
    return this.head.toString('latin1');
  }

  describe(): string {
    const text = this.text().slice(0, 300).replace(/\r\n/g, '⏎');
    const state = this.ended ? `closed${this.ended.hadError ? ' with an error' : ''}` : 'open';
    return `${this.label} ${state}, received ${JSON.stringify(text)} and ${this.parsed.length} frames`;
  }

  /** Writes bytes; a write to a socket the peer already closed is ignored (recorded in errors). */
  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  sendFrame(spec: WsFrameSpec): Promise<void> {
    return this.write(encodeWsFrame(spec));
  }

  /** Sends one masked binary message holding an encoded frame. */
  sendMessage(frame: object): Promise<void> {
    return this.sendFrame({ opcode: Opcodes.binary, payload: encodeFrame(frame) });
  }

  /** Sends many messages in one write, as a client pipelining requests would (a flood). */
  sendMessages(frames: Iterable<object>): Promise<void> {
    const maskKey = randomBytes(4);
    const parts: Buffer[] = [];
    for (const f of frames)
      parts.push(encodeWsFrame({ opcode: Opcodes.binary, payload: encodeFrame(f), maskKey }));
    return this.write(Buffer.concat(parts));
  }

  /** Resolves once `check` returns a value for the bytes received so far. */
  waitUntil<T>(check: () => T | undefined, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    return waitUntil(this.waiters, check, `${this.label}: ${what}`, timeoutMs, () => this.describe());
  }

  /** Resolves with the parsed response head once it has arrived (rejects if the socket closes first). */
  waitForHead(timeoutMs = DEFAULT_WAIT_MS): Promise<HttpHead> {
    return this.waitUntil(
      () => {
        const end = this.head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.ended) throw new Error(`${this.label} closed before an HTTP answer; ${this.describe()}`);
          return undefined;
        }
        const lines = this.head.subarray(0, end).toString('latin1').split('\r\n');
        const statusLine = lines[0] ?? '';
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
        if (status === 101 && this.pending === undefined) {
          const rest = this.head.subarray(end + 4);
          this.head = this.head.subarray(0, end + 4);
          this.pending = Buffer.alloc(0);
          this.parse(rest);
        }
        return { status, statusLine, headers };
      },
      'an HTTP response head',
      timeoutMs,
    );
  }

  /** Sends an upgrade request and resolves with the response head. */
  async upgrade(port: number, req: UpgradeRequest = {}): Promise<HttpHead> {
    await this.write(upgradeRequest(port, req));
    return this.waitForHead();
  }

  /** Splits complete server frames off the bytes received after the 101. */
  private parse(chunk: Buffer): void {
    let buf = (this.pending as Buffer).length ? Buffer.concat([this.pending as Buffer, chunk]) : chunk;
    for (;;) {
      if (buf.length < 2) break;
      const b0 = buf[0] as number;
      const b1 = buf[1] as number;
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (b1 & 0x80) at += 4; // servers never mask, but do not choke if one did
      if (buf.length < at + len) break;
      this.parsed.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: buf.subarray(at, at + len) });
      buf = buf.subarray(at + len);
    }
    this.pending = Buffer.from(buf);
  }

  /** The WebSocket frames the server sent after the 101 (complete ones only). */
  frames(): readonly WsFrame[] {
    return this.parsed;
  }

  /** Decoded binary messages (single-frame ones: the broker never fragments). */
  messages(): readonly ServerFrame[] {
    for (; this.decodedUpTo < this.parsed.length; this.decodedUpTo++) {
      const f = this.parsed[this.decodedUpTo] as WsFrame;
      if (f.opcode === Opcodes.binary) this.decoded.push(unpackr.unpack(f.payload) as ServerFrame);
    }
    return this.decoded;
  }

  /** Resolves with the first decoded message at index >= since (default 0) matching the predicate. */
  waitForMessage(
    predicate: (m: ServerFrame) => boolean,
    what: string,
    opts: { since?: number; timeoutMs?: number } = {},
  ): Promise<ServerFrame> {
    let from = opts.since ?? 0;
    return this.waitUntil(
      () => {
        const messages = this.messages();
        for (; from < messages.length; from++) {
          const m = messages[from] as ServerFrame;
          if (predicate(m)) return m;
        }
        if (this.ended) throw new Error(`${this.label} closed before ${what}; ${this.describe()}`);
        return undefined;
      },
      what,
      opts.timeoutMs,
    );
  }

  /** Sends a frame carrying `ref` and resolves with the next message carrying the same ref. */
  async request(frame: { type: string; ref: number; [k: string]: unknown }): Promise<ServerFrame> {
    const since = this.messages().length;
    await this.sendMessage(frame);
    return this.waitForMessage(
      (m) => 'ref' in m && m.ref === frame.ref,
      `the reply to ${frame.type} ref ${frame.ref}`,
      {
        since,
      },
    );
  }

  /** Sends hello over the raw socket and resolves with the welcome. */
  async hello(): Promise<WelcomeReply> {
    await this.sendMessage({ type: 'hello', ref: 1, version: 1 });
    return (await this.waitForMessage((m) => m.type === 'welcome', 'a welcome')) as WelcomeReply;
  }

  /** Resolves with the code and reason of the server's close frame. */
  waitForCloseFrame(timeoutMs = DEFAULT_WAIT_MS): Promise<CloseInfo> {
    return this.waitUntil(
      () => {
        const f = this.frames().find((x) => x.opcode === Opcodes.close);
        if (f) {
          return {
            code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005,
            reason: f.payload.subarray(2).toString('utf8'),
          };
        }
        if (this.ended) throw new Error(`${this.label} closed without a close frame; ${this.describe()}`);
        return undefined;
      },
      'a close frame',
      timeoutMs,
    );
  }

  /** Resolves once the socket has closed (by the peer or with an error). */
  waitForEnd(timeoutMs = DEFAULT_WAIT_MS): Promise<{ atMs: number; hadError: boolean }> {
    return this.waitUntil(() => this.ended, 'the socket to close', timeoutMs);
  }

  dispose(): void {
    live.delete(this);
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// A broker with a bystander: the well-behaved session every attack must leave alone

export const BYSTANDER_LEASE = 'bystander/held';

/**
 * A well-behaved session opened before the attack: it holds {@link BYSTANDER_LEASE} and
 * watches every name. {@link expectUndisturbed} then proves the attack changed nothing for it.
 */
export class Bystander {
  private probes = 0;

  private constructor(
    readonly url: string,
    private readonly connectOptions: RawClientOptions,
    readonly client: RawClient,
    readonly welcome: WelcomeReply,
    readonly lease: LeaseInfo,
    readonly watchId: number,
    /** Broker revision after the set-up (and after each check). */
    public revision: number,
    /** Frame index after the set-up (and after each check). */
    public since: number,
  ) {}

  static async start(url: string, connectOptions: RawClientOptions = {}): Promise<Bystander> {
    const { client, welcome } = await RawClient.session(
      url,
      { owner: 'bystander' },
      { ...connectOptions, label: 'bystander' },
    );
    const granted = await client.call({ type: 'acquire', name: BYSTANDER_LEASE }, 'granted');
    const watching = await client.call({ type: 'watch', prefix: '' }, 'watching');
    return new Bystander(
      url,
      connectOptions,
      client,
      welcome,
      granted.lease,
      watching.watchId,
      watching.revision,
      client.mark(),
    );
  }

  /**
   * Checks that the bystander's session is intact: its lease and token are unchanged, its watch
   * saw no events it should not have, it can still acquire and release (and sees exactly those
   * events), and the broker still accepts new sessions.
   *
   * By default nothing may have changed broker-wide (revision unchanged, no events). Pass
   * `allowEventsFor` when the attack legitimately changed other leases.
   */
  async expectUndisturbed(opts: { allowEventsFor?: (name: string) => boolean } = {}): Promise<void> {
    const c = this.client;
    if (c.closed) throw new Error(`the bystander's connection was closed; ${c.describe()}`);
    const got = await c.call({ type: 'get', name: BYSTANDER_LEASE }, 'lease');
    if (!got.lease) throw new Error('the bystander lost its lease');
    const { token, sessionId, revision } = got.lease;
    const before = this.lease;
    if (token !== before.token || sessionId !== before.sessionId || revision !== before.revision) {
      throw new Error(
        `the bystander's lease changed: ${summarize({ token, sessionId, revision })} was ${summarize(before)}`,
      );
    }
    // Replies leave after every event queued before them, so the events are all in by now.
    const seen = c.events(this.since);
    const allowed = opts.allowEventsFor;
    const spurious = seen.filter((e) => !allowed?.(e.name) || e.name.startsWith('bystander/'));
    if (spurious.length > 0) {
      throw new Error(`the bystander's watch saw spurious events: ${spurious.map(summarize).join(', ')}`);
    }
    if (!allowed && got.revision !== this.revision) {
      throw new Error(`the broker's revision moved from ${this.revision} to ${got.revision}`);
    }
    // It can still acquire and release, and its watch reports exactly that.
    const name = `bystander/probe-${++this.probes}`;
    const mark = c.mark();
    const granted = await c.call({ type: 'acquire', name }, 'granted');
    const ok = await c.call({ type: 'release', name, token: granted.lease.token }, 'ok');
    const probeEvents = await c.waitForEvents((evs) => evs.filter((e) => e.name === name).length >= 2, {
      since: mark,
      label: `the probe's acquired and released events on ${name}`,
    });
    const strays = probeEvents.filter(
      (e) => e.name !== name && (!allowed?.(e.name) || e.name.startsWith('bystander/')),
    );
    if (strays.length > 0) {
      throw new Error(`the bystander's watch saw spurious events: ${strays.map(summarize).join(', ')}`);
    }
    const mine = probeEvents.filter((e) => e.name === name);
    const expected = [
      { kind: 'acquired', name, token: granted.lease.token, revision: granted.lease.revision },
      { kind: 'released', name, token: granted.lease.token, revision: ok.revision, reason: 'release' },
    ];
    if (
      mine.length !== 2 ||
      mine.some((e, i) => {
        const want = expected[i] as Record<string, unknown>;
        return Object.entries(want).some(([k, v]) => (e as unknown as Record<string, unknown>)[k] !== v);
      })
    ) {
      throw new Error(`the probe saw ${mine.map(summarize).join(', ')}; expected ${summarize(expected)}`);
    }
    // The broker still serves new connections.
    const fresh = await RawClient.session(this.url, {}, { ...this.connectOptions, label: 'fresh client' });
    await fresh.client.close();
    this.revision = ok.revision;
    this.since = c.mark();
  }
}

export interface Scene {
  broker: RunningBroker;
  url: string;
  port: number;
  bystander: Bystander;
}

/**
 * Starts a memory broker (silent logs) and a bystander. Registers cleanup for the end of the
 * current test: every raw socket is destroyed, then the broker is closed. `bystander` holds the
 * connect options of the bystander and of the fresh clients it opens (e.g. an allowed Origin).
 */
export async function startScene(
  options: Partial<BrokerOptions> = {},
  bystander: RawClientOptions = {},
): Promise<Scene> {
  const broker = await startBroker({
    port: 0,
    host: '127.0.0.1',
    store: 'memory',
    logLevel: 'silent',
    drainTimeoutMs: 200,
    ...options,
  });
  onTestFinished(async () => {
    disposeAll();
    await broker.close();
  });
  return {
    broker,
    url: broker.url,
    port: broker.port,
    bystander: await Bystander.start(broker.url, bystander),
  };
}
