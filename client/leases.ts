import { LeasewireError } from '../shared/errors.js';
import type { AcquireRequest, HeldLease, LeaseInfo, LostPush } from '../shared/frames.js';
import { nameProblem } from '../shared/names.js';
import { Lease, type LeaseHost, type LeaseLossReason } from './lease.js';
import { type MetaInput, metaBytes } from './meta.js';
import type { ResolvedOptions } from './options.js';
import type { Session } from './session.js';

/** Options of {@link Client.acquire} and {@link Client.tryAcquire}. */
export interface AcquireOptions {
  /** Queue behind the current holder (default for `acquire`); `tryAcquire` never waits. */
  wait?: boolean;
  /** With `wait`: give up after this long with WAIT_TIMEOUT. Counts across reconnects. */
  waitTimeoutMs?: number;
  /** Shown to others in `get`, `list` and watch events; a string is sent as UTF-8. At most 1 KiB. */
  meta?: MetaInput;
  /**
   * A hard bound on holding time: the lease ends unless renewed within `ttlMs` (the broker
   * clamps it, at least 500 ms by default). Not renewed automatically unless `autoRenew`.
   */
  ttlMs?: number;
  /** Renew a lease with `ttlMs` every third of it while connected. */
  autoRenew?: boolean;
  /** Aborting gives up the acquire (a waiting one is cancelled on the broker); a late grant is released. */
  signal?: AbortSignal;
}

interface ResolvedAcquire {
  wait: boolean;
  waitTimeoutMs: number | undefined;
  meta: Uint8Array | undefined;
  ttlMs: number | undefined;
  autoRenew: boolean;
  signal: AbortSignal | undefined;
}

