import { LeasewireError } from '../shared/errors.js';
import type { EndReason, LeaseInfo } from '../shared/frames.js';
import type { Instant } from './clock.js';
import { type MetaInput, metaBytes, metaText } from './meta.js';
import type { ResolvedOptions } from './options.js';
import { SafetyDeadline, watchDeadline } from './safety-deadline.js';
import type { Answer, RequestBody, Session } from './session.js';

type RenewBody = Extract<RequestBody, { type: 'renew' }>;
type SetMetaBody = Extract<RequestBody, { type: 'setMeta' }>;

/**
 * Why a lease's signal aborted:
 * - `expired`: the session expired, or may have (no ack within the local safety deadline);
 * - `lease-ttl`: the lease's own `ttlMs` passed without an acknowledged renew;
 * - `revoked`: the broker said the lease ended (a `lost` push, or NOT_HOLDER/STALE_TOKEN on an operation);
 * - `missing-on-resume`: the session was resumed but the broker no longer lists the lease;
 * - `taken-over`: another connection took the session over;
 * - `closed`: the client closed without the broker confirming the session ended.
 */
export type LeaseLossReason =
  | 'expired'
  | 'lease-ttl'
  | 'revoked'
  | 'missing-on-resume'
  | 'taken-over'
  | 'closed';

/**
 * The abort reason of a lost lease's signal.
 *
 * @example
 * lease.signal.addEventListener('abort', () => {
 *   const e = lease.signal.reason as LeaseLostError;
 *   console.warn(`lost ${e.lease} (token ${e.token}): ${e.reason}`);
 * });
 */
export class LeaseLostError extends Error {
  /** The lease name. */
  readonly lease: string;
  readonly token: number;
  readonly reason: LeaseLossReason;
  /** The broker's reason, when it reported the end itself. */
  readonly endReason: EndReason | undefined;

  constructor(lease: string, token: number, reason: LeaseLossReason, endReason?: EndReason) {
    super(
      `lease ${JSON.stringify(lease)} (token ${token}) lost: ${reason}${endReason ? ` (${endReason})` : ''}`,
    );
    this.name = 'LeaseLostError';
    this.lease = lease;
    this.token = token;
    this.reason = reason;
    this.endReason = endReason;
  }
}

/** What a lease needs from its client. */
export interface LeaseHost {
  readonly session: Session;
  readonly options: ResolvedOptions;
  /** The lease stopped being held; `abandoned` means the broker may still think it is. */
  leaseEnded(lease: Lease, abandoned: boolean): void;
  /** Aborts every lease now if the session's safety deadline has passed (a timer may not have fired yet). */
  checkSessionDeadline(): void;
}

type LeaseState = 'held' | 'releasing' | 'released' | 'lost';

/**
 * A lease this client holds, from {@link Client.acquire}. Pass `token` to whatever the lease
 * protects (fencing): a holder paused past its lease can still act late, and only a resource
 * that rejects smaller tokens can tell.
 *
 * `signal` aborts (with a {@link LeaseLostError}) as soon as the lease is lost *or may be lost*:
 * a `lost` push, session expiry, the local safety deadline, or the lease's own `ttlMs` passing
 * without an acknowledged renew. It never aborts after a clean `release()`.
 *
 * @example
 * const lease = await client.acquire('jobs/nightly', { ttlMs: 30_000, autoRenew: true });
 * try {
 *   await runJob({ fencingToken: lease.token, signal: lease.signal });
 * } finally {
 *   await lease.release();
 * }
 */
export class Lease {
  readonly name: string;
  /** Fencing token: strictly greater than that of every earlier grant of this name. */
  readonly token: number;
  readonly owner: string;
  readonly sessionId: string;
  /** The lease's own TTL (clamped by the broker), if it was acquired with one. */
  readonly ttlMs: number | undefined;
  #meta: Uint8Array | undefined;
  #state: LeaseState = 'held';
  readonly #controller = new AbortController();
  readonly #host: LeaseHost;
  #ttl: SafetyDeadline | undefined;
  #stopTtl: (() => void) | undefined;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  #releasing: Promise<void> | undefined;

  /** Leases come from `client.acquire`; this constructor is internal. */
  constructor(host: LeaseHost, info: LeaseInfo) {
    this.#host = host;
    this.name = info.name;
    this.token = info.token;
    this.owner = info.owner;
    this.sessionId = info.sessionId;
    this.ttlMs = info.ttlMs;
    this.#meta = info.meta;
  }

  /** Aborts when the lease is lost or may be lost; `signal.reason` is a {@link LeaseLostError}. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The metadata as bytes. */
  get meta(): Uint8Array | undefined {
    return this.#meta;
  }

