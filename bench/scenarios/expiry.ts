import { BrokerProcess } from '../lib/broker-process.js';
import type { TraceRecord } from '../lib/broker-types.js';
import { epochNow, sleep } from '../lib/clock.js';
import { Histogram, type LatencySummary } from '../lib/histogram.js';
import type { CyclesResult } from '../lib/jobs/cycles.js';
import type { ObservedExpiry } from '../lib/jobs/expiry.js';
import { sourceAddress, startLoadProcesses, stopAll } from '../lib/load-process.js';
import { LOAD_LIMITS } from '../lib/measure.js';
import { quantileBound, scrapeHistogram, subtract } from '../lib/prom.js';
import type { Child } from '../lib/rpc.js';
import { check, type Scenario, type ScenarioContext, type ScenarioResult } from '../lib/scenario.js';

/**
 * Scenario 5 — expiry. N holders (session TTL 1 s) each hold a name with a waiter queued behind
 * them; then all holders' sockets are dropped at once (RST, no bye). Each session's deadline is
 * read inside the broker (monotonic, converted to epoch); the lag of each revocation behind it is
 * measured where the broker emits the `expired` event, where a watcher receives it, and until the
 * waiter holds the lease. Once idle, once under a 100×16 acquire/release load.
 */
const HOLDER_TTL_MS = 1_000;

interface ExpiryCase {
  label: string;
  holders: number;
  underLoad: boolean;
  /** Broker: expired event emitted − deadline. */
  revocation: LatencySummary;
  /** Broker: expired event dispatched − the event's own `at` (wall ms): time between table and listeners. */
  dispatchDelay: LatencySummary;
  /** Watcher: expired event received − deadline. */
  watcherSees: LatencySummary;
  /** The event's own `at` (whole ms) − deadline. */
  eventAt: LatencySummary;
  /** Waiter: granted received − deadline. */
  nextHolder: LatencySummary;
  missing: { deadlines: number; revocations: number; watcher: number; grants: number };
  loadOpsPerSec: number | undefined;
  /** The broker's own `leasewire_expiry_lag_seconds` (timer firing vs due), bucket upper bounds. */
  timerLag: { count: number; p50AtMostMs: number | undefined; p99AtMostMs: number | undefined } | undefined;
}

const toMs = (s: number | undefined) => (s === undefined ? undefined : s * 1000);

async function runCase(
  ctx: ScenarioContext,
  broker: BrokerProcess,
  procs: { holders: Child; waiters: Child; watcher: Child; load: Child },
  holders: number,
  underLoad: boolean,
): Promise<ExpiryCase> {
  const label = underLoad ? 'under 100×16 load' : 'idle';
  const prefix = `exp-${underLoad ? 'load' : 'idle'}/`;
  ctx.progress.track(`expiry ${label}: setting up ${holders} holders and waiters`);
  await procs.holders.call('open', {
    url: broker.url,
    count: holders,
    ttlMs: HOLDER_TTL_MS,
    localAddresses: [sourceAddress(0)],
  });
  await procs.waiters.call('open', {
    url: broker.url,
    count: holders,
    ttlMs: 30_000,
    localAddresses: [sourceAddress(1)],
  });
  await procs.watcher.call('open', { url: broker.url, count: 1, ttlMs: 30_000 });
  await procs.holders.call('hold', { namePrefix: prefix, offset: 0 });
  await procs.waiters.call('wait-acquire', { namePrefix: prefix, offset: 0 });
  await procs.watcher.call('expiry-watch', { prefix });
  const ids = await procs.holders.call<string[]>('ids');

  let load: Promise<CyclesResult> | undefined;
  const loadMs = ctx.smoke ? 1_500 : 4_000;
  if (underLoad) {
    const connections = ctx.smoke ? 4 : 100;
    await procs.load.call('open', {
      url: broker.url,
      count: connections,
      localAddresses: [sourceAddress(2)],
    });
    load = procs.load.call<CyclesResult>(
      'cycles',
      {
        inflight: ctx.smoke ? 4 : 16,
        namePrefix: 'exp-load-cycles/',
        startAt: epochNow() + 50,
        warmupMs: 0,
        durationMs: loadMs,
      },
      loadMs + 60_000,
    );
    await sleep(ctx.smoke ? 300 : 1_000); // let the load reach its pace before the kill
  }
  const lagBefore = await scrapeHistogram(broker.httpUrl, 'leasewire_expiry_lag_seconds');
  await broker.call('trace-start', { kinds: ['expired', 'waitGranted'] });
  ctx.progress.track(`expiry ${label}: holders killed, waiting for revocations`);
  await procs.holders.call('kill');
  const deadlines = await broker.call<(number | null)[]>('deadlines', { sessionIds: ids });

  const giveUpAt = performance.now() + HOLDER_TTL_MS + 15_000;
  let observed: ObservedExpiry[] = [];
  let grants: [string, number][] = [];
  while (performance.now() < giveUpAt) {
    await sleep(50);
    observed = await procs.watcher.call<ObservedExpiry[]>('expiry-report');
    grants = (await procs.waiters.call<{ grantedAt: [string, number][] }>('waits-report')).grantedAt;
    if (observed.length >= holders && grants.length >= holders) break;
  }
  const trace = await broker.call<TraceRecord[]>('trace-stop');
  const lagAfter = await scrapeHistogram(broker.httpUrl, 'leasewire_expiry_lag_seconds');
  const timerLag = lagAfter ? subtract(lagAfter, lagBefore) : undefined;
  const loadResult = load ? await load : undefined;
  ctx.progress.done();
  await Promise.all(
    [procs.holders, procs.waiters, procs.watcher, procs.load].map((p) => p.call('close-all')),
  );

  const deadlineBySession = new Map<string, number>();
  ids.forEach((id, i) => {
    const d = deadlines[i];
    if (d !== null && d !== undefined) deadlineBySession.set(id, d);
  });
  const nameToSession = new Map(ids.map((id, i) => [`${prefix}${i}`, id]));
  const revocation = new Histogram();
  const watcherSees = new Histogram();
  const eventAt = new Histogram();
  const nextHolder = new Histogram();
  const dispatchDelay = new Histogram();
  let revocations = 0;
  for (const r of trace) {
    if (r.t !== 'event' || r.kind !== 'expired') continue;
    const d = deadlineBySession.get(r.sessionId);
    if (d === undefined) continue;
    revocations++;
    revocation.recordMs(r.at - d);
    dispatchDelay.recordMs(r.at - r.eventAt);
  }
  for (const e of observed) {
    const d = deadlineBySession.get(e.sessionId);
    if (d === undefined) continue;
    watcherSees.recordMs(e.arrivedAt - d);
    eventAt.recordMs(e.at - d);
  }
  for (const [name, at] of grants) {
    const sid = nameToSession.get(name);
    const d = sid ? deadlineBySession.get(sid) : undefined;
    if (d !== undefined) nextHolder.recordMs(at - d);
  }
  return {
    label,
    holders,
    underLoad,
    revocation: revocation.summary(),
    dispatchDelay: dispatchDelay.summary(),
    watcherSees: watcherSees.summary(),
    eventAt: eventAt.summary(),
    nextHolder: nextHolder.summary(),
    missing: {
      deadlines: holders - deadlineBySession.size,
      revocations: holders - revocations,
      watcher: holders - observed.length,
      grants: holders - grants.length,
    },
    loadOpsPerSec: loadResult ? (loadResult.ops / loadMs) * 1000 : undefined,
    timerLag: timerLag
      ? {
          count: timerLag.at(-1)?.count ?? 0,
          p50AtMostMs: toMs(quantileBound(timerLag, 0.5)),
          p99AtMostMs: toMs(quantileBound(timerLag, 0.99)),
        }
      : undefined,
  };
}

