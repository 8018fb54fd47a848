/**
 * A reading of both local clocks. `mono` (performance.now()) measures durations and is immune to
 * wall-clock steps; `wall` (Date.now()) keeps counting while a laptop or VM is suspended, which
 * some monotonic clocks do not. Deadlines use whichever says more time has passed.
 */
export interface Instant {
  mono: number;
  wall: number;
}

/** Where the client reads time; tests pass a fake one. */
export interface Clock {
  now(): Instant;
}

export const systemClock: Clock = {
  now: () => ({ mono: performance.now(), wall: Date.now() }),
};