  /** The metadata decoded as UTF-8. */
  get metaText(): string | undefined {
    return metaText(this.#meta);
  }

  /** True until the lease is released or lost. */
  get held(): boolean {
    return this.#state === 'held';
  }

  /**
   * Re-checks the local deadlines right now (timers can be late, e.g. after the process was
   * paused) and throws the signal's reason if the lease is lost. Call it just before acting.
   *
   * @example
   * lease.throwIfLost();
   * await db.write(row, { fencingToken: lease.token });
   */
  throwIfLost(): void {
    this.#host.checkSessionDeadline();
    if (this.#state === 'held' && this.#ttl?.hasPassed(this.#host.session.clock.now()))
      this.lose('lease-ttl', { abandoned: true });
    this.#controller.signal.throwIfAborted();
    if (this.#state === 'released') throw new Error(`lease ${JSON.stringify(this.name)} was released`);
  }

  /**
   * Gives the lease back; the next waiter gets it at once. Resolves without a round trip if the
   * lease is already released or lost, so it is safe in `finally`. Does not abort the signal.
   */
  release(): Promise<void> {
    if (this.#state === 'released' || this.#state === 'lost') return Promise.resolve();
    if (this.#releasing) return this.#releasing;
    this.#state = 'releasing';
    const { session, options } = this.#host;
    this.#releasing = session
      .call(
        { type: 'release', name: this.name, token: this.token },
        { policy: 'sameSession', timeoutMs: options.requestTimeoutMs },
      )
      .promise.then(
        () => this.#end('released', false),
        (error: unknown) => {
          // Not held any more (taken back, or the session is gone): there is nothing to release.
          if (this.#state !== 'releasing' || isGoneError(error)) {
            this.#end('released', false);
            return;
          }
          this.#state = 'held';
          this.#releasing = undefined;
          throw error;
        },
      );
    return this.#releasing;
  }

  /**
   * Proves the holder is alive and restarts the lease's own `ttlMs` on the broker; the local
   * deadline then moves to `send time + ttlMs - margin`.
   */
  async renew(): Promise<void> {
    const { sentAt } = await this.#request({ type: 'renew', name: this.name, token: this.token });
    this.#ttl?.noteAcked(sentAt);
  }

  /** Replaces the metadata (`null` removes it); watchers see an `updated` event. */
  async setMeta(meta: MetaInput | null): Promise<void> {
    const bytes = meta === null ? null : metaBytes(meta);
    await this.#request({ type: 'setMeta', name: this.name, token: this.token, meta: bytes });
    this.#meta = bytes ?? undefined;
  }

  // ---- internal, driven by the client ----

  /** Starts the local lease-TTL deadline from `basis`, the send time of the request that (re)started it. */
  armTtl(basis: Instant, autoRenew: boolean): void {
    if (this.ttlMs === undefined || this.#state !== 'held') return;
    const { session, options } = this.#host;
    this.#ttl = new SafetyDeadline(this.ttlMs, basis, {
      clockDriftRate: options.clockDriftRate,
      extraMs: options.safetyMarginMs,
    });
    this.#stopTtl?.();
    this.#stopTtl = watchDeadline(this.#ttl, session.clock, () =>
      this.lose('lease-ttl', { abandoned: true }),
    );
    if (autoRenew && this.#renewTimer === undefined) {
      this.#renewTimer = setInterval(
        () => {
          if (this.#state === 'held' && session.connected) this.renew().catch(noop);
        },
        Math.max(10, Math.floor(this.ttlMs / 3)),
      );
    }
  }

  /**
   * The lease is lost (or may be): abort the signal. A lease being released just ends quietly.
   * `abandoned`: the broker may still list it for this session (local deadline), so the client
   * releases it once it can.
   */
  lose(reason: LeaseLossReason, opts: { abandoned?: boolean; endReason?: EndReason } = {}): void {
    if (this.#state === 'released' || this.#state === 'lost') return;
    if (this.#state === 'releasing') {
      this.#end('released', opts.abandoned ?? false);
      return;
    }
    this.#end('lost', opts.abandoned ?? false);
    this.#controller.abort(new LeaseLostError(this.name, this.token, reason, opts.endReason));
  }

  /** The broker confirmed the session ended cleanly (bye): released, signal untouched. */
  markReleased(): void {
    if (this.#state === 'held' || this.#state === 'releasing') this.#end('released', false);
  }

  #end(state: 'released' | 'lost', abandoned: boolean): void {
    this.#state = state;
    this.#stopTtl?.();
    this.#stopTtl = undefined;
    if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
    this.#host.leaseEnded(this, abandoned);
  }

  /**
   * A request about this lease. Rejects with the loss reason as soon as the lease is lost, even
   * if the request is still queued or in flight: a renew answered after the loss proves nothing.
   */
  #request(body: RenewBody | SetMetaBody): Promise<Answer> {
    const signal = this.#controller.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#state !== 'held')
      return Promise.reject(new Error(`lease ${JSON.stringify(this.name)} is no longer held`));
    const { session, options } = this.#host;
    const call = session.call(body, { policy: 'sameSession', timeoutMs: options.requestTimeoutMs });
    return new Promise<Answer>((resolve, reject) => {
      const onLoss = (): void => {
        call.withdraw(signal.reason);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onLoss, { once: true });
      call.promise.then(
        (answer) => {
          signal.removeEventListener('abort', onLoss);
          if (signal.aborted) reject(signal.reason);
          else resolve(answer);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onLoss);
          this.#onOpError(error);
          reject(signal.aborted ? signal.reason : error);
        },
      );
    });
  }

  #onOpError(error: unknown): void {
    if (!(error instanceof LeasewireError)) return;
    if (error.code === 'NOT_HOLDER' || error.code === 'STALE_TOKEN') this.lose('revoked');
    else if (error.code === 'SESSION_EXPIRED') this.lose('expired');
  }
}

function isGoneError(error: unknown): boolean {
  return (
    error instanceof LeasewireError &&
    (error.code === 'NOT_HOLDER' || error.code === 'STALE_TOKEN' || error.code === 'SESSION_EXPIRED')
  );
}

function noop(): void {}
