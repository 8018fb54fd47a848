import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Clock, Instant } from '../../client/clock.js';
import { SafetyDeadline, safetyMarginMs, watchDeadline } from '../../client/safety-deadline.js';

const margin = { clockDriftRate: 0.01, extraMs: 50 };

/** A clock whose monotonic and wall readings move independently. */
function fakeClock(start: Instant = { mono: 1_000, wall: 1_700_000_000_000 }) {
  let now = { ...start };
  const clock: Clock = { now: () => ({ ...now }) };
  return {
    clock,
    advance(ms: number) {
      now = { mono: now.mono + ms, wall: now.wall + ms };
    },
    jumpWall(ms: number) {
      now = { ...now, wall: now.wall + ms };
    },
    get now() {
      return { ...now };
    },
  };
}

describe('safetyMarginMs', () => {
  it.each([
    // ttl · 2ρ/(1+ρ), rounded up, plus the fixed part
    [10_000, 0.01, 50, 199 + 50],
    [10_000, 0, 50, 50],
    [1_000, 0.01, 0, 20],
    [60_000, 0.02, 25, 2_353 + 25],
  ])('ttl %i ms, drift %f, extra %i ms → %i ms', (ttlMs, clockDriftRate, extraMs, expected) => {
    expect(safetyMarginMs(ttlMs, { clockDriftRate, extraMs })).toBe(expected);
  });

  it('keeps the client first when its clock is slow and the broker clock is fast by the assumed rate', () => {
    const ttlMs = 10_000;
    const rho = 0.01;
    const localBudget = ttlMs - safetyMarginMs(ttlMs, { clockDriftRate: rho, extraMs: 0 });
    // The client's slow clock reads `localBudget` after localBudget / (1 - ρ) real ms;
    // the broker's fast clock reads ttl after ttl / (1 + ρ) real ms.
    expect(localBudget / (1 - rho)).toBeLessThanOrEqual(ttlMs / (1 + rho));
  });
});

describe('SafetyDeadline', () => {
  it('passes at the send time of the last acked request + ttl - margin', () => {
    const t = fakeClock();
    const d = new SafetyDeadline(10_000, t.now, margin);
    expect(d.marginMs).toBe(249);
    expect(d.remainingMs(t.now)).toBe(10_000 - 249);
    t.advance(9_750);
    expect(d.hasPassed(t.now)).toBe(false);
    t.advance(1);
    expect(d.hasPassed(t.now)).toBe(true);
  });

  it('moves later with each ack, measured from the send time, not the arrival', () => {
    const t = fakeClock();
    const d = new SafetyDeadline(10_000, t.now, margin);
    t.advance(3_000);
    const sentAt = t.now;
    t.advance(400); // the reply takes 400 ms to come back
    d.noteAcked(sentAt);
    expect(d.remainingMs(t.now)).toBe(10_000 - 249 - 400);
  });

  it('never moves earlier when an older request is acked late', () => {
    const t = fakeClock();
    const early = t.now;
    t.advance(2_000);
    const d = new SafetyDeadline(10_000, t.now, margin);
    d.noteAcked(early);
    expect(d.lastAckedSend.mono).toBe(early.mono + 2_000);
  });

  it('counts wall-clock time that the monotonic clock missed (a suspended machine)', () => {
    const t = fakeClock();
    const d = new SafetyDeadline(10_000, t.now, margin);
    t.advance(1_000);
    t.jumpWall(20_000);
    expect(d.hasPassed(t.now)).toBe(true);
  });

  it('ignores a wall clock stepped backwards', () => {
    const t = fakeClock();
    const d = new SafetyDeadline(10_000, t.now, margin);
    t.jumpWall(-60_000);
    t.advance(1_000);
    expect(d.remainingMs(t.now)).toBe(10_000 - 249 - 1_000);
  });
});

describe('watchDeadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires once the deadline passes, re-arming after acks moved it', async () => {
    vi.useFakeTimers();
    const t = fakeClock();
    const d = new SafetyDeadline(1_000, t.now, { clockDriftRate: 0, extraMs: 0 });
    const fired = vi.fn();
    watchDeadline(d, t.clock, fired);
    t.advance(600);
    await vi.advanceTimersByTimeAsync(600);
    d.noteAcked(t.now); // deadline now at 1_600
    t.advance(400);
    await vi.advanceTimersByTimeAsync(400);
    expect(fired).not.toHaveBeenCalled();
    t.advance(600);
    await vi.advanceTimersByTimeAsync(600);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('reports an already-passed deadline from a timer, not re-entrantly', async () => {
    vi.useFakeTimers();
    const t = fakeClock();
    const d = new SafetyDeadline(1_000, t.now, { clockDriftRate: 0, extraMs: 0 });
    t.advance(5_000);
    const fired = vi.fn();
    watchDeadline(d, t.clock, fired);
    expect(fired).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(0);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('stops when told to', async () => {
    vi.useFakeTimers();
    const t = fakeClock();
    const d = new SafetyDeadline(1_000, t.now, { clockDriftRate: 0, extraMs: 0 });
    const fired = vi.fn();
    const stop = watchDeadline(d, t.clock, fired);
    stop();
    t.advance(2_000);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(fired).not.toHaveBeenCalled();
  });
});
