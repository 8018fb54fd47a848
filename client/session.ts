import { CloseCodes, closeCodeName } from '../shared/close-codes.js';
import { type ErrorCode, type ErrorDetails, isErrorCode, LeasewireError } from '../shared/errors.js';
import type {
  ErrorReply,
  EventsPush,
  HelloRequest,
  LostPush,
  QueuedReply,
  Request,
  ServerFrame,
  WelcomeReply,
} from '../shared/frames.js';
import { PROTOCOL_VERSION } from '../shared/version.js';
import { backoffDelayMs } from './backoff.js';
import { type Clock, type Instant, systemClock } from './clock.js';
import { type CloseInfo, Connection } from './connection.js';
import type { ResolvedOptions } from './options.js';
import { SafetyDeadline, watchDeadline } from './safety-deadline.js';
import { StatusHub } from './status.js';
import { resolveWebSocket, type WebSocketConstructor } from './websocket.js';

type WithoutRef<T> = T extends unknown ? Omit<T, 'ref'> : never;
/** A request frame as callers build it; the session assigns the ref at each send. */
export type RequestBody = WithoutRef<Exclude<Request, HelloRequest>>;
/** A final answer to a request. */
export type Reply = Exclude<ServerFrame, EventsPush | LostPush | ErrorReply | QueuedReply | WelcomeReply>;

/** A reply and the local time its request was (last) sent. */
export interface Answer {
  reply: Reply;
  sentAt: Instant;
}

/** What happens to a request that was queued or in flight when its connection dropped. */
export type ResendPolicy =
  /** Fails with UNAVAILABLE (keepalive, watch attaches, best-effort releases); never queued. */
  | 'never'
  /** Sent again after a resume; fails with SESSION_EXPIRED once the session is gone (release, renew, setMeta). */
  | 'sameSession'
  /** Sent again on whatever session comes next (get, list, acquire). */
  | 'anySession';

export interface CallOptions {
  policy: ResendPolicy;
  /** Fails the call with UNAVAILABLE after this long, queued time included; null for never. */
  timeoutMs: number | null;
  /** A waiting acquire was queued behind the holder. */
  onQueued?: (reply: QueuedReply) => void;
  /** Runs before every send (`resend` is false the first time): the body to send, or an Error to fail instead. */
  beforeSend?: (resend: boolean) => RequestBody | Error;
}

/** A request on its way. */
export interface Call {
  readonly promise: Promise<Answer>;
  /** True while the request waits to be sent (disconnected). */
  readonly queued: boolean;
  /** Takes the request back if it has not been sent on the current connection; false otherwise. */
  withdraw(error: Error): boolean;
}

/** What the session tells the layer above (leases, watches). */
export interface SessionHooks {
  /** A session is open on a fresh connection; runs before queued requests are sent. */
  sessionStarted(welcome: WelcomeReply, resumed: boolean): void;
  /** The connection dropped; the session may still be resumed. */
  connectionLost(): void;
  /** The local safety deadline passed: the broker may have expired the session. */
  sessionMaybeExpired(): void;
  /** The session is certainly gone (resume refused, 4003 SESSION_EXPIRED, 4002 SESSION_TAKEN_OVER). */
  sessionEnded(reason: 'expired' | 'taken-over'): void;
  push(frame: EventsPush | LostPush): void;
  /** After each frame has been handled. */
  afterFrame(frame: ServerFrame): void;
  /** close() finished; `byeConfirmed` says whether the broker confirmed the session ended cleanly. */
  clientClosed(byeConfirmed: boolean): void;
}

interface Pending {
  body: RequestBody;
  opts: CallOptions;
  /** The session generation the request was made in (for `sameSession`). */
  epoch: number;
  ref: number | undefined;
  sentAt: Instant | undefined;
  sends: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  done: boolean;
  resolve: (answer: Answer) => void;
  reject: (error: Error) => void;
}

/** A refusal of hello that no retry can fix. */
const FATAL_HELLO_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'UNSUPPORTED_VERSION',
  'BAD_REQUEST',
  'BAD_FRAME',
  'UNKNOWN_OP',
  'HELLO_REQUIRED',
  'ALREADY_HELLO',
]);

