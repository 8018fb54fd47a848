import { BrokerProcess } from '../lib/broker-process.js';
import { startLoadProcesses, stopAll } from '../lib/load-process.js';
import { type CyclesCase, type CyclesMeasurement, LOAD_LIMITS, measureCycles } from '../lib/measure.js';
import { check, type Scenario, type ScenarioContext, type ScenarioResult } from '../lib/scenario.js';
import { ratio } from '../lib/table.js';

/**
 * Scenario 1 — acquire+release cycles on distinct names against the memory store, next to the
 * bare ws + msgpackr server (the ceiling) in the same run, case by case, interleaved.
 */
export function throughputCases(ctx: ScenarioContext): CyclesCase[] {
  const warmupMs = ctx.smoke ? 100 : 2_000;
  const durationMs = ctx.durationMs ?? (ctx.smoke ? 250 : 10_000);
  return ctx.smoke
    ? [
        { label: '4×4', connections: 4, inflight: 4, warmupMs, durationMs },
        { label: '1×8', connections: 1, inflight: 8, warmupMs, durationMs },
        { label: '1×1', connections: 1, inflight: 1, warmupMs, durationMs },
      ]
    : [
        { label: '100×16', connections: 100, inflight: 16, warmupMs, durationMs },
        { label: '1×64', connections: 1, inflight: 64, warmupMs, durationMs },
        { label: '1×1 (one at a time)', connections: 1, inflight: 1, warmupMs, durationMs },
      ];
}

export const throughput: Scenario = {
  name: 'throughput',
  title: 'acquire+release round trips (memory store vs bare ws baseline)',
  async run(ctx): Promise<ScenarioResult> {
    const cases = throughputCases(ctx);
    const bare = await BrokerProcess.start({ kind: 'bare' });
    const memory = await BrokerProcess.start(
      { kind: 'leasewire', options: { store: 'memory', ...LOAD_LIMITS } },
      { profileDir: ctx.profileDir, profileName: 'throughput-memory.cpuprofile' },
    );
    const loads = await startLoadProcesses(1, 'load');
    const rows: { case: CyclesCase; bare: CyclesMeasurement; memory: CyclesMeasurement }[] = [];
    try {
      for (const c of cases) {
        const b = await measureCycles(bare, loads, { ...c, label: `bare ${c.label}` }, ctx.progress);
        const m = await measureCycles(memory, loads, { ...c, label: `memory ${c.label}` }, ctx.progress);
        ctx.log(`  ${c.label}: memory ${Math.round(m.opsPerSec)}/s, bare ${Math.round(b.opsPerSec)}/s`);
        rows.push({ case: c, bare: b, memory: m });
      }
    } finally {
      await stopAll(loads);
      await Promise.all([bare.stop(), memory.stop()]);
    }
    const table = {
      title: 'Scenario 1 — acquire/release round trips, memory store vs bare ws+msgpackr (same run)',
      columns: [
        'case (conns×in flight)',
        'server',
        'ops/s',
        'vs bare',
        'p50 ms',
        'p99 ms',
        'max ms',
        'server CPU %',
        'load-gen CPU %',
        'errors',
      ],
      rows: rows.flatMap((r) =>
        [r.bare, r.memory].map((m, i) => [
          r.case.label,
          i === 0 ? 'bare ws' : 'leasewire memory',
          m.opsPerSec,
          i === 0 ? '100%' : ratio(m.opsPerSec, r.bare.opsPerSec),
          m.latency.p50Ms,
          m.latency.p99Ms,
          m.latency.maxMs,
          m.brokerCpuPct,
          m.loadCpuPct,
          Object.values(m.errors).reduce((a, b) => a + b, 0) + m.stuck,
        ]),
      ),
      notes: [
        'op = one acquire or one release round trip; each connection is one session; names are distinct (no contention).',
        'CPU in % of one core over the measured window; the load generator runs in its own process.',
      ],
    };
    const [many, pipe, single] = rows;
    const targets = ctx.smoke
      ? []
      : [
          check(
            'memory 100×16 ≥ 100,000 ops/s',
            many?.memory.opsPerSec,
            (v) => v >= 100_000,
            (v) => `${Math.round(v)}/s`,
          ),
          check(
            'memory 100×16 ≥ 75% of bare ws',
            many ? many.memory.opsPerSec / many.bare.opsPerSec : undefined,
            (v) => v >= 0.75,
            (v) => `${(v * 100).toFixed(0)}%`,
          ),
          check(
            'memory 1×64 ≥ 130,000 ops/s',
            pipe?.memory.opsPerSec,
            (v) => v >= 130_000,
            (v) => `${Math.round(v)}/s`,
          ),
          check(
            'one at a time p50 ≤ 0.12 ms',
            single?.memory.latency.p50Ms,
            (v) => v <= 0.12,
            (v) => `${v.toFixed(3)} ms`,
          ),
          check(
            'one at a time p99 ≤ 0.4 ms',
            single?.memory.latency.p99Ms,
            (v) => v <= 0.4,
            (v) => `${v.toFixed(3)} ms`,
          ),
        ];
    return { tables: [table], targets, data: rows };
  },
};
