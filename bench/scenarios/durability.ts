import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerProcess } from '../lib/broker-process.js';
import { startLoadProcesses, stopAll } from '../lib/load-process.js';
import { type CyclesCase, type CyclesMeasurement, LOAD_LIMITS, measureCycles } from '../lib/measure.js';
import { check, type Scenario, type ScenarioResult } from '../lib/scenario.js';
import { ratio } from '../lib/table.js';

/**
 * Scenario 6 — what durability costs: the same acquire/release cycles against the memory store
 * and the journal store with fsync none, batch and always, case by case in one run, as ratios
 * to memory. Each journal broker gets a fresh data directory in the OS temp dir.
 */
const STORES = [
  { label: 'memory', options: { store: 'memory' as const } },
  { label: 'journal fsync none', options: { store: 'journal' as const, fsync: 'none' as const } },
  { label: 'journal fsync batch', options: { store: 'journal' as const, fsync: 'batch' as const } },
  { label: 'journal fsync always', options: { store: 'journal' as const, fsync: 'always' as const } },
];

export const durability: Scenario = {
  name: 'durability',
  title: 'acquire+release: memory vs journal (fsync none / batch / always)',
  async run(ctx): Promise<ScenarioResult> {
    const warmupMs = ctx.smoke ? 100 : 2_000;
    const durationMs = ctx.durationMs ?? (ctx.smoke ? 250 : 8_000);
    const cases: CyclesCase[] = ctx.smoke
      ? [
          { label: '4×4', connections: 4, inflight: 4, warmupMs, durationMs },
          { label: '1×1', connections: 1, inflight: 1, warmupMs, durationMs },
        ]
      : [
          { label: '100×16', connections: 100, inflight: 16, warmupMs, durationMs },
          { label: '1×1 (one at a time)', connections: 1, inflight: 1, warmupMs, durationMs },
        ];
    const dirs: string[] = [];
    const brokers: BrokerProcess[] = [];
    const loads = await startLoadProcesses(1, 'load');
    const results: { case: CyclesCase; store: string; m: CyclesMeasurement }[] = [];
    try {
      for (const s of STORES) {
        const dataDir = await mkdtemp(join(tmpdir(), 'leasewire-bench-durability-'));
        dirs.push(dataDir);
        brokers.push(
          await BrokerProcess.start(
            { kind: 'leasewire', options: { ...s.options, dataDir, ...LOAD_LIMITS } },
            {
              profileDir: ctx.profileDir,
              profileName: `durability-${s.label.replace(/\W+/g, '-')}.cpuprofile`,
            },
          ),
        );
      }
      for (const c of cases) {
        for (const [i, s] of STORES.entries()) {
          const m = await measureCycles(
            brokers[i]!,
            loads,
            { ...c, label: `${s.label} ${c.label}` },
            ctx.progress,
          );
          results.push({ case: c, store: s.label, m });
        }
        const line = results
          .filter((r) => r.case === c)
          .map((r) => `${r.store} ${Math.round(r.m.opsPerSec)}/s`)
          .join(', ');
        ctx.log(`  ${c.label}: ${line}`);
      }
    } finally {
      await stopAll(loads);
      await Promise.all(brokers.map((b) => b.stop()));
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
    const memoryOf = (c: CyclesCase) => results.find((r) => r.case === c && r.store === 'memory')?.m;
    const table = {
      title: 'Scenario 6 — durability cost: acquire/release round trips per store (same run)',
      columns: [
        'case',
        'store',
        'ops/s',
        'vs memory',
        'p50 ms',
        'p99 ms',
        'p99 vs memory',
        'broker CPU %',
        'errors',
      ],
      rows: results.map((r) => {
        const mem = memoryOf(r.case);
        return [
          r.case.label,
          r.store,
          r.m.opsPerSec,
          ratio(r.m.opsPerSec, mem?.opsPerSec),
          r.m.latency.p50Ms,
          r.m.latency.p99Ms,
          ratio(r.m.latency.p99Ms, mem?.latency.p99Ms),
          r.m.brokerCpuPct,
          Object.values(r.m.errors).reduce((a, b) => a + b, 0) + r.m.stuck,
        ];
      }),
      notes: [
        'fsync batch: a reply waits for the fdatasync that covers its record, several records share one; always: one fdatasync per write.',
      ],
    };
    const get = (store: string, c: CyclesCase | undefined) =>
      results.find((r) => r.case === c && r.store === store)?.m;
    const [many, single] = cases;
    const targets = ctx.smoke
      ? []
      : [
          check(
            'journal batch ≥ 60% of memory at 100×16',
            (get('journal fsync batch', many)?.opsPerSec ?? Number.NaN) /
              (get('memory', many)?.opsPerSec ?? Number.NaN),
            (v) => v >= 0.6,
            (v) => `${(v * 100).toFixed(0)}%`,
          ),
          check(
            'journal batch one at a time p50 ≤ 0.5 ms',
            get('journal fsync batch', single)?.latency.p50Ms,
            (v) => v <= 0.5,
            (v) => `${v.toFixed(3)} ms`,
          ),
          check(
            'journal always one at a time p50 ≤ 0.5 ms',
            get('journal fsync always', single)?.latency.p50Ms,
            (v) => v <= 0.5,
            (v) => `${v.toFixed(3)} ms`,
          ),
        ];
    return {
      tables: [table],
      targets,
      data: results.map((r) => ({ case: r.case.label, store: r.store, ...r.m })),
    };
  },
};
