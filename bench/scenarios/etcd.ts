import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerProcess } from '../lib/broker-process.js';
import { epochNow, sleep } from '../lib/clock.js';
import { EtcdProcess, etcdCpuPercent, findEtcd } from '../lib/etcd-process.js';
import { Histogram, type LatencySummary } from '../lib/histogram.js';
import type { EtcdLoopResult } from '../lib/jobs/etcd.js';
import type { RevisionArrivals } from '../lib/jobs/watchers.js';
import { split, startLoadProcesses, stopAll } from '../lib/load-process.js';
import { atEpoch, type CyclesCase, LOAD_LIMITS, measureCycles } from '../lib/measure.js';
import type { Child } from '../lib/rpc.js';
import {
  check,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  type TargetCheck,
} from '../lib/scenario.js';
import { times } from '../lib/table.js';
import { arrivalSummaries, Completion, type SingleChangeResult, singleChanges } from './fanout.js';
import { HTTP_LABELS, type HttpRow, hasHttpApi, runAutocannon } from './http.js';

/**
 * Scenario 8 — etcd side by side, in the same run: a single-node etcd (started here on loopback
 * ports with a temp data dir) against leasewire's memory store and journal store (fsync batch;
 * etcd fsyncs its WAL). etcd is driven with the etcd3 npm client (gRPC) and autocannon against
 * its JSON gateway; leasewire with the same load generator as the other scenarios.
 */
interface Row {
  operation: string;
  unit: string;
  higherIsBetter: boolean;
  memory: number | undefined;
  batch: number | undefined;
  etcd: number | undefined;
  note?: string;
}

async function etcdLoops(
  ctx: ScenarioContext,
  etcd: EtcdProcess,
  load: Child,
  op: 'lock' | 'grant' | 'keepalive',
  concurrency: number,
  durationMs: number,
  warmupMs: number,
): Promise<{ opsPerSec: number; latency: LatencySummary; cpuPct: number; errors: Record<string, number> }> {
  ctx.progress.track(`etcd ${op} ×${concurrency}`, warmupMs + durationMs);
  const startAt = epochNow() + 200;
  const c0 = atEpoch(startAt + warmupMs, async () => etcd.cpu());
  const c1 = atEpoch(startAt + warmupMs + durationMs, async () => etcd.cpu());
  const r = await load.call<EtcdLoopResult>(
    'etcd-loops',
    { endpoint: etcd.endpoint, op, concurrency, startAt, warmupMs, durationMs },
    warmupMs + durationMs + 120_000,
  );
  ctx.progress.done();
  return {
    opsPerSec: (r.ops / durationMs) * 1000,
    latency: Histogram.fromJSON(r.latency).summary(),
    cpuPct: etcdCpuPercent(await c0, await c1),
    errors: r.errors,
  };
}

async function etcdSingleChanges(
  ctx: ScenarioContext,
  etcd: EtcdProcess,
  procs: Child[],
  writer: Child,
  watchers: number,
  repeats: number,
): Promise<SingleChangeResult> {
  const key = 'fan-etcd/x';
  const counts = split(watchers, procs.length);
  ctx.progress.track(`etcd: ${watchers} watchers`);
  await Promise.all(
    procs.map((p, k) => p.call('etcd-watch', { endpoint: etcd.endpoint, key, count: counts[k] }, 120_000)),
  );
  const completion = new Completion(procs, procs.length);
  const sends: { revision: number; sentAt: number }[] = [];
  let incomplete = 0;
  for (let r = 0; r < repeats; r++) {
    const { sentAt, revision } = await writer.call<{ sentAt: number; revision: number }>('etcd-change', {
      endpoint: etcd.endpoint,
      key,
      op: r % 2 === 0 ? 'put' : 'delete',
    });
    sends.push({ sentAt, revision });
    if (!(await completion.wait(revision, 20_000))) incomplete++;
    await sleep(ctx.smoke ? 5 : 30);
  }
  ctx.progress.done();
  const reports = await Promise.all(
    procs.map((p) =>
      p.call<{ revisions: RevisionArrivals[] }>('etcd-watch-report', {
        revisions: sends.map((s) => s.revision),
      }),
    ),
  );
  await Promise.all([...procs, writer].map((p) => p.call('etcd-close')));
  const { last, first, mean } = arrivalSummaries(sends, reports);
  return {
    watchers,
    repeats,
    last,
    first,
    mean,
    brokerCpuPct: Number.NaN,
    incomplete,
  };
}

