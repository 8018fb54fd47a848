import { BrokerProcess, cpuPercent } from '../lib/broker-process.js';
import { sleep } from '../lib/clock.js';
import { Histogram, type LatencySummary } from '../lib/histogram.js';
import type { RevisionArrivals } from '../lib/jobs/watchers.js';
import { sourceAddress, split, startLoadProcesses, stopAll } from '../lib/load-process.js';
import { LOAD_LIMITS } from '../lib/measure.js';
import type { Child } from '../lib/rpc.js';
import { check, type Scenario, type ScenarioContext, type ScenarioResult } from '../lib/scenario.js';

/**
 * Scenario 4 — fan-out. N watcher sessions (spread over 4 load processes and source addresses)
 * watch one prefix; a writer in its own process makes one change at a time and the time from
 * sending it until the last watcher has the event is recorded, over repeats. Then a burst: many
 * changes as fast as the writer can make them, to 1,000 watchers: deliveries per second.
 */
const WATCHER_PROCS = 4;

interface Totals {
  deliveries: number;
  frames: number;
  firstAt: number;
  lastAt: number;
  errors: number;
  closed: number;
}

export interface SingleChangeResult {
  watchers: number;
  repeats: number;
  /** Send → the last watcher has it. */
  last: LatencySummary;
  /** Send → the first watcher has it. */
  first: LatencySummary;
  /** Send → each watcher has it (mean over watchers), per repeat. */
  mean: LatencySummary;
  brokerCpuPct: number;
  incomplete: number;
}

interface BurstResult {
  watchers: number;
  changes: number;
  deliveries: number;
  expected: number;
  seconds: number;
  deliveriesPerSec: number;
  eventsPerFrame: number;
  brokerCpuPct: number;
  writerSeconds: number;
}

export class Completion {
  private readonly done = new Map<number, number>();
  private readonly waiting = new Map<number, () => void>();

  constructor(
    children: Child[],
    private readonly needed: number,
  ) {
    for (const c of children) {
      c.on('rev-complete', (d) => {
        const rev = (d as { revision: number }).revision;
        const n = (this.done.get(rev) ?? 0) + 1;
        this.done.set(rev, n);
        if (n === this.needed) this.waiting.get(rev)?.();
      });
    }
  }

  wait(revision: number, timeoutMs: number): Promise<boolean> {
    if ((this.done.get(revision) ?? 0) >= this.needed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(revision);
        resolve(false);
      }, timeoutMs);
      this.waiting.set(revision, () => {
        clearTimeout(timer);
        this.waiting.delete(revision);
        resolve(true);
      });
    });
  }
}

async function openWatchers(broker: BrokerProcess, procs: Child[], n: number, prefix: string): Promise<void> {
  const counts = split(n, procs.length);
  await Promise.all(
    procs.map((p, k) =>
      p.call(
        'open',
        { url: broker.url, count: counts[k], localAddresses: [sourceAddress(k)], concurrency: 64 },
        300_000,
      ),
    ),
  );
  await Promise.all(procs.map((p) => p.call('watch', { prefix, notify: true, timeoutMs: 120_000 }, 150_000)));
}

export async function singleChanges(
  ctx: ScenarioContext,
  broker: BrokerProcess,
  procs: Child[],
  writer: Child,
  watchers: number,
  repeats: number,
): Promise<SingleChangeResult> {
  const prefix = `fan${watchers}/`;
  ctx.progress.track(`fan-out: opening ${watchers} watchers`);
  await openWatchers(broker, procs, watchers, prefix);
  const activeProcs = procs.filter((_, k) => split(watchers, procs.length)[k]! > 0);
  const completion = new Completion(activeProcs, activeProcs.length);
  const sends: { revision: number; sentAt: number }[] = [];
  let incomplete = 0;
  const s0 = await broker.stats();
  ctx.progress.track(`fan-out: ${repeats} single changes to ${watchers} watchers`);
  for (let r = 0; r < repeats; r++) {
    const op = r % 2 === 0 ? 'acquire' : 'release';
    const { sentAt, revision } = await writer.call<{ sentAt: number; revision: number }>('change', {
      name: `${prefix}x`,
      op,
    });
    sends.push({ revision, sentAt });
    if (!(await completion.wait(revision, 20_000))) incomplete++;
    await sleep(ctx.smoke ? 5 : 30); // let the broker settle between changes
  }
  const s1 = await broker.stats();
  ctx.progress.done();
  const reports = await Promise.all(
    activeProcs.map((p) =>
      p.call<{ revisions: RevisionArrivals[] }>('watch-report', { revisions: sends.map((s) => s.revision) }),
    ),
  );
  const { last, first, mean } = arrivalSummaries(sends, reports);
  await Promise.all(procs.map((p) => p.call('close-all')));
  return {
    watchers,
    repeats,
    last,
    first,
    mean,
    brokerCpuPct: cpuPercent(s0, s1),
    incomplete,
  };
}