/** Rebuilds the broker's error. */
export function replyError(frame: ErrorReply): LeasewireError {
  if (isErrorCode(frame.code))
    return new LeasewireError(frame.code, frame.message, frame.details as ErrorDetails);
  return new LeasewireError('INTERNAL', `${frame.code}: ${frame.message}`, frame.details as ErrorDetails);
}

export function closedError(): LeasewireError {
  return new LeasewireError('CANCELLED', 'the client is closed');
}

function sessionGoneError(): LeasewireError {
  return new LeasewireError('SESSION_EXPIRED', 'the session expired before the request could be sent');
}

/**
 * One client session across connections: opens sockets, says hello (resuming with sessionId and
 * secret), sends keepalives, detects a dead broker, runs the single reconnect loop with jittered
 * exponential backoff, keeps the local safety deadline, and matches replies to requests. Requests
 * made while disconnected wait in a bounded queue and go out after the next welcome.
 */
export class Session {
  readonly status = new StatusHub();
  private conn: Connection | undefined;
  /** A connection still saying hello; dropped by close(). */
  private attempt: Connection | undefined;
  private creds: { sessionId: string; secret: string } | undefined;
  private epoch = 0;
  private welcome: WelcomeReply | undefined;
  private safety: SafetyDeadline | undefined;
  private stopSafety: (() => void) | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private watchdog: ReturnType<typeof setTimeout> | undefined;
  private lastFrameAt = 0;
  private readonly inflight = new Map<number, Pending>();
  private outbox: Pending[] = [];
  private nextRef = 1;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  /** No further session will be opened (newSessionOnExpiry off, or a fatal hello refusal). */
  private stopped = false;
  private wake: (() => void) | undefined;
  private webSocket: WebSocketConstructor | undefined;

  constructor(
    private readonly url: string,
    private readonly opts: ResolvedOptions,
    private readonly hooks: SessionHooks,
    readonly clock: Clock = systemClock,
  ) {}

  get connected(): boolean {
    return this.conn !== undefined;
  }

  get sessionId(): string | undefined {
    return this.creds?.sessionId;
  }

  /** The session TTL the broker granted (after clamping). */
  get ttlMs(): number {
    return this.welcome?.ttlMs ?? this.opts.ttlMs;
  }

  /** The local safety deadline of the session, while there is one. */
  get deadline(): SafetyDeadline | undefined {
    return this.safety;
  }

  /** Runs the safety-deadline expiry now if the deadline has passed and its timer has not fired yet. */
  checkDeadline(): void {
    if (this.safety && this.stopSafety && this.safety.hasPassed(this.clock.now())) {
      this.stopSafety();
      this.onSafetyDeadline();
    }
  }

  /** Opens the first session; rejects (and the status becomes `closed`) if it fails. */
  async start(): Promise<void> {
    try {
      await this.openSession();
    } catch (error) {
      this.closing = true;
      this.status.set('closed', { error: error as Error });
      throw error;
    }
    void this.reconnectLoop();
  }

  /** Sends a request now, or queues it until the session is back. */
  call(body: RequestBody, opts: CallOptions): Call {
    let resolve!: (answer: Answer) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<Answer>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const p: Pending = {
      body,
      opts,
      epoch: this.epoch,
      ref: undefined,
      sentAt: undefined,
      sends: 0,
      timer: undefined,
      done: false,
      resolve,
      reject,
    };
    const call: Call = {
      promise,
      get queued() {
        return !p.done && p.ref === undefined;
      },
      withdraw: (error) => {
        if (p.done || p.ref !== undefined) return false;
        this.outbox = this.outbox.filter((x) => x !== p);
        this.settle(p, error);
        return true;
      },
    };
    if (this.closing && body.type !== 'bye') this.settle(p, closedError());
    else if (this.stopped || (opts.policy === 'sameSession' && !this.creds))
      this.settle(p, sessionGoneError());
    else if (this.conn) this.transmit(p);
    else if (opts.policy === 'never') this.settle(p, new LeasewireError('UNAVAILABLE', 'not connected'));
    else if (this.outbox.length >= this.opts.maxQueuedRequests) {
      this.settle(
        p,
        new LeasewireError('LIMIT_EXCEEDED', `more than ${this.opts.maxQueuedRequests} requests queued`, {
          limit: 'maxQueuedRequests',
          max: this.opts.maxQueuedRequests,
        }),
      );
    } else this.outbox.push(p);
    if (!p.done && opts.timeoutMs !== null) {
      const timeoutMs = opts.timeoutMs;
      p.timer = setTimeout(() => {
        this.outbox = this.outbox.filter((x) => x !== p);
        this.settle(p, new LeasewireError('UNAVAILABLE', `no reply within ${timeoutMs} ms`));
      }, timeoutMs);
    }
    return call;
  }

