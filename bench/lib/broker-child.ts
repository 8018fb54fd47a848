/**
 * Child-process entry that hosts the system under test: the leasewire broker (memory or journal
 * store) or the bare-ws baseline. The parent reads its CPU, memory and event-loop lag over IPC,
 * and, for the latency scenarios, traces store events and deadlines here, inside the broker,
 * where the times are exact. argv[2]: JSON of {@link BrokerChildConfig}.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { type RunningBroker, startBroker } from '../../server/index.js';
import type { LeaseStore, SessionNotice } from '../../server/storage/lease-store.js';
import type { LeaseEvent } from '../../shared/frames.js';
import { type BareServer, startBareServer } from './bare-server.js';
import type { BrokerChildConfig, BrokerReady, BrokerStats, TraceRecord } from './broker-types.js';
import { epochNow, monoToEpoch } from './clock.js';
import { checkFifo } from './fifo.js';
import { serve } from './rpc.js';

const config = JSON.parse(process.argv[2] ?? '{}') as BrokerChildConfig;

let broker: RunningBroker | undefined;
let bare: BareServer | undefined;
let ready: BrokerReady;
if (config.kind === 'bare') {
  bare = await startBareServer();
  ready = { url: bare.url, httpUrl: `http://127.0.0.1:${bare.port}`, port: bare.port, pid: process.pid };
} else {
  broker = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'error', ...config.options });
  ready = { url: broker.url, httpUrl: broker.httpUrl, port: broker.port, pid: process.pid };
}

let lag: ReturnType<typeof monitorEventLoopDelay> | undefined;
let lagResolutionMs = 10;

// ---- tracing (only while asked: it costs a little on the hot path) ----
let tracing = false;
let trace: TraceRecord[] = [];
const TRACE_LIMIT = 2_000_000;
let traceKinds = new Set<string>();
let acquireSeq = 0;

function pushTrace(r: TraceRecord): void {
  if (tracing && trace.length < TRACE_LIMIT) trace.push(r);
}

if (broker) {
  const store = broker.store;
  store.onEvents((events: readonly LeaseEvent[]) => {
    if (!tracing) return;
    const at = epochNow();
    for (const e of events) {
      if (traceKinds.has(e.kind)) {
        pushTrace({
          t: 'event',
          at,
          kind: e.kind,
          name: e.name,
          sessionId: e.sessionId,
          revision: e.revision,
          eventAt: e.at,
        });
      }
    }
  });
  store.onNotice((n: SessionNotice) => {
    if (!tracing || !traceKinds.has('waitGranted') || n.type !== 'waitGranted') return;
    pushTrace({
      t: 'grant',
      at: epochNow(),
      name: n.lease.name,
      sessionId: n.sessionId,
      waitId: n.waitId,
      revision: n.lease.revision,
    });
  });
  // Queue-join order as the store applies it: the reference for the FIFO check.
  const original = store.acquire.bind(store);
  (store as { acquire: LeaseStore['acquire'] }).acquire = (sessionId, name, params) => {
    const p = original(sessionId, name, params);
    if (tracing && traceKinds.has('queued')) {
      const seq = ++acquireSeq;
      p.then(
        (r) => {
          if (r.kind === 'queued')
            pushTrace({
              t: 'join',
              at: epochNow(),
              seq,
              name,
              sessionId,
              waitId: params.waitId,
              position: r.position,
            });
        },
        () => {},
      );
    }
    return p;
  };
}

function stats(): BrokerStats {
  const s = broker?.store.stats;
  return {
    at: epochNow(),
    cpu: process.cpuUsage(),
    memory: process.memoryUsage(),
    elu: performance.eventLoopUtilization(),
    sessions: s?.sessions ?? 0,
    leases: s?.leases ?? 0,
    revision: s?.revision ?? 0,
    connections: broker?.broker.connectionCount ?? 0,
  };
}

serve(
  {
    stats,
    gc: () => {
      const g = (globalThis as { gc?: () => void }).gc;
      if (g) {
        g();
        g();
      }
      return { ...stats(), gcAvailable: g !== undefined };
    },
    'lag-start': (args: { resolutionMs?: number }) => {
      lag?.disable();
      lagResolutionMs = args.resolutionMs ?? 10;
      lag = monitorEventLoopDelay({ resolution: lagResolutionMs });
      lag.enable();
      return null;
    },
    'lag-stop': () => {
      if (!lag) throw new Error('lag-start first');
      lag.disable();
      // The histogram holds the whole timer period; lag is what exceeds the resolution.
      const l = lag;
      const q = (p: number) => Math.max(0, l.percentile(p) / 1e6 - lagResolutionMs);
      const out = {
        samples: l.count,
        p50Ms: q(50),
        p99Ms: q(99),
        maxMs: Math.max(0, l.max / 1e6 - lagResolutionMs),
        meanMs: Math.max(0, l.mean / 1e6 - lagResolutionMs),
      };
      lag = undefined;
      return out;
    },
    deadlines: (args: { sessionIds: string[] }) => {
      if (!broker) throw new Error('no deadlines on the baseline server');
      return args.sessionIds.map((id) => {
        const d = broker?.store.sessionDeadline(id);
        return d === undefined ? null : monoToEpoch(d);
      });
    },
    'trace-start': (args: { kinds: string[] }) => {
      traceKinds = new Set(args.kinds);
      trace = [];
      tracing = true;
      return null;
    },
    'trace-stop': (args: { fifo?: boolean }) => {
      tracing = false;
      const out = trace;
      trace = [];
      // The FIFO check runs here: shipping a few hundred thousand records over IPC costs more.
      if (args.fifo)
        return { fifo: checkFifo(out), records: out.length, truncated: out.length >= TRACE_LIMIT };
      return out;
    },
    exit: async () => {
      setTimeout(() => process.exit(0), 5_000).unref();
      await broker?.close();
      await bare?.close();
      // Exit outside the call so the reply gets out; --cpu-prof writes its file on this exit.
      setImmediate(() => process.exit(0));
      return null;
    },
  },
  ready,
);
