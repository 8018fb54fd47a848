import { describe, expect, it } from 'vitest';
import { backoffCeilingMs, backoffDelayMs } from '../../client/backoff.js';

const opts = { initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2 };

describe('backoff', () => {
  it.each([
    [0, 100],
    [1, 200],
    [2, 400],
    [5, 3_200],
    [6, 5_000],
    [50, 5_000],
    [5_000, 5_000],
  ])('grows the ceiling exponentially up to maxDelayMs (attempt %i → %i ms)', (attempt, ceiling) => {
    expect(backoffCeilingMs(attempt, opts)).toBe(ceiling);
  });

  it('draws full jitter: 0 at the bottom of the range, the ceiling at the top', () => {
    expect(backoffDelayMs(3, opts, () => 0)).toBe(0);
    expect(backoffDelayMs(3, opts, () => 0.999_999_9)).toBe(800);
    expect(backoffDelayMs(3, opts, () => 0.5)).toBe(400);
  });

  it('never leaves [0, ceiling] whatever the draw', () => {
    const outside: string[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      for (let i = 0; i < 200; i++) {
        const d = backoffDelayMs(attempt, opts);
        if (!Number.isInteger(d) || d < 0 || d > backoffCeilingMs(attempt, opts))
          outside.push(`${attempt}:${d}`);
      }
    }
    expect(outside).toEqual([]);
  });

  it('spreads delays over the range rather than clustering', () => {
    const draws = Array.from({ length: 2_000 }, () => backoffDelayMs(6, opts));
    const low = draws.filter((d) => d < 2_500).length;
    expect(low).toBeGreaterThan(800);
    expect(low).toBeLessThan(1_200);
  });

  it('keeps a constant ceiling with multiplier 1', () => {
    const flat = { initialDelayMs: 250, maxDelayMs: 1_000, multiplier: 1 };
    expect(backoffCeilingMs(0, flat)).toBe(250);
    expect(backoffCeilingMs(10, flat)).toBe(250);
  });
});