async function burst(
  ctx: ScenarioContext,
  broker: BrokerProcess,
  procs: Child[],
  writer: Child,
  watchers: number,
  changes: number,
): Promise<BurstResult> {
  const prefix = 'burst/';
  ctx.progress.track(`burst: opening ${watchers} watchers`);
  await openWatchers(broker, procs, watchers, prefix);
  const active = procs.filter((_, k) => split(watchers, procs.length)[k]! > 0);
  await Promise.all(active.map((p) => p.call('watch-reset', { notify: false })));
  const expected = changes * watchers;
  const s0 = await broker.stats();
  ctx.progress.track(`burst: ${changes} changes to ${watchers} watchers`);
  const w = await writer.call<{ firstSentAt: number; lastRepliedAt: number }>(
    'burst',
    { changes, inflight: 64, namePrefix: `${prefix}n` },
    120_000,
  );
  let totals: Totals[] = [];
  const giveUpAt = performance.now() + 60_000;
  while (performance.now() < giveUpAt) {
    totals = await Promise.all(active.map((p) => p.call<Totals>('watch-totals')));
    if (totals.reduce((a, t) => a + t.deliveries, 0) >= expected) break;
    await sleep(50);
  }
  const s1 = await broker.stats();
  ctx.progress.done();
  await Promise.all(procs.map((p) => p.call('close-all')));
  const deliveries = totals.reduce((a, t) => a + t.deliveries, 0);
  const frames = totals.reduce((a, t) => a + t.frames, 0);
  const lastAt = Math.max(...totals.map((t) => t.lastAt));
  const seconds = (lastAt - w.firstSentAt) / 1000;
  return {
    watchers,
    changes,
    deliveries,
    expected,
    seconds,
    deliveriesPerSec: deliveries / seconds,
    eventsPerFrame: frames ? deliveries / frames : 0,
    brokerCpuPct: cpuPercent(s0, s1),
    writerSeconds: (w.lastRepliedAt - w.firstSentAt) / 1000,
  };
}

