import type { Etcd3 } from 'etcd3';
import { epochNow } from '../clock.js';
import { Histogram, type HistogramJson } from '../histogram.js';
import { emit } from '../rpc.js';
import { bump, untilEpoch } from './timing.js';
import type { RevisionArrivals } from './watchers.js';

/**
 * etcd's side of the comparison, through the etcd3 npm client (gRPC), from a load process:
 * lock acquire + release, lease grant, lease keepalive, and watchers plus a writer.
 */
let client: Etcd3 | undefined;

async function etcd(endpoint: string): Promise<Etcd3> {
  if (!client) {
    const { Etcd3 } = await import('etcd3');
    client = new Etcd3({ hosts: endpoint });
  }
  return client;
}

export interface EtcdLoopArgs {
  endpoint: string;
  op: 'lock' | 'grant' | 'keepalive';
  concurrency: number;
  startAt: number;
  warmupMs: number;
  durationMs: number;
}

export interface EtcdLoopResult {
  op: string;
  /** Round trips as the leasewire figures count them: a lock acquire or release, a grant, a keepalive. */
  ops: number;
  latency: HistogramJson;
  errors: Record<string, number>;
  cpuUs: number;
}

export async function runEtcdLoops(args: EtcdLoopArgs): Promise<EtcdLoopResult> {
  const c = await etcd(args.endpoint);
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  let ops = 0;
  await untilEpoch(args.startAt);
  const measureFrom = performance.now() + args.warmupMs;
  const measureTo = measureFrom + args.durationMs;
  let cpu0 = process.cpuUsage();
  let cpuUs = 0;
  setTimeout(() => {
    cpu0 = process.cpuUsage();
  }, args.warmupMs);
  const cpuTimer = setTimeout(() => {
    const d = process.cpuUsage(cpu0);
    cpuUs = d.user + d.system;
  }, args.warmupMs + args.durationMs);
  const timed = async (fn: () => Promise<unknown>) => {
    const t = performance.now();
    await fn();
    const now = performance.now();
    if (now >= measureFrom && now < measureTo) {
      hist.recordMs(now - t);
      ops++;
    }
  };
  const loop = async (i: number) => {
    const lease = args.op === 'keepalive' ? c.lease(60, { autoKeepAlive: false }) : undefined;
    if (lease) await lease.grant();
    while (performance.now() < measureTo) {
      try {
        if (args.op === 'lock') {
          const lock = c.lock(`bench-lock/${process.pid}/${i}`).ttl(30);
          await timed(() => lock.acquire());
          await timed(() => lock.release());
        } else if (args.op === 'grant') {
          await timed(() => c.lease(60, { autoKeepAlive: false }).grant());
        } else {
          await timed(() => lease!.keepaliveOnce());
        }
      } catch (err) {
        bump(errors, err instanceof Error ? err.constructor.name : String(err));
      }
    }
    await lease?.revoke().catch(() => {});
  };
  await Promise.all(Array.from({ length: args.concurrency }, (_, i) => loop(i)));
  clearTimeout(cpuTimer);
  if (cpuUs === 0) {
    const d = process.cpuUsage(cpu0);
    cpuUs = d.user + d.system;
  }
  return { op: args.op, ops, latency: hist.toJSON(), errors, cpuUs };
}

// ---- watchers ----

const arrivals = new Map<number, RevisionArrivals>();
let watcherCount = 0;

/** `count` watchers on one key over this process's client (the etcd3 client multiplexes them). */
export async function etcdWatch(args: { endpoint: string; key: string; count: number }): Promise<number> {
  const c = await etcd(args.endpoint);
  watcherCount = args.count;
  const record = (rev: number) => {
    const at = epochNow();
    let a = arrivals.get(rev);
    if (!a) {
      a = { revision: rev, count: 0, firstAt: at, lastAt: at, sumAt: 0 };
      arrivals.set(rev, a);
    }
    a.count++;
    a.lastAt = at;
    a.sumAt += at;
    if (a.count === watcherCount) emit('rev-complete', { revision: rev, lastAt: at });
  };
  const watchers = await Promise.all(
    Array.from({ length: args.count }, () => c.watch().key(args.key).create()),
  );
  for (const w of watchers) {
    w.on('put', (kv) => record(Number(kv.mod_revision)));
    w.on('delete', (kv) => record(Number(kv.mod_revision)));
  }
  return watchers.length;
}

export function etcdWatchReport(args: { revisions: number[] }): { revisions: RevisionArrivals[] } {
  return {
    revisions: args.revisions
      .map((r) => arrivals.get(r))
      .filter((a): a is RevisionArrivals => a !== undefined),
  };
}

/** One change to the watched key; resolves with the send time and the change's revision. */
export async function etcdChange(args: {
  endpoint: string;
  key: string;
  op: 'put' | 'delete';
}): Promise<{ sentAt: number; revision: number }> {
  const c = await etcd(args.endpoint);
  const sentAt = epochNow();
  if (args.op === 'put') {
    const res = await c.put(args.key).value(String(sentAt)).exec();
    return { sentAt, revision: Number(res.header.revision) };
  }
  const res = await c.delete().key(args.key).exec();
  return { sentAt, revision: Number(res.header.revision) };
}

export async function etcdClose(): Promise<void> {
  client?.close();
  client = undefined;
  arrivals.clear();
}
