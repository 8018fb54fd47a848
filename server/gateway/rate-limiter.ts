/**
 * A token bucket per connection: a sustained rate with a burst of one second's worth. Cheap
 * enough to run on every frame.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    nowMs: number,
  ) {
    this.tokens = perSecond;
    this.last = nowMs;
  }

  /** Takes one token; returns 0 if allowed, else ms until the next token. */
  take(nowMs: number): number {
    const elapsed = nowMs - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.perSecond, this.tokens + (elapsed * this.perSecond) / 1000);
      this.last = nowMs;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.perSecond);
  }
}
