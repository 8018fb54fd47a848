import type { Now } from './core/types.js';

/**
 * Where time enters the broker. Deadlines use the monotonic reading; the wall reading only
 * goes into frames for display (SEMANTICS T1). Tests pass a fake clock.
 */
export interface Clock {
  now(): Now;
  setTimer(fn: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export interface TimerHandle {
  unref?(): unknown;
}

export const systemClock: Clock = {
  now: () => ({ mono: performance.now(), wall: Date.now() }),
  setTimer: (fn, delayMs) => setTimeout(fn, delayMs),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