  /** Ends the session with `bye` (when connected), then closes everything. Idempotent. */
  close(): Promise<void> {
    this.closePromise ??= this.shutDown();
    return this.closePromise;
  }

  // ---- connecting ----

  private async reconnectLoop(): Promise<void> {
    let failures = 0;
    while (!this.closing && !this.stopped) {
      if (this.conn) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        continue;
      }
      await this.sleep(backoffDelayMs(failures, this.opts.reconnect));
      if (this.closing) return;
      try {
        await this.openSession();
        failures = 0;
      } catch (error) {
        if (this.closing) return;
        if (error instanceof LeasewireError) {
          if (this.creds && (error.code === 'SESSION_EXPIRED' || error.code === 'BAD_SECRET')) {
            this.endSession('expired', 'resume-refused', error);
            failures = 0;
            continue;
          }
          if (FATAL_HELLO_CODES.has(error.code)) {
            this.shutDownAfter(error);
            return;
          }
        }
        failures++;
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async openSession(): Promise<void> {
    const startedAt = this.clock.now().mono;
    this.webSocket ??= await resolveWebSocket(this.opts.WebSocket);
    const conn = await Connection.open(this.url, this.webSocket, this.opts.connectTimeoutMs);
    if (this.closing) {
      conn.close();
      throw closedError();
    }
    this.attempt = conn;
    try {
      const left = this.opts.connectTimeoutMs - (this.clock.now().mono - startedAt);
      await this.hello(conn, Math.max(1, Math.ceil(left)));
    } finally {
      this.attempt = undefined;
    }
  }

  /**
   * Says hello and, on welcome, adopts the connection synchronously inside the frame handler:
   * frames right behind the welcome (same TCP read) must already reach the session.
   */
  private hello(conn: Connection, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ref = this.nextRef++;
      const frame: HelloRequest = { type: 'hello', ref, version: PROTOCOL_VERSION, ttlMs: this.opts.ttlMs };
      if (this.opts.owner !== undefined) frame.owner = this.opts.owner;
      if (this.creds) {
        frame.sessionId = this.creds.sessionId;
        frame.secret = this.creds.secret;
      }
      const timer = setTimeout(() => {
        conn.terminate({
          code: CloseCodes.HELLO_TIMEOUT,
          reason: 'no welcome',
          error: new Error(`no welcome within ${timeoutMs} ms`),
        });
      }, timeoutMs);
      conn.onFrame = (f) => {
        if (f.type === 'welcome' && f.ref === ref) {
          clearTimeout(timer);
          if (this.closing) {
            conn.close();
            reject(closedError());
            return;
          }
          this.adopt(conn, f, sentAt);
          resolve();
        } else if (f.type === 'error') {
          clearTimeout(timer);
          reject(replyError(f));
          conn.close();
        }
      };
      conn.onClose = (info: CloseInfo) => {
        clearTimeout(timer);
        reject(
          info.error ??
            new Error(`the connection closed before welcome (${closeCodeName(info.code)} ${info.reason})`),
        );
      };
      const sentAt = this.clock.now();
      if (!conn.send(frame))
        conn.terminate({ code: CloseCodes.NORMAL, reason: 'socket closed before hello' });
    });
  }

