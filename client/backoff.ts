/**
 * Reconnect delays: exponential growth with "full jitter" (a uniform draw between 0 and the
 * current ceiling), so that many clients dropped by one broker restart do not come back in step.
 */

/** How reconnect delays grow. */
export interface BackoffOptions {
  /** Ceiling of the first delay (attempt 0). */
  initialDelayMs: number;
  /** No delay is ever longer than this. */
  maxDelayMs: number;
  /** Growth of the ceiling per failed attempt (2 doubles it). */
  multiplier: number;
}

/** The upper bound of the delay before attempt `attempt` (0-based): `min(max, initial * multiplier^attempt)`. */
export function backoffCeilingMs(attempt: number, options: BackoffOptions): number {
  const grown = options.initialDelayMs * options.multiplier ** Math.max(0, attempt);
  // `grown` can be Infinity for large attempts; min() keeps the ceiling.
  return Math.min(options.maxDelayMs, grown);
}

/**
 * The delay before attempt `attempt`: uniform in `[0, backoffCeilingMs(attempt)]`, whole ms.
 *
 * @example
 * backoffDelayMs(3, { initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2 }) // somewhere in 0..800
 */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * (backoffCeilingMs(attempt, options) + 1));
}