export const fanout: Scenario = {
  name: 'fanout',
  title: 'one change to 1,000 and 10,000 watchers; burst deliveries/s',
  async run(ctx): Promise<ScenarioResult> {
    const sizes = ctx.smoke
      ? [
          { watchers: 20, repeats: 5 },
          { watchers: 60, repeats: 3 },
        ]
      : [
          { watchers: 1_000, repeats: 60 },
          { watchers: 10_000, repeats: 30 },
        ];
    const burstSize = ctx.smoke ? { watchers: 20, changes: 100 } : { watchers: 1_000, changes: 3_000 };
    const broker = await BrokerProcess.start(
      { kind: 'leasewire', options: { store: 'memory', ...LOAD_LIMITS } },
      { profileDir: ctx.profileDir, profileName: 'fanout-memory.cpuprofile' },
    );
    const procs = await startLoadProcesses(WATCHER_PROCS + 1, 'fanout');
    const writer = procs.pop() as Child;
    const singles: SingleChangeResult[] = [];
    let b: BurstResult | undefined;
    try {
      await writer.call('open', { url: broker.url, count: 1, localAddresses: ['127.0.0.1'] });
      for (const s of sizes) {
        const r = await singleChanges(ctx, broker, procs, writer, s.watchers, s.repeats);
        ctx.log(
          `  ${s.watchers} watchers: last watcher p50 ${r.last.p50Ms.toFixed(2)} ms, p99 ${r.last.p99Ms.toFixed(2)} ms`,
        );
        singles.push(r);
      }
      b = await burst(ctx, broker, procs, writer, burstSize.watchers, burstSize.changes);
      ctx.log(`  burst: ${Math.round(b.deliveriesPerSec)} deliveries/s`);
    } finally {
      await stopAll([...procs, writer]);
      await broker.stop();
    }
    const tables = [
      {
        title: 'Scenario 4a — one change to N watchers: send → last watcher has it (memory store)',
        columns: [
          'watchers',
          'repeats',
          'last p50 ms',
          'last p99 ms',
          'last max ms',
          'first p50 ms',
          'mean p50 ms',
          'broker CPU %',
          'incomplete',
        ],
        rows: singles.map((r) => [
          r.watchers,
          r.repeats,
          r.last.p50Ms,
          r.last.p99Ms,
          r.last.maxMs,
          r.first.p50Ms,
          r.mean.p50Ms,
          r.brokerCpuPct,
          r.incomplete,
        ]),
        notes: [
          `Watchers are spread over ${WATCHER_PROCS} load processes; the writer is a fifth. Times are epoch clocks calibrated per process (±0.05 ms).`,
          'The change is an acquire or a release of one name (alternating); each produces one event.',
        ],
      },
      {
        title: 'Scenario 4b — burst fan-out (memory store)',
        columns: [
          'watchers',
          'changes',
          'deliveries',
          'seconds',
          'deliveries/s',
          'events per frame',
          'writer s',
          'broker CPU %',
        ],
        rows: b
          ? [
              [
                b.watchers,
                b.changes,
                b.deliveries,
                b.seconds,
                b.deliveriesPerSec,
                b.eventsPerFrame,
                b.writerSeconds,
                b.brokerCpuPct,
              ],
            ]
          : [],
        notes: ['seconds: from the first change sent until the last watcher has the last event.'],
      },
    ];
    const [k1, k10] = singles;
    const targets = ctx.smoke
      ? []
      : [
          check(
            '1,000 watchers p50 ≤ 12 ms',
            k1?.last.p50Ms,
            (v) => v <= 12,
            (v) => `${v.toFixed(2)} ms`,
          ),
          check(
            '1,000 watchers p99 ≤ 30 ms',
            k1?.last.p99Ms,
            (v) => v <= 30,
            (v) => `${v.toFixed(2)} ms`,
          ),
          check(
            '10,000 watchers p50 ≤ 95 ms',
            k10?.last.p50Ms,
            (v) => v <= 95,
            (v) => `${v.toFixed(1)} ms`,
          ),
          check(
            '10,000 watchers max ≤ 140 ms',
            k10?.last.maxMs,
            (v) => v <= 140,
            (v) => `${v.toFixed(1)} ms`,
          ),
          check(
            'burst ≥ 430,000 deliveries/s',
            b?.deliveriesPerSec,
            (v) => v >= 430_000,
            (v) => `${Math.round(v)}/s`,
          ),
        ];
    return { tables, targets, data: { singles, burst: b } };
  },
};

/**
 * For each change sent, when the last, the first and the average watcher had it (ms after the
 * send), from every load process's arrival report. Changes no watcher saw are left out.
 */
export function arrivalSummaries(
  sends: readonly { revision: number; sentAt: number }[],
  reports: readonly { revisions: RevisionArrivals[] }[],
): { last: LatencySummary; first: LatencySummary; mean: LatencySummary } {
  const last = new Histogram();
  const first = new Histogram();
  const mean = new Histogram();
  for (const s of sends) {
    let lastAt = 0;
    let firstAt = Number.POSITIVE_INFINITY;
    let sum = 0;
    let count = 0;
    for (const rep of reports) {
      const a = rep.revisions.find((x) => x.revision === s.revision);
      if (!a) continue;
      lastAt = Math.max(lastAt, a.lastAt);
      firstAt = Math.min(firstAt, a.firstAt);
      sum += a.sumAt;
      count += a.count;
    }
    if (count === 0) continue;
    last.recordMs(lastAt - s.sentAt);
    first.recordMs(firstAt - s.sentAt);
    mean.recordMs(sum / count - s.sentAt);
  }
  return { last: last.summary(), first: first.summary(), mean: mean.summary() };
}
