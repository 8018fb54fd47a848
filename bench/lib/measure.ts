import type { BrokerProcess } from './broker-process.js';
import { cpuPercent } from './broker-process.js';
import { epochNow } from './clock.js';
import { Histogram, type LatencySummary } from './histogram.js';
import type { CyclesResult } from './jobs/cycles.js';
import { sourceAddress, split } from './load-process.js';
import type { Progress } from './progress.js';
import type { Child } from './rpc.js';

export interface CyclesCase {
  label: string;
  connections: number;
  inflight: number;
  warmupMs: number;
  durationMs: number;
  mode?: 'cycles' | 'keepalive';
  leaseTtlMs?: number;
}

export interface CyclesMeasurement {
  label: string;
  connections: number;
  inflight: number;
  /** Acquire-or-release round trips per second. */
  opsPerSec: number;
  latency: LatencySummary;
  brokerCpuPct: number;
  /** Load generators' CPU, summed, in percent of one core. */
  loadCpuPct: number;
  errors: Record<string, number>;
  stuck: number;
}

/**
 * Opens sessions on the load processes, runs acquire/release cycles on distinct names, and reads
 * the broker's CPU over exactly the measured window. Sessions are closed afterwards.
 */
export async function measureCycles(
  server: BrokerProcess,
  loads: readonly Child[],
  c: CyclesCase,
  progress?: Progress,
): Promise<CyclesMeasurement> {
  const procs = loads.slice(0, Math.max(1, Math.min(loads.length, c.connections)));
  const counts = split(c.connections, procs.length);
  await Promise.all(
    procs.map((l, k) =>
      l.call('open', {
        url: server.url,
        count: counts[k],
        localAddresses: [sourceAddress(k)],
        concurrency: 32,
      }),
    ),
  );
  const startAt = epochNow() + 200;
  const windowStart = startAt + c.warmupMs;
  const windowEnd = windowStart + c.durationMs;
  const before = atEpoch(windowStart, () => server.stats());
  const after = atEpoch(windowEnd, () => server.stats());
  progress?.track(c.label, c.warmupMs + c.durationMs);
  const prefix = `cyc/${c.label.replace(/\W+/g, '-')}/${Date.now()}/`;
  const results = await Promise.all(
    procs.map((l, k) =>
      l.call<CyclesResult>(
        'cycles',
        {
          inflight: c.inflight,
          namePrefix: `${prefix}${k}/`,
          startAt,
          warmupMs: c.warmupMs,
          durationMs: c.durationMs,
        },
        c.warmupMs + c.durationMs + 60_000,
      ),
    ),
  );
  progress?.done();
  const [b0, b1] = await Promise.all([before, after]);
  await Promise.all(procs.map((l) => l.call('close-all')));
  const hist = new Histogram();
  let ops = 0;
  let cpuUs = 0;
  let stuck = 0;
  const errors: Record<string, number> = {};
  for (const r of results) {
    hist.merge(Histogram.fromJSON(r.latency));
    ops += r.ops;
    cpuUs += r.cpuUs;
    stuck += r.stuck;
    for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  }
  return {
    label: c.label,
    connections: c.connections,
    inflight: c.inflight,
    opsPerSec: (ops / c.durationMs) * 1000,
    latency: hist.summary(),
    brokerCpuPct: cpuPercent(b0, b1),
    loadCpuPct: (cpuUs / 1000 / c.durationMs) * 100,
    errors,
    stuck,
  };
}

/** Broker options for load runs: the per-connection flow limits raised out of the way. */
export const LOAD_LIMITS = {
  maxRequestsPerSecond: 10_000_000,
  maxPendingRequests: 100_000,
  maxLeasesPerSession: 100_000,
  logLevel: 'error',
} as const;

/** Runs `fn` at an epoch time (a window edge shared with the load processes). */
export function atEpoch<T>(at: number, fn: () => Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    setTimeout(() => fn().then(resolve, reject), Math.max(0, at - epochNow()));
  });
}
