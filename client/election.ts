import type { LeaseInfo } from '../shared/frames.js';
import { AsyncQueue } from './async-queue.js';
import { backoffDelayMs } from './backoff.js';
import type { Lease, LeaseLossReason, LeaseLostError } from './lease.js';
import type { AcquireOptions } from './leases.js';
import { type MetaInput, metaText } from './meta.js';
import type { Watch, WatchItem, WatchOptions } from './watch.js';

/** The current leader of an election, as observed through a watch on its name. */
export interface LeaderInfo {
  owner: string;
  sessionId: string;
  /** The leader's fencing token. */
  token: number;
  meta: Uint8Array | undefined;
  metaText: string | undefined;
}

/**
 * What happens in an election, from this client's point of view:
 * - `elected`: this client became leader; `lease.token` is the term's fencing token;
 * - `deposed`: this client lost leadership (its lease was lost); it campaigns again by itself;
 * - `leaderChanged`: the observed leader changed (anyone, this client included; null = none).
 */
export type ElectionChange =
  | { type: 'elected'; lease: Lease }
  | { type: 'deposed'; reason: LeaseLossReason }
  | { type: 'leaderChanged'; leader: LeaderInfo | null };

/** Options of {@link Client.elect}. */
export interface ElectOptions {
  /** Published while this client leads (e.g. its address); a string is sent as UTF-8. */
  meta?: MetaInput;
}

/** What an election needs from its client. */
export interface ElectionHost {
  acquire(name: string, options: AcquireOptions): Promise<Lease>;
  watch(prefix: string, options: WatchOptions): Promise<Watch>;
  /** The client is closed, or will never open a session again. */
  readonly finished: boolean;
}

const CHANGE_BUFFER = 64;
const RETRY = { initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2 };

/**
 * Leader election on one lease name, from {@link Client.elect}. Campaigning is a waiting acquire:
 * the first in line leads until its lease is lost or it resigns, then the next waiter takes over
 * (FIFO). A deposed client campaigns again by itself, also after its session expired and a new
 * one was opened. Changes come as an async iterable (`changes()`) or callbacks (`onChange`), like
 * the client's status.
 *
 * @example
 * const election = client.elect('services/scheduler', { meta: 'host-a:8080' });
 * for await (const change of election.changes()) {
 *   if (change.type === 'elected') startScheduling(change.lease.token, change.lease.signal);
 *   if (change.type === 'leaderChanged') console.log('leader is', change.leader?.metaText);
 * }
 */
export class Election {
  readonly name: string;
  readonly #host: ElectionHost;
  readonly #meta: MetaInput | undefined;
  readonly #stop = new AbortController();
  readonly #queues = new Set<AsyncQueue<ElectionChange>>();
  readonly #callbacks = new Set<(change: ElectionChange) => void>();
  #lease: Lease | undefined;
  #leader: LeaderInfo | null = null;
  #watch: Promise<Watch | undefined>;
  #ended = false;
  #resigning: Promise<void> | undefined;

  /** Elections come from `client.elect`; this constructor is internal. */
  constructor(host: ElectionHost, name: string, options: ElectOptions = {}) {
    this.#host = host;
    this.name = name;
    this.#meta = options.meta;
    this.#watch = host.watch(name, { onEvent: (item) => this.#observe(item) }).catch(() => undefined);
    void this.#campaign();
  }

  /** True while this client holds the leadership lease. */
  get isLeader(): boolean {
    return this.#lease?.held ?? false;
  }

  /** This client's leadership lease while it leads. */
  get lease(): Lease | undefined {
    return this.isLeader ? this.#lease : undefined;
  }

  /** The leader as last observed (null: none, or not known yet). */
  get leader(): LeaderInfo | null {
    return this.#leader;
  }

  /** Every change from now on; ends when the election ends (resign or client close). */
  changes(): AsyncIterableIterator<ElectionChange> {
    const q: AsyncQueue<ElectionChange> = new AsyncQueue(CHANGE_BUFFER, () => this.#queues.delete(q));
    if (this.#ended) q.end();
    else this.#queues.add(q);
    return q;
  }

  /** Calls `callback` for every change; returns a function that unsubscribes. */
  onChange(callback: (change: ElectionChange) => void): () => void {
    this.#callbacks.add(callback);
    return () => {
      this.#callbacks.delete(callback);
    };
  }

  /** Stops campaigning, releases the lease if leading (the next waiter takes over) and ends the election. */
  resign(): Promise<void> {
    this.#resigning ??= (async () => {
      const lease = this.#lease;
      this.#end();
      await lease?.release();
    })();
    return this.#resigning;
  }

