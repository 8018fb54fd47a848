import type { Clock, Instant } from './clock.js';

/**
 * The local safety deadline: the latest moment at which this client can still be sure the broker
 * has not yet expired its session (or a lease's own TTL) and handed the leases to someone else.
 *
 * The broker's deadline is "the last time it heard the client + TTL". The client cannot know when
 * the broker heard it, but it knows a lower bound: the local time at which it *sent* a request
 * that the broker then answered. So the deadline is `lastAckedSend + ttlMs - margin`.
 *
 * The margin covers the two clocks running at different rates. Assumption (documented bound):
 * each machine's clock runs within `clockDriftRate` (default 1%) of real time. The broker waits
 * at least `ttl / (1 + ρ)` real time; the client's reading of `L` local ms is at most
 * `L / (1 - ρ)` real time. `L <= ttl · (1 - ρ) / (1 + ρ)` keeps the client first, so the margin
 * is `ttl · 2ρ / (1 + ρ)` (≈ 2% of the TTL for ρ = 1%), plus `extraMs` (default 50 ms) for a
 * local timer firing late. A process paused for longer than that (GC, SIGSTOP, a blocked event
 * loop) still acts late; that is why fencing tokens exist.
 *
 * Elapsed time is the larger of the monotonic and the wall-clock reading, so that a suspended
 * machine whose monotonic clock stood still still sees the time that passed.
 */
export interface SafetyMarginOptions {
  /** Bound on each clock's rate error, as a fraction (0.01 = 1%). */
  clockDriftRate: number;
  /** Fixed extra margin for timer lateness. */
  extraMs: number;
}

/** `ceil(ttl · 2ρ / (1 + ρ)) + extraMs`: how long before the broker's deadline the client gives up. */
export function safetyMarginMs(ttlMs: number, options: SafetyMarginOptions): number {
  const rho = options.clockDriftRate;
  return Math.ceil((ttlMs * 2 * rho) / (1 + rho)) + options.extraMs;
}

/**
 * One deadline, moved later by every acknowledged request.
 *
 * @example
 * const d = new SafetyDeadline(10_000, sentAt, { clockDriftRate: 0.01, extraMs: 50 });
 * d.noteAcked(otherSentAt);        // the broker answered a request sent at otherSentAt
 * d.remainingMs(clock.now());      // <= 0 once the broker may have expired us
 */
export class SafetyDeadline {
  readonly marginMs: number;
  private basis: Instant;

  constructor(
    readonly ttlMs: number,
    basis: Instant,
    options: SafetyMarginOptions,
  ) {
    this.marginMs = safetyMarginMs(ttlMs, options);
    this.basis = basis;
  }

  /** The send time of the latest acknowledged request. */
  get lastAckedSend(): Instant {
    return this.basis;
  }

  /** The broker answered a request that was sent at `sentAt`. Only ever moves the deadline later. */
  noteAcked(sentAt: Instant): void {
    if (sentAt.mono > this.basis.mono) this.basis = sentAt;
  }

  /** Milliseconds left until the deadline, judged by the more pessimistic of the two clocks. */
  remainingMs(now: Instant): number {
    const elapsed = Math.max(now.mono - this.basis.mono, now.wall - this.basis.wall);
    return this.ttlMs - this.marginMs - elapsed;
  }

  hasPassed(now: Instant): boolean {
    return this.remainingMs(now) <= 0;
  }
}

/**
 * Calls `onPassed` once the deadline has passed. The timer re-checks when it fires (acks may have
 * moved the deadline later meanwhile) and re-arms itself. Returns a function that stops it.
 */
export function watchDeadline(deadline: SafetyDeadline, clock: Clock, onPassed: () => void): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const check = (): void => {
    timer = undefined;
    if (stopped) return;
    const left = deadline.remainingMs(clock.now());
    if (left <= 0) {
      stopped = true;
      onPassed();
      return;
    }
    timer = setTimeout(check, Math.ceil(left));
  };
  // Even an already-passed deadline is reported from a timer, never re-entrantly from here.
  timer = setTimeout(check, Math.max(0, Math.ceil(deadline.remainingMs(clock.now()))));
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}
