import type { WebSocket } from 'ws';
import { CloseCodes } from '../../shared/close-codes.js';
import { decodeFrame, encodeEventsFrame, encodeFrame, FrameDecodeError } from '../../shared/codec.js';
import { type ErrorDetails, LeasewireError } from '../../shared/errors.js';
import type {
  AcquireRequest,
  HelloRequest,
  LeaseEvent,
  Request,
  ServerFrame,
  WatchRequest,
  WelcomeReply,
} from '../../shared/frames.js';
import { peekRef, validateRequest } from '../../shared/validate.js';
import { PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '../../shared/version.js';
import { heartbeatIntervalFor } from '../config.js';
import type { SessionNotice } from '../storage/lease-store.js';
import type { BrokerContext } from './broker-context.js';
import type { EncodedEvent } from './encoded-event.js';
import type { Heartbeating } from './heartbeat-wheel.js';
import { RateLimiter } from './rate-limiter.js';
import type { EventSink, WatchSubscription } from './watch-hub.js';

/** At most this many events in one `events` frame, so a backlog does not become one huge frame. */
const MAX_EVENTS_PER_FRAME = 1024;

interface PendingWait {
  ref: number;
  /** Set once granted or ended: a late `queued` reply must then not be sent. */
  settled: boolean;
  /** True while the queued wait holds a maxPendingRequests slot. */
  counted: boolean;
}

/**
 * One WebSocket connection: the hello handshake, request dispatch, replies, the outgoing event
 * queue, heartbeats. It never lets an exception escape into `ws` (an uncaught throw in a message
 * handler would take the whole broker down). Rule ids (P…, W…) refer to docs/PROTOCOL.md.
 */
export class Connection implements EventSink, Heartbeating {
  sessionId: string | undefined;
  private state: 'hello' | 'welcoming' | 'open' | 'closed' = 'hello';
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private lastHeard: number;
  private heartbeatIntervalMs = 0;
  private readonly limiter: RateLimiter;
  private pending = 0;
  private readonly waits = new Map<number, PendingWait>();
  private readonly watches = new Map<number, WatchSubscription>();
  private nextWatchId = 1;
  // Outgoing events: coalesced per connection and flushed once per event-loop turn.
  private queue: EncodedEvent[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  /** >0 while a watch is being set up: events are held so none overtakes its reply (W3). */
  private paused = 0;
  lastEnqueuedRevision = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: BrokerContext,
    readonly remote: string,
  ) {
    this.lastHeard = ctx.clock.now().mono;
    this.limiter = new RateLimiter(ctx.options.maxRequestsPerSecond, this.lastHeard);
    ws.on('message', (data, isBinary) => {
      try {
        this.onFrame(data, isBinary);
      } catch (err) {
        this.ctx.log.error('frame handler failed', { error: String(err), remote: this.remote });
      }
    });
    ws.on('pong', () => this.heard());
    ws.on('ping', () => this.heard());
    ws.on('error', (err) => this.ctx.log.debug('socket error', { error: err.message, remote: this.remote }));
    ws.on('close', (code) => this.onClose(code));
    this.helloTimer = setTimeout(() => {
      this.closeWith(CloseCodes.HELLO_TIMEOUT, 'no hello within helloTimeoutMs');
    }, ctx.options.helloTimeoutMs);
  }

  get isOpen(): boolean {
    return this.state !== 'closed';
  }

  // ---- incoming ----

  /** Returns false when the session this connection speaks for has already expired. */
  private heard(): boolean {
    this.lastHeard = this.ctx.clock.now().mono;
    // S2: a pong, a ping or any frame refreshes the session.
    if (this.sessionId && this.state === 'open') return this.ctx.store.touch(this.sessionId);
    return true;
  }

  private onFrame(data: unknown, isBinary: boolean): void {
    if (this.state === 'closed') return;
    const alive = this.heard();
    if (!isBinary) {
      this.sendError(undefined, 'BAD_FRAME', 'frames must be binary msgpack, not text');
      this.closeWith(CloseCodes.UNSUPPORTED_DATA, 'text frame');
      return;
    }
    const bytes = toBytes(data);
    let decoded: unknown;
    try {
      decoded = decodeFrame(bytes);
    } catch (err) {
      // P3: a frame we cannot read leaves us unsure where the peer is: say why, then close.
      const msg = err instanceof FrameDecodeError ? err.message : 'undecodable frame';
      this.sendError(undefined, 'BAD_FRAME', msg);
      this.closeWith(CloseCodes.BAD_FRAME, 'undecodable frame');
      return;
    }
    if (!alive) {
      // S4: the deadline passed before this frame arrived. Nothing may be answered as if the
      // session lived (the client would count any answer, even a schema error, as an
      // acknowledgement), even while the expiry itself is still on its way to the journal.
      this.sendError(peekRef(decoded), 'SESSION_EXPIRED', 'the session expired before this request arrived');
      this.closeWith(CloseCodes.SESSION_EXPIRED, 'session expired');
      return;
    }
    let req: Request;
    try {
      req = validateRequest(decoded, { maxMetaBytes: this.ctx.options.maxMetaBytes });
    } catch (err) {
      const e = asLeasewireError(err);
      this.ctx.metrics.frameIn('invalid');
      this.sendError(peekRef(decoded), e.code, e.message, e.details);
      return;
    }
    this.ctx.metrics.frameIn(req.type);
    if (this.state === 'hello') {
      if (req.type !== 'hello') {
        this.sendError(req.ref, 'HELLO_REQUIRED', 'the first frame must be hello');
        this.closeWith(CloseCodes.HELLO_REFUSED, 'hello required');
        return;
      }
      this.state = 'welcoming';
      this.track(req, this.hello(req));
      return;
    }
    if (this.state === 'welcoming') {
      this.sendError(req.ref, 'HELLO_REQUIRED', 'wait for welcome before sending requests');
      return;
    }
    if (req.type === 'hello') {
      this.sendError(req.ref, 'ALREADY_HELLO', 'hello was already sent on this connection');
      return;
    }
    const retryAfterMs = this.limiter.take(this.lastHeard);
    if (retryAfterMs > 0) {
      this.sendError(req.ref, 'RATE_LIMITED', 'too many requests', { retryAfterMs });
      return;
    }
    if (this.pending >= this.ctx.options.maxPendingRequests) {
      this.sendError(req.ref, 'LIMIT_EXCEEDED', 'too many requests in flight', {
        limit: 'maxPendingRequests',
        max: this.ctx.options.maxPendingRequests,
      });
      return;
    }
    this.track(req, this.dispatch(req));
  }

  /** Counts a request in flight and turns any failure into an error reply with its ref. */
  private track(req: Request, work: Promise<void>): void {
    const started = performance.now();
    this.pending++;
    work.then(
      () => {
        this.pending--;
        this.ctx.metrics.requestDone(req.type, performance.now() - started);
      },
      (err: unknown) => {
        this.pending--;
        const e = asLeasewireError(err);
        if (e.code === 'INTERNAL') {
          this.ctx.log.error('request failed', {
            type: req.type,
            error: String(err),
            cause: String(e.cause ?? ''),
          });
        }
        this.sendError(req.ref, e.code, e.message, e.details);
        if (req.type === 'hello') this.closeWith(CloseCodes.HELLO_REFUSED, e.code);
      },
    );
  }

  private dispatch(req: Exclude<Request, HelloRequest>): Promise<void> {
    const store = this.ctx.store;
    const sid = this.sessionId as string;
    switch (req.type) {
      case 'acquire':
        return this.acquire(sid, req);
      case 'release':
        return store.release(sid, req.name, req.token).then((revision) => {
          this.send({ type: 'ok', ref: req.ref, revision });
        });
      case 'renew':
        return store.renew(sid, req.name, req.token).then((lease) => {
          this.send({ type: 'ok', ref: req.ref, revision: lease.revision });
        });
      case 'setMeta':
        return store.setMeta(sid, req.name, req.token, req.meta).then((lease) => {
          this.send({ type: 'ok', ref: req.ref, revision: lease.revision });
        });
      case 'cancel':
        return store.cancelWait(sid, req.name).then(() => {
          this.send({ type: 'ok', ref: req.ref, revision: store.revision });
        });
      case 'get':
        return store.get(req.name).then(({ lease, revision }) => {
          this.send({ type: 'lease', ref: req.ref, lease, revision });
        });
      case 'list':
        return store.list(req.prefix).then(({ leases, revision }) => {
          this.send({ type: 'leases', ref: req.ref, leases, revision });
        });
      case 'watch':
        return this.watch(req);
      case 'unwatch': {
        const sub = this.watches.get(req.watchId);
        if (!sub)
          return Promise.reject(
            new LeasewireError('NOT_FOUND', `no watch ${req.watchId} on this connection`),
          );
        this.ctx.hub.remove(sub);
        this.watches.delete(req.watchId);
        this.send({ type: 'ok', ref: req.ref, revision: store.revision });
        return Promise.resolve();
      }
      case 'keepalive':
        this.send({ type: 'ok', ref: req.ref, revision: store.revision });
        return Promise.resolve();
      case 'bye':
        return this.bye(sid, req.ref);
    }
  }

  private async hello(req: HelloRequest): Promise<void> {
    clearTimeout(this.helloTimer);
    const { options, store } = this.ctx;
    if (!SUPPORTED_PROTOCOL_VERSIONS.includes(req.version)) {
      throw new LeasewireError(
        'UNSUPPORTED_VERSION',
        `protocol version ${req.version} is not supported; this broker speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`,
      );
    }
    let welcome: WelcomeReply;
    if (req.sessionId !== undefined && req.secret !== undefined) {
      const { session, leases } = await store.resumeSession(req.sessionId, req.secret);
      welcome = this.welcome(req.ref, session.id, req.secret, session.ttlMs, true, leases);
    } else {
      if (store.stats.sessions >= options.maxSessions) {
        throw new LeasewireError('LIMIT_EXCEEDED', 'the broker has reached maxSessions', {
          limit: 'maxSessions',
          max: options.maxSessions,
        });
      }
      const ttlMs = Math.min(options.maxTtlMs, Math.max(options.minTtlMs, req.ttlMs ?? options.defaultTtlMs));
      const { session, secret } = await store.openSession({ ttlMs, owner: req.owner ?? '' });
      welcome = this.welcome(req.ref, session.id, secret, session.ttlMs, false, []);
    }
    if (this.state === 'closed') {
      // The socket went away during the handshake: the session lives on, detached, until its deadline.
      void store.detachSession(welcome.sessionId).catch(() => {});
      return;
    }
    this.sessionId = welcome.sessionId;
    this.state = 'open';
    this.heartbeatIntervalMs = welcome.heartbeatIntervalMs;
    this.ctx.attach(this, welcome.sessionId);
    this.send(welcome);
  }

  private welcome(
    ref: number,
    sessionId: string,
    secret: string,
    ttlMs: number,
    resumed: boolean,
    leases: WelcomeReply['leases'],
  ): WelcomeReply {
    return {
      type: 'welcome',
      ref,
      version: PROTOCOL_VERSION,
      sessionId,
      secret,
      ttlMs,
      heartbeatIntervalMs: heartbeatIntervalFor(ttlMs),
      revision: this.ctx.store.revision,
      epoch: this.ctx.store.epoch,
      resumed,
      leases,
      serverTime: Date.now(),
    };
  }

  private async acquire(sid: string, req: AcquireRequest): Promise<void> {
    const waitId = this.ctx.nextWaitId();
    // Registered before the call: with a durable store the grant notice can overtake the reply.
    const wait: PendingWait = { ref: req.ref, settled: false, counted: false };
    if (req.wait) this.waits.set(waitId, wait);
    let result: Awaited<ReturnType<typeof this.ctx.store.acquire>>;
    try {
      const params: Parameters<typeof this.ctx.store.acquire>[2] = { waitId };
      if (req.wait !== undefined) params.wait = req.wait;
      if (req.waitTimeoutMs !== undefined) params.waitTimeoutMs = req.waitTimeoutMs;
      if (req.meta !== undefined) params.meta = req.meta;
      if (req.ttlMs !== undefined) params.ttlMs = req.ttlMs;
      result = await this.ctx.store.acquire(sid, req.name, params);
    } catch (err) {
      this.waits.delete(waitId);
      throw err;
    }
    switch (result.kind) {
      case 'granted':
        this.waits.delete(waitId);
        this.send({ type: 'granted', ref: req.ref, lease: result.lease });
        return;
      case 'held':
        this.waits.delete(waitId);
        throw new LeasewireError(
          'LEASE_HELD',
          `${req.name} is held by ${result.holder.owner || result.holder.sessionId}`,
          {
            holder: result.holder,
          },
        );
      case 'lockDelay':
        this.waits.delete(waitId);
        throw new LeasewireError('LOCK_DELAY', `${req.name} is in lock-delay after an expiry`, {
          retryAfterMs: result.retryAfterMs,
        });
      case 'queued':
        if (!wait.settled) {
          this.send({ type: 'queued', ref: req.ref, name: req.name, position: result.position });
          // The request stays in flight until granted or ended; counted against maxPendingRequests.
          wait.counted = true;
          this.pending++;
        }
        return;
    }
  }

  private async watch(req: WatchRequest): Promise<void> {
    if (this.watches.size >= this.ctx.options.maxWatchesPerSession) {
      throw new LeasewireError(
        'LIMIT_EXCEEDED',
        `at most ${this.ctx.options.maxWatchesPerSession} watches per session`,
        {
          limit: 'maxWatchesPerSession',
          max: this.ctx.options.maxWatchesPerSession,
        },
      );
    }
    const watchId = this.nextWatchId++;
    // W3: subscribe first and hold this connection's events, then read the snapshot or history;
    // the reply goes out before anything that happened after the read.
    this.paused++;
    const sub = this.ctx.hub.add(req.prefix, this);
    // Counted from now, not after the read: pipelined watches arrive before any read resolves,
    // and must each see the ones set up before them against maxWatchesPerSession.
    this.watches.set(watchId, sub);
    try {
      if (req.fromRevision === undefined) {
        const { leases, revision } = await this.ctx.store.list(req.prefix);
        this.send({ type: 'watching', ref: req.ref, watchId, revision, snapshot: leases });
      } else {
        const revision = this.ctx.store.revision;
        const { events, oldestRevision } = await this.ctx.store.eventsSince(req.fromRevision);
        if (!events) {
          throw new LeasewireError('COMPACTED', `revision ${req.fromRevision} is no longer in the history`, {
            oldestRevision,
          });
        }
        const matching: LeaseEvent[] = [];
        for (const e of events) if (e.name.startsWith(req.prefix) && e.revision <= revision) matching.push(e);
        this.send({ type: 'watching', ref: req.ref, watchId, revision, events: matching });
      }
    } catch (err) {
      this.ctx.hub.remove(sub);
      this.watches.delete(watchId);
      throw err;
    } finally {
      this.paused--;
      if (this.paused === 0 && this.queue.length > 0) this.scheduleFlush();
    }
    if (this.state === 'closed') this.ctx.hub.remove(sub);
  }

  private async bye(sid: string, ref: number): Promise<void> {
    this.ctx.detach(this, { closing: true });
    try {
      await this.ctx.store.closeSession(sid);
      this.send({ type: 'ok', ref, revision: this.ctx.store.revision });
      this.closeWith(CloseCodes.NORMAL, 'session ended');
    } catch (err) {
      // The session could not be ended (store unavailable, shutting down): it stays, detached,
      // until its deadline. Say why, and do not leave a connection that speaks for no session.
      const e = asLeasewireError(err);
      // S5: the waits were this connection's; they end with it even though the session lives on.
      void this.ctx.store.detachSession(sid).catch(() => {});
      this.sendError(ref, e.code, e.message, e.details);
      this.closeWith(e.code === 'SHUTTING_DOWN' ? CloseCodes.GOING_AWAY : CloseCodes.INTERNAL_ERROR, e.code);
    }
  }

  // ---- notices from the store ----

  onNotice(n: SessionNotice): void {
    switch (n.type) {
      case 'waitGranted': {
        const w = this.waits.get(n.waitId);
        if (!w) return;
        this.settleWait(n.waitId, w);
        this.send({ type: 'granted', ref: w.ref, lease: n.lease });
        return;
      }
      case 'waitEnded': {
        const w = this.waits.get(n.waitId);
        if (!w) return;
        this.settleWait(n.waitId, w);
        const message =
          n.code === 'WAIT_TIMEOUT' ? 'not granted within waitTimeoutMs' : `wait ended: ${n.code}`;
        this.sendError(w.ref, n.code, message);
        return;
      }
      case 'leaseLost':
        this.send({ type: 'lost', name: n.name, token: n.token, reason: n.reason });
        return;
      case 'sessionEnded':
        if (n.reason === 'expired') this.closeWith(CloseCodes.SESSION_EXPIRED, 'session expired');
        // Ended from elsewhere (HTTP DELETE): this connection no longer speaks for a session.
        else this.closeWith(CloseCodes.SESSION_ENDED, 'session ended');
        return;
    }
  }

  private settleWait(waitId: number, w: PendingWait): void {
    this.waits.delete(waitId);
    w.settled = true;
    if (w.counted) {
      w.counted = false;
      this.pending--;
    }
  }

  // ---- outgoing ----

  send(frame: ServerFrame): void {
    if (this.state === 'closed' || this.ws.readyState !== this.ws.OPEN) return;
    // Frames leave in the order they were produced: queued events first, unless a watch set-up holds them.
    if (this.queue.length > 0 && this.paused === 0) this.flush();
    this.write(encodeFrame(frame));
  }

  sendError(
    ref: number | undefined,
    code: LeasewireError['code'],
    message: string,
    details?: ErrorDetails,
  ): void {
    this.ctx.metrics.errorOut(code);
    const frame: ServerFrame = { type: 'error', code, message };
    if (ref !== undefined) frame.ref = ref;
    if (details && Object.keys(details).length > 0) frame.details = { ...details };
    this.send(frame);
  }

  enqueueEvent(event: EncodedEvent): void {
    if (this.state === 'closed' || event.revision <= this.lastEnqueuedRevision) return;
    this.lastEnqueuedRevision = event.revision;
    this.queue.push(event);
    this.queuedBytes += event.bytes.length;
    if (this.queuedBytes + this.ws.bufferedAmount > this.ctx.options.maxBufferedBytes) {
      this.closeWith(CloseCodes.SLOW_CONSUMER, 'too far behind on events');
      return;
    }
    if (this.paused === 0) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.paused === 0) this.flush();
    });
  }

  private flush(): void {
    const queue = this.queue;
    if (queue.length === 0 || this.state === 'closed') return;
    this.queue = [];
    this.queuedBytes = 0;
    if (queue.length === 1) {
      this.write((queue[0] as EncodedEvent).singleFrame);
      return;
    }
    for (let i = 0; i < queue.length; i += MAX_EVENTS_PER_FRAME) {
      this.write(encodeEventsFrame(queue.slice(i, i + MAX_EVENTS_PER_FRAME).map((e) => e.bytes)));
    }
  }

  private write(bytes: Uint8Array): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(bytes, { binary: true });
    // W6: one slow reader must not grow the broker's memory without bound.
    if (this.ws.bufferedAmount > this.ctx.options.maxBufferedBytes) {
      this.closeWith(CloseCodes.SLOW_CONSUMER, 'too far behind on outgoing frames');
    }
  }

  // ---- heartbeats and closing ----

  heartbeat(nowMs: number): number | undefined {
    if (this.state !== 'open') return undefined;
    // Silent for more than two intervals: the socket is dead to us (half-open TCP). The session
    // itself lives on until its deadline; the client can resume on a new connection.
    if (nowMs - this.lastHeard > 2 * this.heartbeatIntervalMs + 100) {
      this.ctx.metrics.heartbeatMissed();
      this.ctx.log.debug('heartbeat timeout', { session: this.sessionId, remote: this.remote });
      this.closeWith(CloseCodes.HEARTBEAT_TIMEOUT, 'no pong');
      // The peer is probably gone and will not finish the close handshake: do not wait 30 s for it.
      setTimeout(() => this.ws.terminate(), 1_000).unref();
      return undefined;
    }
    try {
      this.ws.ping();
    } catch {
      return undefined;
    }
    return this.heartbeatIntervalMs;
  }

  get intervalMs(): number {
    return this.heartbeatIntervalMs;
  }

  /** Closes with a code and a reason; `terminate` drops the TCP connection without a handshake. */
  closeWith(code: number, reason: string, terminate = false): void {
    if (this.state === 'closed') return;
    this.flushIfPossible();
    try {
      if (terminate) this.ws.terminate();
      else this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
    this.markClosed(code);
  }

  private flushIfPossible(): void {
    if (this.queue.length > 0 && this.paused === 0) this.flush();
  }

  private onClose(code: number): void {
    this.markClosed(code);
  }

  private markClosed(code: number): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    for (const sub of this.watches.values()) this.ctx.hub.remove(sub);
    this.watches.clear();
    this.waits.clear();
    this.queue = [];
    this.ctx.metrics.connectionClosed(code);
    this.ctx.detach(this, { closing: false });
  }
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]);
  return new Uint8Array(0);
}

function asLeasewireError(err: unknown): LeasewireError {
  if (err instanceof LeasewireError) return err;
  return new LeasewireError('INTERNAL', 'internal error; the request had no effect', {}, { cause: err });
}