  /** Internal: the client closed; its bye already released the lease. */
  end(): void {
    this.#end();
  }

  async #campaign(): Promise<void> {
    let failures = 0;
    while (!this.#ended) {
      let lease: Lease;
      try {
        const opts: AcquireOptions = { wait: true, signal: this.#stop.signal };
        if (this.#meta !== undefined) opts.meta = this.#meta;
        lease = await this.#host.acquire(this.name, opts);
        failures = 0;
      } catch {
        if (this.#ended || this.#host.finished) return;
        // Lost between grant and hand-out, a limit, a session change: try again after a pause.
        await pause(backoffDelayMs(failures++, RETRY), this.#stop.signal);
        continue;
      }
      if (this.#ended) {
        await lease.release().catch(noop);
        return;
      }
      this.#lease = lease;
      this.#emit({ type: 'elected', lease });
      const reason = await lossOf(lease, this.#stop.signal);
      if (this.#ended) return;
      this.#lease = undefined;
      this.#emit({ type: 'deposed', reason });
    }
  }

  #observe(item: WatchItem): void {
    if (item.type === 'snapshot') {
      const l = item.leases.find((x) => x.name === this.name);
      this.#setLeader(l ? leaderOf(l) : null);
      return;
    }
    const e = item.event;
    if (e.name !== this.name) return;
    switch (e.kind) {
      case 'acquired':
        this.#setLeader({
          owner: e.owner,
          sessionId: e.sessionId,
          token: e.token,
          meta: e.meta,
          metaText: metaText(e.meta),
        });
        break;
      case 'updated':
        if (this.#leader?.token === e.token)
          this.#setLeader({ ...this.#leader, meta: e.meta, metaText: metaText(e.meta) });
        break;
      case 'released':
      case 'expired':
        if (!this.#leader || this.#leader.token === e.token) this.#setLeader(null);
        break;
    }
  }

  #setLeader(next: LeaderInfo | null): void {
    const prev = this.#leader;
    if (prev === next) return;
    if (prev && next && prev.token === next.token && sameBytes(prev.meta, next.meta)) return;
    this.#leader = next;
    this.#emit({ type: 'leaderChanged', leader: next });
  }

  #emit(change: ElectionChange): void {
    if (this.#ended) return;
    for (const q of this.#queues) {
      if (!q.push(change)) {
        q.next();
        q.push(change);
      }
    }
    for (const cb of this.#callbacks) {
      try {
        cb(change);
      } catch {
        // A throwing subscriber must not stop the election.
      }
    }
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stop.abort();
    for (const q of this.#queues) q.end();
    this.#queues.clear();
    this.#callbacks.clear();
    void this.#watch.then((w) => w?.close());
  }
}

function leaderOf(l: LeaseInfo): LeaderInfo {
  return { owner: l.owner, sessionId: l.sessionId, token: l.token, meta: l.meta, metaText: metaText(l.meta) };
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  return a.every((v, i) => v === b[i]);
}

/** Resolves with the loss reason when the lease's signal aborts, or 'closed' when `stop` aborts first. */
function lossOf(lease: Lease, stop: AbortSignal): Promise<LeaseLossReason> {
  return new Promise((resolve) => {
    const reasonOf = (): LeaseLossReason =>
      (lease.signal.reason as LeaseLostError | undefined)?.reason ?? 'revoked';
    if (lease.signal.aborted) return resolve(reasonOf());
    if (stop.aborted) return resolve('closed');
    const onLoss = (): void => {
      stop.removeEventListener('abort', onStop);
      resolve(reasonOf());
    };
    const onStop = (): void => {
      lease.signal.removeEventListener('abort', onLoss);
      resolve('closed');
    };
    lease.signal.addEventListener('abort', onLoss, { once: true });
    stop.addEventListener('abort', onStop, { once: true });
  });
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function noop(): void {}
