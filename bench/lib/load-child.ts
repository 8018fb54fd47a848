/**
 * Child-process entry of the load generator. It holds a set of sessions (raw WebSocket
 * connections speaking the protocol directly) and runs the jobs the parent asks for. Several of
 * these run side by side, each with its own source addresses and file-descriptor budget.
 */
import { epochNow } from './clock.js';
import { openSessions } from './fleet.js';
import { Changer } from './jobs/changer.js';
import { type ContendArgs, runContend } from './jobs/contend.js';
import { type CyclesArgs, runCycles } from './jobs/cycles.js';
import type { EtcdLoopArgs } from './jobs/etcd.js';
import { ExpiryWatcher, holdNames, Waiters } from './jobs/expiry.js';
import type { HttpArgs } from './jobs/http.js';
import { Idlers } from './jobs/idle.js';
import { WatchTracker } from './jobs/watchers.js';
import { emit, serve } from './rpc.js';
import type { Session } from './session.js';

export interface OpenArgs {
  url: string;
  count: number;
  localAddresses?: string[];
  ttlMs?: number;
  owner?: string;
  concurrency?: number;
  /** Give up opening more after this long (the ramp of 19,900 sessions is slow on a busy machine). */
  deadlineMs?: number;
}

let sessions: Session[] = [];
let tracker: WatchTracker | undefined;
let changer: Changer | undefined;
let waiters: Waiters | undefined;
let expiryWatcher: ExpiryWatcher | undefined;
let idlers: Idlers | undefined;

serve(
  {
    open: async (args: OpenArgs) => {
      const started = performance.now();
      const { sessions: opened, failures } = await openSessions(
        args.count,
        {
          url: args.url,
          ttlMs: args.ttlMs,
          owner: args.owner ?? `load-${process.pid}`,
          localAddresses: args.localAddresses,
          concurrency: args.concurrency,
          deadlineMs: args.deadlineMs,
        },
        (n) => emit('opened', { n }),
      );
      sessions.push(...opened);
      return {
        opened: opened.length,
        failures: failures.slice(0, 5),
        failureCount: failures.length,
        ms: performance.now() - started,
      };
    },
    ids: () => sessions.map((s) => s.sessionId),
    cycles: (args: CyclesArgs) => runCycles(sessions, args),
    contend: (args: ContendArgs) => runContend(sessions, args),
    watch: async (args: { prefix: string; notify: boolean; timeoutMs?: number }) => {
      tracker = new WatchTracker(sessions, args.notify);
      return tracker.watch(args.prefix, args.timeoutMs ?? 60_000);
    },
    'watch-report': (args: { revisions?: number[] }) => {
      if (!tracker) throw new Error('watch first');
      return tracker.report(args.revisions);
    },
    'watch-reset': (args: { notify?: boolean }) => {
      tracker?.reset();
      if (args.notify !== undefined) tracker?.setNotify(args.notify);
      return null;
    },
    'watch-totals': () => {
      if (!tracker) throw new Error('watch first');
      return tracker.totals();
    },
    change: (args: { name: string; op: 'acquire' | 'release' }) => {
      changer ??= new Changer(sessions[0]!);
      return changer.change(args.name, args.op);
    },
    burst: (args: { changes: number; inflight: number; namePrefix: string }) => {
      changer ??= new Changer(sessions[0]!);
      return changer.burst(args.changes, args.inflight, args.namePrefix);
    },
    hold: (args: { namePrefix: string; offset: number; timeoutMs?: number }) =>
      holdNames(sessions, args.namePrefix, args.offset, args.timeoutMs ?? 60_000),
    'wait-acquire': (args: { namePrefix: string; offset: number; timeoutMs?: number }) => {
      waiters = new Waiters(sessions);
      return waiters.queue(args.namePrefix, args.offset, args.timeoutMs ?? 60_000);
    },
    'waits-report': () => ({
      grantedAt: [...(waiters?.grantedAt ?? new Map())],
      errors: waiters?.errors ?? 0,
    }),
    'expiry-watch': async (args: { prefix: string }) => {
      expiryWatcher = new ExpiryWatcher(sessions[0]!);
      await expiryWatcher.watch(args.prefix, 30_000);
      return null;
    },
    'expiry-report': () => expiryWatcher?.expired ?? [],
    kill: () => {
      const killedAt = epochNow();
      for (const s of sessions) s.ws.kill();
      return { killedAt, killed: sessions.length };
    },
    idle: () => {
      idlers = new Idlers(sessions);
      return idlers.stats();
    },
    'keepalive-start': () => idlers?.startKeepalives(),
    'keepalive-stop': () => idlers?.stopKeepalives(),
    'idle-stats': () => idlers?.stats(),
    'cpu-now': () => process.cpuUsage(),
    http: async (args: HttpArgs) => (await import('./jobs/http.js')).runHttp(args),
    // etcd3 (gRPC) is loaded only by the processes that talk to etcd.
    'etcd-loops': async (args: EtcdLoopArgs) => (await import('./jobs/etcd.js')).runEtcdLoops(args),
    'etcd-watch': async (args: { endpoint: string; key: string; count: number }) =>
      (await import('./jobs/etcd.js')).etcdWatch(args),
    'etcd-watch-report': async (args: { revisions: number[] }) =>
      (await import('./jobs/etcd.js')).etcdWatchReport(args),
    'etcd-change': async (args: { endpoint: string; key: string; op: 'put' | 'delete' }) =>
      (await import('./jobs/etcd.js')).etcdChange(args),
    'etcd-close': async () => (await import('./jobs/etcd.js')).etcdClose(),
    'close-all': () => {
      idlers?.stopKeepalives();
      for (const s of sessions) s.ws.close();
      const n = sessions.length;
      sessions = [];
      // Jobs hold on to sessions: the next `open` starts from scratch.
      tracker = undefined;
      changer = undefined;
      waiters = undefined;
      expiryWatcher = undefined;
      idlers = undefined;
      return n;
    },
  },
  { pid: process.pid },
);
