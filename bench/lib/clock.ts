/**
 * Wall-clock time with sub-millisecond precision that agrees across processes on this machine.
 * `performance.timeOrigin` can be off by up to a millisecond between processes and Date.now()
 * is truncated to the millisecond, so each process finds the instant Date.now() ticks over and
 * anchors performance.now() to it (median of five edges; bounded to ~10 ms of spinning).
 */
let offsetMs: number | undefined;

function calibrate(): number {
  const offsets: number[] = [];
  for (let k = 0; k < 5; k++) {
    const start = Date.now();
    const giveUpAt = performance.now() + 3;
    let wall = start;
    let mono = performance.now();
    while (wall === start && mono < giveUpAt) {
      wall = Date.now();
      mono = performance.now();
    }
    offsets.push(wall - mono);
  }
  offsets.sort((a, b) => a - b);
  return offsets[2]!;
}

/** Epoch milliseconds (fractional), comparable between processes to a few tens of µs. */
export function epochNow(): number {
  offsetMs ??= calibrate();
  return performance.now() + offsetMs;
}

/** Converts a performance.now() reading of this process to epoch milliseconds. */
export function monoToEpoch(mono: number): number {
  offsetMs ??= calibrate();
  return mono + offsetMs;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