  private adopt(conn: Connection, welcome: WelcomeReply, helloSentAt: Instant): void {
    const resumed = welcome.resumed && this.creds?.sessionId === welcome.sessionId;
    if (!resumed) this.epoch++;
    this.conn = conn;
    this.creds = { sessionId: welcome.sessionId, secret: welcome.secret };
    this.welcome = welcome;
    conn.onFrame = (f) => this.onFrame(conn, f);
    conn.onClose = (info) => this.onConnectionClosed(conn, info);
    // The broker heard the hello no earlier than it was sent: the session deadline is at least
    // helloSentAt + ttl on the broker's side.
    this.stopSafety?.();
    this.safety = new SafetyDeadline(welcome.ttlMs, helloSentAt, {
      clockDriftRate: this.opts.clockDriftRate,
      extraMs: this.opts.safetyMarginMs,
    });
    this.stopSafety = watchDeadline(this.safety, this.clock, () => this.onSafetyDeadline());
    this.lastFrameAt = this.clock.now().mono;
    this.startHeartbeat(welcome);
    this.hooks.sessionStarted(welcome, resumed);
    const queued = this.outbox;
    this.outbox = [];
    for (const p of queued) if (!p.done) this.transmit(p);
    this.status.set(resumed ? 'resumed' : 'connected');
  }

  private transmit(p: Pending): void {
    const conn = this.conn;
    if (!conn) return;
    if (p.opts.policy === 'sameSession' && p.epoch !== this.epoch) {
      this.settle(p, sessionGoneError());
      return;
    }
    let body = p.body;
    if (p.opts.beforeSend) {
      const next = p.opts.beforeSend(p.sends > 0);
      if (next instanceof Error) {
        this.settle(p, next);
        return;
      }
      body = next;
    }
    const ref = this.nextRef++;
    p.ref = ref;
    p.sentAt = this.clock.now();
    p.sends++;
    this.inflight.set(ref, p);
    conn.send({ ...body, ref } as Request);
  }

  private settle(p: Pending, result: Answer | Error): void {
    if (p.done) return;
    p.done = true;
    if (p.timer !== undefined) clearTimeout(p.timer);
    if (p.ref !== undefined && this.inflight.get(p.ref) === p) this.inflight.delete(p.ref);
    if (result instanceof Error) p.reject(result);
    else p.resolve(result);
  }

  // ---- a live connection ----

  private onFrame(conn: Connection, f: ServerFrame): void {
    if (conn !== this.conn) return;
    this.lastFrameAt = this.clock.now().mono;
    if (f.type === 'events' || f.type === 'lost') this.hooks.push(f);
    else if (f.type !== 'welcome' && f.ref !== undefined) {
      const p = this.inflight.get(f.ref);
      if (p?.sentAt) {
        // Any answer proves the broker heard this session no earlier than the request was sent,
        // except a SESSION_EXPIRED error, which says the opposite.
        if (!(f.type === 'error' && f.code === 'SESSION_EXPIRED')) this.safety?.noteAcked(p.sentAt);
        if (f.type === 'queued') p.opts.onQueued?.(f);
        else if (f.type === 'error') this.settle(p, replyError(f));
        else this.settle(p, { reply: f, sentAt: p.sentAt });
      }
    }
    this.hooks.afterFrame(f);
  }