export const expiry: Scenario = {
  name: 'expiry',
  title: 'kill 1,000 holders at once: revocation lag behind the deadline, hand-over to waiters',
  async run(ctx): Promise<ScenarioResult> {
    const holders = ctx.smoke ? 30 : 1_000;
    const broker = await BrokerProcess.start(
      { kind: 'leasewire', options: { store: 'memory', ...LOAD_LIMITS } },
      { profileDir: ctx.profileDir, profileName: 'expiry-memory.cpuprofile' },
    );
    const [holderProc, waiterProc, watcherProc, loadProc] = await startLoadProcesses(4, 'expiry');
    const procs = { holders: holderProc!, waiters: waiterProc!, watcher: watcherProc!, load: loadProc! };
    const cases: ExpiryCase[] = [];
    try {
      for (const underLoad of [false, true]) {
        const c = await runCase(ctx, broker, procs, holders, underLoad);
        ctx.log(
          `  ${c.label}: revocation p99 ${c.revocation.p99Ms.toFixed(2)} ms, next holder p99 ${c.nextHolder.p99Ms.toFixed(2)} ms`,
        );
        cases.push(c);
      }
    } finally {
      await stopAll(Object.values(procs));
      await broker.stop();
    }
    const fmt = (s: LatencySummary) => [s.p50Ms, s.p99Ms, s.maxMs];
    const table = {
      title: `Scenario 5 — ${holders} holders killed at once (session TTL ${HOLDER_TTL_MS} ms): lag behind each session's deadline, ms (memory store)`,
      columns: [
        'case',
        'revoked p50',
        'revoked p99',
        'revoked max',
        'watcher p50',
        'watcher p99',
        'watcher max',
        'next holder p50',
        'next holder p99',
        'next holder max',
        'timer lag p50/p99 ≤ (metrics)',
        'load ops/s',
        'missing',
      ],
      rows: cases.map((c) => [
        c.label,
        ...fmt(c.revocation),
        ...fmt(c.watcherSees),
        ...fmt(c.nextHolder),
        c.timerLag ? `${c.timerLag.p50AtMostMs ?? '—'} / ${c.timerLag.p99AtMostMs ?? '—'}` : '—',
        c.loadOpsPerSec,
        Object.values(c.missing).reduce((a, b) => a + b, 0),
      ]),
      notes: [
        'revoked: the broker emits the expired event (timed inside the broker process); watcher: a watching client receives it; next holder: the queued waiter receives its grant.',
        "Deadlines are read from the broker (store.sessionDeadline) right after the kill; a session's deadline is the last time it was heard + its TTL.",
        "timer lag: the broker's leasewire_expiry_lag_seconds histogram over the case (how late its expiry timer fired vs the heap's due time; bucket upper bounds).",
      ],
    };
    const [idle, loaded] = cases;
    const targets = ctx.smoke
      ? []
      : [
          check(
            'expiry p99 ≤ 5 ms idle',
            idle?.revocation.p99Ms,
            (v) => v <= 5,
            (v) => `${v.toFixed(2)} ms`,
          ),
          check(
            'expiry p99 ≤ 50 ms under load',
            loaded?.revocation.p99Ms,
            (v) => v <= 50,
            (v) => `${v.toFixed(2)} ms`,
          ),
        ];
    return { tables: [table], targets, data: cases };
  },
};
