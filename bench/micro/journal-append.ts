// Journal append throughput and latency: 100-byte payloads, one at a time and 64 in flight, in each
// fsync mode. Run: npx tsx bench/micro/journal-append.ts [durationMs per case, default 1500]
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { JournalWriter } from '../../server/storage/journal/journal-writer.js';
import type { FsyncMode } from '../../server/storage/journal/journal-writer-options.js';

const durationMs = Number(process.argv[2] ?? 1500);
const warmupMs = 200;
const payload = new Uint8Array(100).fill(0x61);

interface CaseResult {
  mode: FsyncMode;
  concurrency: number;
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  recordsPerSync: number | undefined;
  recordsPerWrite: number;
  loopDelayP99Ms: number;
}

async function runCase(mode: FsyncMode, concurrency: number): Promise<CaseResult> {
  const dir = await mkdtemp(join(tmpdir(), 'leasewire-bench-journal-'));
  try {
    const writer = await JournalWriter.open(dir, { fsync: mode });
    const latenciesMs: number[] = [];
    let measuring = false;
    let stopAt = performance.now() + warmupMs;
    const worker = async (): Promise<void> => {
      while (performance.now() < stopAt) {
        const started = performance.now();
        await writer.append(payload);
        if (measuring) latenciesMs.push(performance.now() - started);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));

    const before = writer.stats;
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    measuring = true;
    const started = performance.now();
    stopAt = started + durationMs;
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedMs = performance.now() - started;
    loopDelay.disable();
    const after = writer.stats;
    await writer.close();

    latenciesMs.sort((a, b) => a - b);
    const at = (q: number) =>
      latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(q * latenciesMs.length))]!;
    const records = after.records - before.records;
    const syncs = after.syncs - before.syncs;
    return {
      mode,
      concurrency,
      ops: records,
      opsPerSec: (records / elapsedMs) * 1000,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      recordsPerSync: syncs > 0 ? records / syncs : undefined,
      recordsPerWrite: records / (after.batches - before.batches),
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(
  `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown cpu'}, tmpdir ${tmpdir()}, ` +
    `${durationMs} ms per case, 100-byte payloads, default options (maxBatchRecords 1024, maxBatchDelayMs 0)`,
);
const rows: CaseResult[] = [];
for (const mode of ['none', 'batch', 'always'] as const) {
  for (const concurrency of [1, 64]) rows.push(await runCase(mode, concurrency));
}
console.table(
  rows.map((r) => ({
    mode: r.mode,
    inFlight: r.concurrency,
    'ops/s': Math.round(r.opsPerSec),
    'p50 ms': r.p50Ms.toFixed(3),
    'p99 ms': r.p99Ms.toFixed(3),
    'records/sync': r.recordsPerSync === undefined ? '-' : r.recordsPerSync.toFixed(1),
    'records/write': r.recordsPerWrite.toFixed(1),
    'loop delay p99 ms': r.loopDelayP99Ms.toFixed(2),
  })),
);
