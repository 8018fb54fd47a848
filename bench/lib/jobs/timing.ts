import { epochNow } from '../clock.js';

/** Resolves at the given epoch time (all load processes start a phase together). */
export function untilEpoch(at: number): Promise<void> {
  const ms = at - epochNow();
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** CPU of this process between two calls, in microseconds. */
export function cpuMeter(): () => number {
  const start = process.cpuUsage();
  return () => {
    const d = process.cpuUsage(start);
    return d.user + d.system;
  };
}

/** Counts by key, JSON-friendly. */
export function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