  private startHeartbeat(welcome: WelcomeReply): void {
    this.stopHeartbeat();
    const intervalMs = Math.max(10, welcome.heartbeatIntervalMs || Math.floor(welcome.ttlMs / 3));
    // The broker answers every keepalive; two intervals without a single frame means it is gone.
    const deadAfterMs = 2 * intervalMs;
    this.heartbeat = setInterval(() => {
      if (this.conn)
        this.call({ type: 'keepalive' }, { policy: 'never', timeoutMs: null }).promise.catch(noop);
    }, intervalMs);
    const check = (): void => {
      this.watchdog = undefined;
      const conn = this.conn;
      if (!conn) return;
      const silentMs = this.clock.now().mono - this.lastFrameAt;
      if (silentMs >= deadAfterMs) {
        conn.terminate({ code: CloseCodes.HEARTBEAT_TIMEOUT, reason: 'no reply from the broker' });
        return;
      }
      this.watchdog = setTimeout(check, Math.ceil(deadAfterMs - silentMs));
    };
    this.watchdog = setTimeout(check, deadAfterMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.heartbeat = undefined;
    this.watchdog = undefined;
  }

  private onConnectionClosed(conn: Connection, info: CloseInfo): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    this.stopHeartbeat();
    // Requests that were in flight go back to the front of the queue, in send order.
    const requeue: Pending[] = [];
    for (const p of this.inflight.values()) {
      p.ref = undefined;
      if (p.opts.policy === 'never')
        this.settle(
          p,
          new LeasewireError('UNAVAILABLE', 'the connection was lost', {}, { cause: info.error }),
        );
      else requeue.push(p);
    }
    this.inflight.clear();
    this.outbox = [...requeue, ...this.outbox];
    this.hooks.connectionLost();
    if (!this.closing) {
      if (info.code === CloseCodes.SESSION_EXPIRED) this.endSession('expired', 'SESSION_EXPIRED');
      else if (info.code === CloseCodes.SESSION_TAKEN_OVER)
        this.endSession('taken-over', 'SESSION_TAKEN_OVER');
      else if (this.status.status === 'connected' || this.status.status === 'resumed') {
        const detail: { reason: string; error?: Error } = { reason: describeClose(info.code) };
        if (info.error) detail.error = info.error;
        this.status.set('suspended', detail);
      }
    }
    this.wake?.();
  }

  private onSafetyDeadline(): void {
    this.stopSafety = undefined;
    this.hooks.sessionMaybeExpired();
    this.status.set('expired', { reason: 'safety-deadline' });
    // Connected but unanswered for a whole TTL: the socket is as good as dead.
    this.conn?.terminate({ code: CloseCodes.HEARTBEAT_TIMEOUT, reason: 'no ack within the session TTL' });
  }

  private endSession(reason: 'expired' | 'taken-over', detail: string, error?: Error): void {
    this.creds = undefined;
    this.stopSafety?.();
    this.stopSafety = undefined;
    this.safety = undefined;
    if (!this.opts.reconnect.newSessionOnExpiry) this.stopped = true;
    for (const p of [...this.outbox, ...this.inflight.values()]) {
      if (this.stopped || p.opts.policy === 'sameSession') this.settle(p, sessionGoneError());
    }
    this.outbox = this.outbox.filter((p) => !p.done);
    this.hooks.sessionEnded(reason);
    const change: { reason: string; error?: Error } = { reason: detail };
    if (error) change.error = error;
    this.status.set('expired', change);
  }

  // ---- closing ----

  private async shutDown(): Promise<void> {
    this.closing = true;
    this.wake?.();
    let confirmed = false;
    if (this.conn) {
      try {
        await this.call({ type: 'bye' }, { policy: 'never', timeoutMs: this.opts.closeTimeoutMs }).promise;
        confirmed = true;
      } catch {
        // Not confirmed: the leases are treated as lost, the broker expires the session on its own.
      }
    }
    this.finish(confirmed);
    this.status.set('closed');
  }

  private shutDownAfter(error: Error): void {
    this.closing = true;
    this.closePromise ??= Promise.resolve();
    this.finish(false);
    this.status.set('closed', { error });
  }

  private finish(byeConfirmed: boolean): void {
    this.stopHeartbeat();
    this.stopSafety?.();
    this.stopSafety = undefined;
    this.attempt?.terminate({ code: CloseCodes.NORMAL, reason: 'client closed' });
    const pending = [...this.outbox, ...this.inflight.values()];
    this.outbox = [];
    for (const p of pending) this.settle(p, closedError());
    const conn = this.conn;
    this.conn = undefined;
    conn?.close(CloseCodes.NORMAL, 'client closed');
    this.hooks.clientClosed(byeConfirmed);
  }
}

/** A close-code name for status reasons; 1006 is what a dropped TCP connection reports. */
function describeClose(code: number): string {
  if (code === 1006) return 'ABNORMAL_CLOSURE';
  if (code === 1005) return 'NO_STATUS';
  return closeCodeName(code);
}

function noop(): void {}
