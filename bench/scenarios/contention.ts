import { BrokerProcess, cpuPercent } from '../lib/broker-process.js';
import { epochNow } from '../lib/clock.js';
import { type FifoReport, jainIndex } from '../lib/fifo.js';
import { Histogram, type LatencySummary } from '../lib/histogram.js';
import type { ContendResult } from '../lib/jobs/contend.js';
import { sourceAddress, split, startLoadProcesses, stopAll } from '../lib/load-process.js';
import { atEpoch, LOAD_LIMITS } from '../lib/measure.js';
import type { Scenario, ScenarioResult } from '../lib/scenario.js';

/**
 * Scenario 2 — contention: 1,000 sessions on 10 names, each looping wait-acquire → granted →
 * release. Grants per second, the wait from acquire to grant, how evenly grants spread over
 * clients (Jain's index), and whether every name's queue was served in FIFO order (checked
 * inside the broker against the order the store queued the waiters).
 */
interface ContentionResult {
  clients: number;
  names: number;
  grantsPerSec: number;
  wait: LatencySummary;
  jain: number;
  minGrantsPerClient: number;
  maxGrantsPerClient: number;
  fifo: FifoReport;
  traceTruncated: boolean;
  brokerCpuPct: number;
  errors: Record<string, number>;
  stuck: number;
}

export const contention: Scenario = {
  name: 'contention',
  title: '1,000 clients on 10 names, waiting acquires: grants/s and FIFO fairness',
  async run(ctx): Promise<ScenarioResult> {
    const clients = ctx.smoke ? 40 : 1_000;
    const names = ctx.smoke ? 4 : 10;
    const warmupMs = ctx.smoke ? 100 : 2_000;
    const durationMs = ctx.durationMs ?? (ctx.smoke ? 300 : 10_000);
    const broker = await BrokerProcess.start(
      { kind: 'leasewire', options: { store: 'memory', ...LOAD_LIMITS } },
      { profileDir: ctx.profileDir, profileName: 'contention-memory.cpuprofile' },
    );
    const procs = await startLoadProcesses(2, 'contend');
    let result: ContentionResult;
    try {
      const counts = split(clients, procs.length);
      await Promise.all(
        procs.map((p, k) =>
          p.call('open', { url: broker.url, count: counts[k], localAddresses: [sourceAddress(k)] }),
        ),
      );
      await broker.call('trace-start', { kinds: ['queued', 'waitGranted'] });
      const startAt = epochNow() + 200;
      const before = atEpoch(startAt + warmupMs, () => broker.stats());
      const after = atEpoch(startAt + warmupMs + durationMs, () => broker.stats());
      ctx.progress.track(`contention ${clients} clients on ${names} names`, warmupMs + durationMs);
      let offset = 0;
      const results = await Promise.all(
        procs.map((p, k) => {
          const args = {
            names,
            namePrefix: 'contended/',
            indexOffset: offset,
            startAt,
            warmupMs,
            durationMs,
            waitTimeoutMs: 60_000,
          };
          offset += counts[k]!;
          return p.call<ContendResult>('contend', args, warmupMs + durationMs + 60_000);
        }),
      );
      ctx.progress.done();
      const [s0, s1] = await Promise.all([before, after]);
      const traced = await broker.call<{ fifo: FifoReport; truncated: boolean }>('trace-stop', {
        fifo: true,
      });
      await Promise.all(procs.map((p) => p.call('close-all')));
      const wait = new Histogram();
      const perClient: number[] = [];
      const errors: Record<string, number> = {};
      let grants = 0;
      let stuck = 0;
      for (const r of results) {
        wait.merge(Histogram.fromJSON(r.waitLatency));
        perClient.push(...r.grantsPerSession);
        grants += r.grants;
        stuck += r.stuck;
        for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
      }
      result = {
        clients,
        names,
        grantsPerSec: (grants / durationMs) * 1000,
        wait: wait.summary(),
        jain: jainIndex(perClient),
        minGrantsPerClient: Math.min(...perClient),
        maxGrantsPerClient: Math.max(...perClient),
        fifo: traced.fifo,
        traceTruncated: traced.truncated,
        brokerCpuPct: cpuPercent(s0, s1),
        errors,
        stuck,
      };
    } finally {
      await stopAll(procs);
      await broker.stop();
    }
    ctx.log(`  ${Math.round(result.grantsPerSec)} grants/s, FIFO out of order: ${result.fifo.outOfOrder}`);
    const table = {
      title: `Scenario 2 — contention: ${clients} clients on ${names} names, waiting acquires (memory store)`,
      columns: [
        'grants/s',
        'wait p50 ms',
        'wait p99 ms',
        'Jain index',
        'grants/client min…max',
        'FIFO: granted out of order',
        'overtaken',
        'waits checked',
        'broker CPU %',
        'errors',
      ],
      rows: [
        [
          result.grantsPerSec,
          result.wait.p50Ms,
          result.wait.p99Ms,
          result.jain.toFixed(4),
          `${result.minGrantsPerClient}…${result.maxGrantsPerClient}`,
          result.fifo.outOfOrder,
          result.fifo.overtaken,
          result.fifo.grants,
          result.brokerCpuPct,
          Object.values(result.errors).reduce((a, b) => a + b, 0) + result.stuck,
        ],
      ],
      notes: [
        'Each client: acquire {wait: true} → granted → release → again; hold time is zero, so a grant costs one release round trip of the holder.',
        'FIFO: per name, the order the store queued waiters (traced inside the broker) against the order their grants were issued; 0 = FIFO kept.',
      ],
    };
    return { tables: [table], targets: [], data: result };
  },
};
