import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerProcess, cpuPercent } from '../lib/broker-process.js';
import type { HttpResult, HttpTarget } from '../lib/jobs/http.js';
import { startLoadProcesses, stopAll } from '../lib/load-process.js';
import { LOAD_LIMITS } from '../lib/measure.js';
import type { Child } from '../lib/rpc.js';
import { check, type Scenario, type ScenarioContext, type ScenarioResult } from '../lib/scenario.js';

/**
 * Scenario 7 — the HTTP API under autocannon (64 keep-alive connections): GET a held lease,
 * acquire + release with pre-made sessions (one per connection, distinct names), session
 * keepalive, and opening sessions; memory store, plus acquire + release on journal fsync batch.
 */
export interface HttpRow extends HttpResult {
  store: string;
  brokerCpuPct: number;
}

export const HTTP_LABELS: Record<HttpTarget, string> = {
  'lw-get': 'GET /v1/leases/{name}',
  'lw-acquire-release': 'POST …/acquire + …/release',
  'lw-keepalive': 'POST /v1/sessions/{id}/keepalive',
  'lw-session-open': 'POST /v1/sessions',
  'etcd-range': 'POST /v3/kv/range',
  'etcd-grant': 'POST /v3/lease/grant',
};

/** Whether this broker serves the HTTP API (it was being built alongside the bench). */
export async function hasHttpApi(httpUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${httpUrl}/v1/leases/${encodeURIComponent('probe/x')}`);
    const body = (await res.json()) as { code?: string; message?: string };
    return !(res.status === 404 && /no route/.test(body.message ?? ''));
  } catch {
    return false;
  }
}

export async function runAutocannon(
  ctx: ScenarioContext,
  broker: { httpUrl: string; stats?: () => ReturnType<BrokerProcess['stats']> },
  load: Child,
  target: HttpTarget,
  store: string,
): Promise<HttpRow> {
  const durationMs = ctx.durationMs ?? (ctx.smoke ? 300 : 10_000);
  const warmupMs = ctx.smoke ? 0 : 2_000;
  ctx.progress.track(`http ${store}: ${HTTP_LABELS[target]}`, durationMs + warmupMs);
  const s0 = await broker.stats?.();
  const r = await load.call<HttpResult>(
    'http',
    { base: broker.httpUrl, target, connections: ctx.smoke ? 8 : 64, durationMs, warmupMs },
    durationMs + warmupMs + 120_000,
  );
  const s1 = await broker.stats?.();
  ctx.progress.done();
  // Broker CPU over warmup + run (autocannon does not report when its warmup ends).
  return { ...r, store, brokerCpuPct: s0 && s1 ? cpuPercent(s0, s1) : Number.NaN };
}

export function httpTable(title: string, rows: HttpRow[]) {
  return {
    title,
    columns: [
      'request',
      'store',
      'req/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'non-2xx',
      'errors',
      'server CPU %',
      'autocannon CPU %',
    ],
    rows: rows.map((r) => [
      HTTP_LABELS[r.target],
      r.store,
      r.requestsPerSec,
      r.latency.p50Ms,
      r.latency.p99Ms,
      r.latency.maxMs,
      r.non2xx,
      r.errors + r.timeouts,
      r.brokerCpuPct,
      r.loadCpuPct,
    ]),
    notes: [
      'req/s counts 2xx responses only; acquire + release counts each request (an acquire or a release) once.',
      'autocannon runs in its own process; latencies are its (whole-millisecond) figures.',
    ],
  };
}

export const http: Scenario = {
  name: 'http',
  title: 'HTTP API under autocannon: GET lease, acquire+release, keepalive, session open',
  async run(ctx): Promise<ScenarioResult> {
    const dataDir = await mkdtemp(join(tmpdir(), 'leasewire-bench-http-'));
    const memory = await BrokerProcess.start(
      { kind: 'leasewire', options: { store: 'memory', ...LOAD_LIMITS } },
      { profileDir: ctx.profileDir, profileName: 'http-memory.cpuprofile' },
    );
    const journal = await BrokerProcess.start({
      kind: 'leasewire',
      options: { store: 'journal', fsync: 'batch', dataDir, ...LOAD_LIMITS },
    });
    const [load] = await startLoadProcesses(1, 'autocannon');
    const rows: HttpRow[] = [];
    try {
      if (!(await hasHttpApi(memory.httpUrl))) {
        return {
          tables: [],
          targets: [],
          data: null,
          skipped: 'this broker has no HTTP API yet (GET /v1/leases/{name} has no route)',
        };
      }
      for (const target of ['lw-get', 'lw-acquire-release', 'lw-keepalive', 'lw-session-open'] as const) {
        rows.push(await runAutocannon(ctx, memory, load!, target, 'memory'));
      }
      rows.push(await runAutocannon(ctx, journal, load!, 'lw-acquire-release', 'journal batch'));
      for (const r of rows)
        ctx.log(`  ${HTTP_LABELS[r.target]} (${r.store}): ${Math.round(r.requestsPerSec)}/s`);
    } finally {
      await stopAll([load!]);
      await Promise.all([memory.stop(), journal.stop()]);
      await rm(dataDir, { recursive: true, force: true });
    }
    const find = (t: HttpTarget, store = 'memory') => rows.find((r) => r.target === t && r.store === store);
    const targets = ctx.smoke
      ? []
      : [
          check(
            'HTTP acquire+release ≥ 25,000 req/s',
            find('lw-acquire-release')?.requestsPerSec,
            (v) => v >= 25_000,
            (v) => `${Math.round(v)}/s`,
          ),
          check(
            'HTTP GET ≥ 35,000 req/s',
            find('lw-get')?.requestsPerSec,
            (v) => v >= 35_000,
            (v) => `${Math.round(v)}/s`,
          ),
        ];
    return {
      tables: [httpTable(`Scenario 7 — HTTP API, autocannon, ${ctx.smoke ? 8 : 64} connections`, rows)],
      targets,
      data: rows,
    };
  },
};
