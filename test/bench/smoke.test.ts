import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// Runs `npm run bench -- --smoke` (every scenario with tiny sizes) so the bench never rots.
// It checks that each scenario completed and measured something; never how fast: this machine
// is shared and timing thresholds here would only make the suite flaky.

interface Summary {
  scenarios: { name: string; ok: boolean; skipped?: string; error?: string; file?: string }[];
}

const outDir = mkdtempSync(join(tmpdir(), 'leasewire-bench-smoke-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

function runSmoke(timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out', outDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BENCH_PROGRESS: '0' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      // TERM first: the bench then stops its etcd (children without IPC would outlive a KILL).
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      reject(new Error(`bench --smoke did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The `data` a scenario wrote to its JSON file; fails the test if it wrote none. */
function scenarioData<T>(summary: Summary, name: string): T {
  const s = summary.scenarios.find((x) => x.name === name);
  if (!s?.file) throw new Error(`scenario ${name} wrote no results`);
  return (JSON.parse(readFileSync(s.file, 'utf8')) as { data: T }).data;
}

describe('bench --smoke', () => {
  let summary: Summary;
  let output = '';

  // ~25 s on an otherwise idle 2-core machine; the hard bound leaves room for a busy one.
  it('runs every scenario to completion', { timeout: 130_000 }, async () => {
    const run = await runSmoke(120_000);
    output = run.output;
    const file = readdirSync(outDir).find((f) => f.startsWith('summary-'));
    expect(file, `no summary written:\n${output}`).toBeDefined();
    summary = JSON.parse(readFileSync(join(outDir, file as string), 'utf8')) as Summary;
    const failed = summary.scenarios.filter((s) => !s.ok);
    expect(failed, output).toEqual([]);
    expect(run.code, output).toBe(0);
  });

  it('measures non-zero throughput with no errors for the broker and the baseline', () => {
    const rows = scenarioData<{ bare: Measured; memory: Measured }[]>(summary, 'throughput');
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) for (const m of [r.bare, r.memory]) expectSaneCycles(m);
  });

  it('measures every store, journal modes included, in the durability run', () => {
    const rows = scenarioData<(Measured & { store: string })[]>(summary, 'durability');
    expect(new Set(rows.map((r) => r.store))).toEqual(
      new Set(['memory', 'journal fsync none', 'journal fsync batch', 'journal fsync always']),
    );
    for (const r of rows) expectSaneCycles(r);
  });

  it('delivers every fanned-out change to every watcher', () => {
    const { singles, burst } = scenarioData<{
      singles: {
        watchers: number;
        repeats: number;
        incomplete: number;
        last: { count: number; p50Ms: number };
      }[];
      burst: { deliveries: number; expected: number; deliveriesPerSec: number };
    }>(summary, 'fanout');
    expect(singles.length).toBe(2);
    for (const s of singles) {
      expect(s.incomplete).toBe(0);
      expect(s.last.count).toBe(s.repeats);
      expect(s.last.p50Ms).toBeGreaterThan(0);
    }
    expect(burst.deliveries).toBe(burst.expected);
    expect(burst.deliveriesPerSec).toBeGreaterThan(0);
  });

  it('grants contended names in FIFO order to every client', () => {
    const r = scenarioData<{
      clients: number;
      grantsPerSec: number;
      minGrantsPerClient: number;
      fifo: { grants: number; outOfOrder: number; overtaken: number };
      errors: Record<string, number>;
      stuck: number;
    }>(summary, 'contention');
    expect(r.grantsPerSec).toBeGreaterThan(0);
    expect(r.fifo.grants).toBeGreaterThan(0);
    expect(r.fifo.outOfOrder).toBe(0);
    expect(r.fifo.overtaken).toBe(0);
    expect(r.errors).toEqual({});
    expect(r.stuck).toBe(0);
  });

  it('keeps every idle session alive and measures what they cost', () => {
    const r = scenarioData<{
      target: number;
      opened: number;
      closedDuringRun: number;
      heapPerSessionKiB: number;
      windows: { brokerCpuPct: number; pingsPerSec: number; keepalivesPerSec: number; lagP99Ms: number }[];
    }>(summary, 'idle');
    expect(r.opened).toBe(r.target);
    expect(r.closedDuringRun).toBe(0);
    expect(r.windows.length).toBe(2);
    for (const w of r.windows) {
      expect(w.brokerCpuPct).toBeGreaterThan(0);
      expect(w.pingsPerSec).toBeGreaterThan(0);
      expect(w.lagP99Ms).toBeGreaterThanOrEqual(0);
    }
    expect(r.windows[1]?.keepalivesPerSec).toBeGreaterThan(0);
  });

  it('revokes every killed holder and hands each lease to its waiter', () => {
    const cases = scenarioData<
      {
        holders: number;
        missing: Record<string, number>;
        revocation: { count: number };
        nextHolder: { count: number };
      }[]
    >(summary, 'expiry');
    expect(cases.length).toBe(2);
    for (const c of cases) {
      expect(c.missing).toEqual({ deadlines: 0, revocations: 0, watcher: 0, grants: 0 });
      expect(c.revocation.count).toBe(c.holders);
      expect(c.nextHolder.count).toBe(c.holders);
    }
  });

  it('drives the HTTP API with autocannon without errors', () => {
    const rows = scenarioData<
      { target: string; requestsPerSec: number; non2xx: number; errors: number; timeouts: number }[] | null
    >(summary, 'http');
    if (rows === null) return; // the broker has no HTTP API: the run said so loudly
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.requestsPerSec, r.target).toBeGreaterThan(0);
      expect(r.non2xx + r.errors + r.timeouts, r.target).toBe(0);
    }
  });

  it('compares with etcd when an etcd binary is installed', () => {
    const d = scenarioData<{
      rows: { operation: string; memory?: number; batch?: number; etcd?: number }[];
    } | null>(summary, 'etcd');
    if (d === null) return; // no etcd on the PATH: the run said so loudly
    expect(d.rows.length).toBeGreaterThan(0);
    for (const r of d.rows) {
      expect(r.memory, r.operation).toBeGreaterThan(0);
      expect(r.batch, r.operation).toBeGreaterThan(0);
      expect(r.etcd, r.operation).toBeGreaterThan(0);
    }
  });
});

interface Measured {
  opsPerSec: number;
  latency: { count: number; p50Ms: number; p99Ms: number };
  brokerCpuPct: number;
  errors: Record<string, number>;
  stuck: number;
}

function expectSaneCycles(m: Measured): void {
  expect(m.opsPerSec).toBeGreaterThan(0);
  expect(m.latency.count).toBeGreaterThan(0);
  expect(m.latency.p50Ms).toBeGreaterThan(0);
  expect(m.latency.p99Ms).toBeGreaterThanOrEqual(m.latency.p50Ms);
  expect(m.brokerCpuPct).toBeGreaterThan(0);
  expect(m.errors).toEqual({});
  expect(m.stuck).toBe(0);
}