/** Checks acquire options; throws TypeError/RangeError naming the option. */
export function resolveAcquireOptions(opts: AcquireOptions | undefined, wait: boolean): ResolvedAcquire {
  const o = opts ?? {};
  if (typeof o !== 'object') throw new TypeError('options must be an object');
  if (o.wait !== undefined && typeof o.wait !== 'boolean') throw new TypeError('wait must be a boolean');
  if (o.autoRenew !== undefined && typeof o.autoRenew !== 'boolean')
    throw new TypeError('autoRenew must be a boolean');
  for (const key of ['waitTimeoutMs', 'ttlMs'] as const) {
    const v = o[key];
    if (
      v !== undefined &&
      (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (key === 'ttlMs' ? 1 : 0))
    )
      throw new RangeError(
        `${key} must be a ${key === 'ttlMs' ? 'positive' : 'non-negative'} integer, got ${String(v)}`,
      );
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new TypeError('signal must be an AbortSignal');
  if (o.autoRenew && o.ttlMs === undefined) throw new TypeError('autoRenew needs ttlMs');
  return {
    wait: o.wait ?? wait,
    waitTimeoutMs: o.waitTimeoutMs,
    meta: o.meta === undefined ? undefined : metaBytes(o.meta),
    ttlMs: o.ttlMs,
    autoRenew: o.autoRenew ?? false,
    signal: o.signal,
  };
}

/** Checks a lease name locally, with the error the broker would send. */
export function checkName(name: unknown, allowEmpty = false): LeasewireError | undefined {
  if (typeof name !== 'string') return new LeasewireError('NAME_INVALID', 'name must be a string');
  const problem = nameProblem(name, allowEmpty);
  return problem ? new LeasewireError('NAME_INVALID', problem) : undefined;
}

/**
 * The leases of one client: acquiring, matching the broker's view on resume, and ending them when
 * the session ends or may have. A lease the client gave up on locally while the broker may still
 * list it ("abandoned") is released if a resumed session still holds it.
 */
export class LeaseBook implements LeaseHost {
  private readonly leases = new Map<string, Lease>();
  /** Names with an acquire in progress: a lease the broker lists for them on resume is theirs. */
  private readonly wanted = new Map<string, number>();
  /** Name → token of leases given up locally that the broker may still list for this session. */
  private readonly abandoned = new Map<string, number>();

  constructor(
    readonly session: Session,
    readonly options: ResolvedOptions,
  ) {}

  /** Live leases, for tests and diagnostics. */
  get size(): number {
    return this.leases.size;
  }

  leaseEnded(lease: Lease, abandoned: boolean): void {
    if (this.leases.get(lease.name) === lease) this.leases.delete(lease.name);
    // Not released at once: a lease-level TTL ends on the broker by itself moments later (and
    // watchers then see the honest `expired`); a session the broker still holds after a resume
    // has its abandoned leases released by `resumed`.
    if (abandoned) this.abandoned.set(lease.name, lease.token);
  }

  checkSessionDeadline(): void {
    this.session.checkDeadline();
  }

  acquire(name: string, o: ResolvedAcquire, tryMode: boolean): Promise<Lease | null> {
    const invalid = checkName(name);
    if (invalid) return Promise.reject(invalid);
    // L2: the session already holds it; the broker would answer with the same grant.
    const existing = this.leases.get(name);
    if (existing?.held) return Promise.resolve(existing);
    const signal = o.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);

    return new Promise<Lease | null>((resolve, reject) => {
      const { session, options } = this;
      const startedAt = session.clock.now().mono;
      let queued = false;
      let resent = false;
      let aborted = false;
      let waitTimer: ReturnType<typeof setTimeout> | undefined;
      const body: Omit<AcquireRequest, 'ref'> = { type: 'acquire', name };
      if (o.wait) body.wait = true;
      if (o.meta) body.meta = o.meta;
      if (o.ttlMs !== undefined) body.ttlMs = o.ttlMs;
      this.want(name);

      const waitTimeout = (): LeasewireError =>
        new LeasewireError('WAIT_TIMEOUT', `${name} was not granted within ${o.waitTimeoutMs} ms`);

      const call = session.call(body, {
        policy: 'anySession',
        timeoutMs: o.wait ? null : options.requestTimeoutMs,
        onQueued: () => {
          queued = true;
        },
        beforeSend: (resend) => {
          if (aborted) return signal?.reason ?? new LeasewireError('CANCELLED');
          if (resend) resent = true;
          if (!o.wait || o.waitTimeoutMs === undefined) return body;
          // The broker cancels waits when a connection drops; a re-issued wait gets what is left.
          const left = o.waitTimeoutMs - (session.clock.now().mono - startedAt);
          if (left <= 0 && resend) return waitTimeout();
          return { ...body, waitTimeoutMs: Math.max(0, Math.floor(left)) };
        },
      });

      const onAbort = (): void => {
        if (aborted) return;
        aborted = true;
        this.unwant(name);
        if (call.withdraw(signal?.reason)) return;
        if (o.wait && session.connected) {
          session
            .call({ type: 'cancel', name }, { policy: 'never', timeoutMs: options.requestTimeoutMs })
            .promise.catch(noop);
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (o.wait && o.waitTimeoutMs !== undefined) {
        // While disconnected the broker cannot time the wait out; do it here.
        waitTimer = setTimeout(() => call.withdraw(waitTimeout()), o.waitTimeoutMs);
      }

      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        if (waitTimer !== undefined) clearTimeout(waitTimer);
        if (!aborted) this.unwant(name);
      };

      call.promise
        .then(async ({ reply, sentAt }) => {
          if (reply.type !== 'granted')
            throw new LeasewireError('INTERNAL', `unexpected ${reply.type} reply to acquire`);
          const lease = this.adopt(reply.lease);
          if (lease.ttlMs !== undefined) {
            // A grant made while the broker handled this very send started the lease TTL after
            // sentAt. A grant after queueing (or to a re-sent request) started it at some unknown
            // time: a renew pins it down before the lease is handed out.
            if (!queued && !resent) lease.armTtl(sentAt, o.autoRenew);
            else await this.confirmTtl(lease, o.autoRenew);
          }
          if (aborted) {
            await lease.release().catch(noop);
            throw signal?.reason;
          }
          if (!lease.held) throw lease.signal.reason;
          return lease;
        })
        .then(
          (lease) => {
            done();
            resolve(lease);
          },
          (error: unknown) => {
            done();
            if (aborted) reject(signal?.reason);
            else if (
              tryMode &&
              error instanceof LeasewireError &&
              (error.code === 'LEASE_HELD' || error.code === 'LOCK_DELAY')
            )
              resolve(null);
            else reject(error);
          },
        );
    });
  }

  // ---- session events ----

  /** The session was resumed: keep what the broker still lists, lose the rest, release strays. */
  resumed(held: readonly HeldLease[]): void {
    const byName = new Map(held.map((h) => [h.name, h]));
    for (const lease of [...this.leases.values()]) {
      const h = byName.get(lease.name);
      if (!h || h.token !== lease.token) lease.lose('missing-on-resume');
    }
    for (const h of held) {
      const local = this.leases.get(h.name);
      if (local && local.token === h.token) continue;
      // Granted while the connection was down, to an acquire that is about to be re-sent (L2
      // hands it the same grant) — unless it is one this client already gave up on.
      if ((this.wanted.get(h.name) ?? 0) > 0 && this.abandoned.get(h.name) !== h.token) continue;
      this.releaseQuietly(h.name, h.token);
    }
    this.abandoned.clear();
  }

  /** A new session: nothing from the old one can still be held. */
  newSession(): void {
    this.loseAll('expired', false);
    this.abandoned.clear();
  }

  /** Every lease is lost, or may be (`abandoned`: the broker may still list them). */
  loseAll(reason: LeaseLossReason, abandoned: boolean): void {
    for (const lease of [...this.leases.values()]) lease.lose(reason, { abandoned });
  }

  sessionEnded(reason: 'expired' | 'taken-over'): void {
    this.loseAll(reason, false);
    this.abandoned.clear();
  }

  onLost(push: LostPush): void {
    const lease = this.leases.get(push.name);
    if (!lease || lease.token !== push.token) return;
    const reason: LeaseLossReason =
      push.reason === 'lease-ttl' ? 'lease-ttl' : push.reason === 'session-expired' ? 'expired' : 'revoked';
    lease.lose(reason, { endReason: push.reason });
  }

  closed(byeConfirmed: boolean): void {
    for (const lease of [...this.leases.values()]) {
      if (byeConfirmed) lease.markReleased();
      else lease.lose('closed');
    }
    this.abandoned.clear();
  }

  // ---- internals ----

  private adopt(info: LeaseInfo): Lease {
    const existing = this.leases.get(info.name);
    if (existing?.held && existing.token === info.token) return existing;
    existing?.lose('revoked');
    const lease = new Lease(this, info);
    this.leases.set(info.name, lease);
    return lease;
  }

  private async confirmTtl(lease: Lease, autoRenew: boolean): Promise<void> {
    try {
      const { sentAt } = await this.session.call(
        { type: 'renew', name: lease.name, token: lease.token },
        { policy: 'sameSession', timeoutMs: this.options.requestTimeoutMs },
      ).promise;
      lease.armTtl(sentAt, autoRenew);
    } catch (error) {
      const gone =
        error instanceof LeasewireError && (error.code === 'NOT_HOLDER' || error.code === 'STALE_TOKEN');
      lease.lose(gone ? 'revoked' : 'lease-ttl', { abandoned: !gone });
    }
  }

  private releaseQuietly(name: string, token: number): void {
    this.session
      .call({ type: 'release', name, token }, { policy: 'never', timeoutMs: this.options.requestTimeoutMs })
      .promise.then(() => {
        if (this.abandoned.get(name) === token) this.abandoned.delete(name);
      }, noop);
  }

  private want(name: string): void {
    this.wanted.set(name, (this.wanted.get(name) ?? 0) + 1);
  }

  private unwant(name: string): void {
    const n = (this.wanted.get(name) ?? 0) - 1;
    if (n > 0) this.wanted.set(name, n);
    else this.wanted.delete(name);
  }
}

function noop(): void {}