export const etcd: Scenario = {
  name: 'etcd',
  title: 'etcd side by side (etcd3 client and JSON gateway) vs leasewire memory and journal batch',
  async run(ctx): Promise<ScenarioResult> {
    const binary = findEtcd();
    if (!binary) {
      return {
        tables: [],
        targets: [],
        data: null,
        skipped: 'no etcd binary on the PATH (Debian: apt-get install etcd-server); nothing compared',
      };
    }
    // Smoke windows stay long enough for a few etcd3 lock pairs (each several round trips plus a
    // first gRPC connect) on a loaded CI machine: a 150 ms window once measured none.
    const durationMs = ctx.durationMs ?? (ctx.smoke ? 600 : 5_000);
    const warmupMs = ctx.smoke ? 300 : 1_500;
    const concurrency = ctx.smoke ? 4 : 64;
    const watchers = ctx.smoke ? 12 : 1_000;
    const repeats = ctx.smoke ? 2 : 40;
    const dataDir = await mkdtemp(join(tmpdir(), 'leasewire-bench-etcd-batch-'));
    const etcdProc = await EtcdProcess.start(binary);
    const memory = await BrokerProcess.start({
      kind: 'leasewire',
      options: { store: 'memory', ...LOAD_LIMITS },
    });
    const batch = await BrokerProcess.start({
      kind: 'leasewire',
      options: { store: 'journal', fsync: 'batch', dataDir, ...LOAD_LIMITS },
    });
    // A load process, a writer, and watcher processes (each loads grpc-js for etcd3: fewer in smoke).
    const procs = await startLoadProcesses(ctx.smoke ? 3 : 6, 'etcd-cmp');
    const [load, writer, ...watcherProcs] = procs as [Child, Child, ...Child[]];
    const rows: Row[] = [];
    const raw: Record<string, unknown> = { etcdVersion: etcdProc.version };
    try {
      const lw = async (broker: BrokerProcess, c: Omit<CyclesCase, 'warmupMs' | 'durationMs'>) =>
        measureCycles(broker, [load], { ...c, warmupMs, durationMs }, ctx.progress);

      // Lock acquire + release: leasewire acquire/release round trips vs etcd3 Lock (grant + txn, revoke).
      for (const [inflight, label] of [
        [concurrency, `lock acquire or release, ${concurrency} in flight`],
        [1, 'lock acquire or release, one at a time'],
      ] as const) {
        const m = await lw(memory, { label: `memory ${label}`, connections: 1, inflight });
        const b = await lw(batch, { label: `batch ${label}`, connections: 1, inflight });
        const e = await etcdLoops(ctx, etcdProc, load, 'lock', inflight, durationMs, warmupMs);
        raw[label] = { memory: m, batch: b, etcd: e };
        rows.push({
          operation: label,
          unit: 'ops/s',
          higherIsBetter: true,
          memory: m.opsPerSec,
          batch: b.opsPerSec,
          etcd: e.opsPerSec,
        });
        rows.push({
          operation: `${label}: p50`,
          unit: 'ms',
          higherIsBetter: false,
          memory: m.latency.p50Ms,
          batch: b.latency.p50Ms,
          etcd: e.latency.p50Ms,
        });
      }
      // Lease grant: an acquire with its own ttlMs (each followed by its release) vs etcd LeaseGrant.
      {
        const label = `lease grant, ${concurrency} in flight`;
        const m = await lw(memory, {
          label: `memory ${label}`,
          connections: 1,
          inflight: concurrency,
          leaseTtlMs: 60_000,
        });
        const b = await lw(batch, {
          label: `batch ${label}`,
          connections: 1,
          inflight: concurrency,
          leaseTtlMs: 60_000,
        });
        const e = await etcdLoops(ctx, etcdProc, load, 'grant', concurrency, durationMs, warmupMs);
        raw[label] = { memory: m, batch: b, etcd: e };
        rows.push({
          operation: label,
          unit: 'ops/s',
          higherIsBetter: true,
          memory: m.opsPerSec,
          batch: b.opsPerSec,
          etcd: e.opsPerSec,
          note: 'leasewire: acquire with ttlMs, then release (both counted)',
        });
      }
      // Lease keepalive: leasewire keepalive requests vs etcd3 keepaliveOnce.
      {
        const label = `lease keepalive, ${concurrency} in flight`;
        const m = await lw(memory, {
          label: `memory ${label}`,
          connections: 1,
          inflight: concurrency,
          mode: 'keepalive',
        });
        const b = await lw(batch, {
          label: `batch ${label}`,
          connections: 1,
          inflight: concurrency,
          mode: 'keepalive',
        });
        const e = await etcdLoops(ctx, etcdProc, load, 'keepalive', concurrency, durationMs, warmupMs);
        raw[label] = { memory: m, batch: b, etcd: e };
        rows.push({
          operation: label,
          unit: 'ops/s',
          higherIsBetter: true,
          memory: m.opsPerSec,
          batch: b.opsPerSec,
          etcd: e.opsPerSec,
          note: 'leasewire: session keepalive request; etcd3: keepaliveOnce (opens a keepalive stream per call)',
        });
      }
      // One change to N watchers.
      await writer.call('open', { url: memory.url, count: 1, localAddresses: ['127.0.0.1'] });
      const fm = await singleChanges(ctx, memory, watcherProcs, writer, watchers, repeats);
      await writer.call('close-all');
      await writer.call('open', { url: batch.url, count: 1, localAddresses: ['127.0.0.1'] });
      const fb = await singleChanges(ctx, batch, watcherProcs, writer, watchers, repeats);
      await writer.call('close-all');
      const fe = await etcdSingleChanges(ctx, etcdProc, watcherProcs, writer, watchers, repeats);
      raw.watchers = { memory: fm, batch: fb, etcd: fe };
      for (const q of ['p50Ms', 'p99Ms'] as const) {
        rows.push({
          operation: `one change to ${watchers} watchers, last has it: ${q.slice(0, 3)}`,
          unit: 'ms',
          higherIsBetter: false,
          memory: fm.last[q],
          batch: fb.last[q],
          etcd: fe.last[q],
          note:
            q === 'p50Ms'
              ? 'leasewire: one WebSocket per watcher; etcd3: watchers multiplexed on one gRPC stream per load process'
              : undefined,
        });
      }
      // HTTP: autocannon against leasewire's HTTP API and etcd's JSON gateway.
      const http: HttpRow[] = [];
      if (await hasHttpApi(memory.httpUrl)) {
        for (const [lwTarget, etcdTarget] of [
          ['lw-get', 'etcd-range'],
          ['lw-session-open', 'etcd-grant'],
        ] as const) {
          const m = await runAutocannon(ctx, memory, load, lwTarget, 'memory');
          const b = await runAutocannon(ctx, batch, load, lwTarget, 'journal batch');
          const e = await runAutocannon(
            ctx,
            { httpUrl: etcdProc.endpoint },
            load,
            etcdTarget,
            `etcd ${etcdProc.version}`,
          );
          http.push(m, b, e);
          rows.push({
            operation: `HTTP ${HTTP_LABELS[lwTarget]} vs ${HTTP_LABELS[etcdTarget]}`,
            unit: 'req/s',
            higherIsBetter: true,
            memory: m.requestsPerSec,
            batch: b.requestsPerSec,
            etcd: e.requestsPerSec,
          });
        }
      } else {
        ctx.log('  !! the broker has no HTTP API yet: HTTP rows skipped');
      }
      raw.http = http;
    } finally {
      await stopAll(procs);
      await Promise.all([memory.stop(), batch.stop(), etcdProc.stop()]);
      await rm(dataDir, { recursive: true, force: true });
    }
    const better = (r: Row, lw: number | undefined) =>
      r.higherIsBetter ? times(lw, r.etcd) : times(r.etcd, lw);
    const table = {
      title: `Scenario 8 — leasewire vs etcd ${etcdProc.version} (single node, same machine, same run)`,
      columns: [
        'operation',
        'unit',
        'leasewire memory',
        'leasewire journal batch',
        'etcd',
        'memory vs etcd',
        'batch vs etcd',
        'note',
      ],
      rows: rows.map((r) => [
        r.operation,
        r.unit,
        r.memory,
        r.batch,
        r.etcd,
        better(r, r.memory),
        better(r, r.batch),
        r.note ?? '',
      ]),
      notes: [
        '"vs etcd" is how many times better leasewire is (throughput ratio, or etcd latency ÷ leasewire latency); below 1× etcd is better.',
        `leasewire rows use one WebSocket connection with the stated requests in flight; etcd rows use one etcd3 client (one gRPC channel) with the same number of concurrent loops.`,
        'etcd fsyncs its WAL on every commit: compare it with journal batch for durability; memory is the no-durability ceiling.',
      ],
    };
    const get = (op: string) => rows.find((r) => r.operation.startsWith(op));
    const targets: TargetCheck[] = ctx.smoke
      ? []
      : [
          check(
            'HTTP GET ≥ 3× etcd range (memory)',
            (get('HTTP GET')?.memory ?? Number.NaN) / (get('HTTP GET')?.etcd ?? Number.NaN),
            (v) => v >= 3,
            (v) => `${v.toFixed(2)}×`,
          ),
        ];
    return { tables: [table], targets, data: { rows, raw } };
  },
};
