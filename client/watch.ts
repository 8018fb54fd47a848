import { LeasewireError } from '../shared/errors.js';
import type { LeaseEvent, LeaseInfo } from '../shared/frames.js';
import { AsyncQueue } from './async-queue.js';
import type { ResolvedOptions } from './options.js';
import { closedError, type Session } from './session.js';
import { WatchCursor } from './watch-cursor.js';

/**
 * Why a snapshot item was delivered:
 * - `initial`: the first state of a watch started without `fromRevision`;
 * - `compacted`: the broker's history no longer reached back to the watch's last revision (after
 *   a long disconnect): events were missed, and this snapshot replaces everything seen before;
 * - `overflow`: the consumer fell more than the buffer size behind; buffered items were dropped
 *   and this snapshot replaces everything seen before;
 * - `reset`: the broker came back with another history (a new `epoch`, e.g. a memory broker that
 *   restarted): revisions seen before mean nothing there, and this snapshot replaces everything.
 */
export type SnapshotReason = 'initial' | 'compacted' | 'overflow' | 'reset';

/** What a watch yields: a full state, then every change after it in revision order. */
export type WatchItem =
  | { type: 'snapshot'; revision: number; leases: LeaseInfo[]; reason: SnapshotReason }
  | { type: 'event'; event: LeaseEvent };

/** Options of {@link Client.watch}. */
export interface WatchOptions {
  /** Start after this revision: replay the events since then instead of a snapshot. */
  fromRevision?: number;
  /**
   * Called synchronously for every item. A watch with `onEvent` buffers nothing for iteration
   * unless it is also iterated, so it never overflows.
   */
  onEvent?: (item: WatchItem) => void;
  /** Items held for a slow iterator; defaults to the client's `watchBufferSize`. */
  bufferSize?: number;
}

/** What a watch needs from its client. */
export interface WatchHost {
  readonly session: Session;
  readonly options: ResolvedOptions;
  readonly registry: WatchRegistry;
}

/** The registry's handle on one watch. */
export interface WatchLink {
  attach(): void;
  /** Forget the position: the next attach takes a snapshot (the broker's history changed). */
  reset(): void;
  detach(): void;
  offer(events: readonly LeaseEvent[]): void;
  settle(): void;
  end(error?: Error): void;
}

/** All live watches of a client; re-attaches them on every new connection (watches belong to a connection). */
export class WatchRegistry {
  private readonly links = new Set<WatchLink>();

  add(link: WatchLink): void {
    this.links.add(link);
  }

  remove(link: WatchLink): void {
    this.links.delete(link);
  }

  /** `historyChanged`: the broker's epoch differs from the last one seen (W4). */
  sessionStarted(historyChanged = false): void {
    for (const l of [...this.links]) {
      if (historyChanged) l.reset();
      l.attach();
    }
  }

  connectionLost(): void {
    for (const l of this.links) l.detach();
  }

  dispatch(events: readonly LeaseEvent[]): void {
    for (const l of [...this.links]) l.offer(events);
  }

  settle(): void {
    for (const l of [...this.links]) l.settle();
  }

  endAll(error?: Error): void {
    for (const l of [...this.links]) l.end(error);
    this.links.clear();
  }
}

/**
 * A live view of the leases under a prefix, from {@link Client.watch}: an async iterable of
 * {@link WatchItem}s. Survives reconnects: after a resume (or a new session) it re-attaches from
 * the last revision it saw, so the consumer gets every event once, in order, with no gap; if the
 * broker's history no longer reaches back, it delivers a `snapshot` with reason `compacted`.
 *
 * Slow consumers: up to `bufferSize` items wait for the iterator. Past that, the buffer is
 * dropped and the watch starts over with a fresh snapshot (reason `overflow`).
 *
 * @example
 * const watch = await client.watch('rooms/');
 * for await (const item of watch) {
 *   if (item.type === 'snapshot') rooms = new Map(item.leases.map((l) => [l.name, l]));
 *   else if (item.event.kind === 'acquired') rooms.set(item.event.name, item.event);
 *   else if (item.event.kind !== 'updated') rooms.delete(item.event.name);
 * }
 */
export class Watch implements AsyncIterable<WatchItem> {
  readonly prefix: string;
  /** Settles when the watch ends: resolves after close(), rejects if the broker refused it. */
  readonly done: Promise<void>;
  readonly #host: WatchHost;
  readonly #cursor: WatchCursor;
  readonly #queue: AsyncQueue<WatchItem>;
  readonly #onEvent: ((item: WatchItem) => void) | undefined;
  readonly #link: WatchLink;
  #watchId: number | undefined;
  #generation = 0;
  #closed = false;
  #iterating = false;
  #nextSnapshotReason: SnapshotReason = 'initial';
  #first:
    | { resolve: () => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }
    | undefined;
  #finishDone!: (error?: Error) => void;

  /** Watches come from `client.watch`; this constructor is internal. */
  constructor(host: WatchHost, prefix: string, options: WatchOptions = {}) {
    this.#host = host;
    this.prefix = prefix;
    this.#cursor = new WatchCursor(prefix, options.fromRevision);
    this.#onEvent = options.onEvent;
    this.#queue = new AsyncQueue(options.bufferSize ?? host.options.watchBufferSize, () => {
      void this.close();
    });
    this.done = new Promise<void>((resolve, reject) => {
      this.#finishDone = (error) => (error ? reject(error) : resolve());
    });
    this.done.catch(noop);
    this.#link = {
      attach: () => this.#attach(),
      reset: () => {
        this.#cursor.forgetPosition();
        this.#nextSnapshotReason = 'reset';
      },
      detach: () => {
        this.#watchId = undefined;
        this.#cursor.detach();
      },
      offer: (events) => {
        for (const e of events)
          for (const d of this.#cursor.offer(e)) this.#deliver({ type: 'event', event: d });
      },
      settle: () => {
        for (const d of this.#cursor.settle()) this.#deliver({ type: 'event', event: d });
      },
      end: (error) => this.#end(error),
    };
  }

  /** The last revision this watch has seen; pass it as `fromRevision` to continue elsewhere. */
  get revision(): number | undefined {
    return this.#cursor.lastRevision;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stops the watch and ends the iteration (buffered items are still yielded). */
  async close(): Promise<void> {
    if (this.#closed) return;
    const watchId = this.#watchId;
    this.#end();
    const { session, options } = this.#host;
    if (watchId !== undefined && session.connected) {
      await session
        .call({ type: 'unwatch', watchId }, { policy: 'never', timeoutMs: options.requestTimeoutMs })
        .promise.catch(noop);
    }
  }

  /** One consumer per watch: a second iteration throws TypeError. Leaving the loop closes the watch. */
  [Symbol.asyncIterator](): AsyncIterator<WatchItem> {
    if (this.#iterating) throw new TypeError('a watch can be iterated only once');
    this.#iterating = true;
    return this.#queue;
  }

  /** Internal: resolves once the first attach is answered. */
  start(): Promise<void> {
    const { registry, session, options } = this.#host;
    registry.add(this.#link);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#end(
          new LeasewireError('UNAVAILABLE', `the watch was not set up within ${options.requestTimeoutMs} ms`),
        );
      }, options.requestTimeoutMs);
      this.#first = { resolve, reject, timer };
    });
    if (session.connected) this.#attach();
    return ready;
  }

  #attach(): void {
    const { session, options } = this.#host;
    if (this.#closed || !session.connected) return;
    const generation = ++this.#generation;
    const fields = this.#cursor.attach();
    const call = session.call(
      { type: 'watch', ...fields },
      { policy: 'never', timeoutMs: options.requestTimeoutMs },
    );
    call.promise.then(
      ({ reply }) => {
        if (reply.type !== 'watching') return;
        if (generation !== this.#generation || this.#closed) {
          if (session.connected)
            session
              .call({ type: 'unwatch', watchId: reply.watchId }, { policy: 'never', timeoutMs: null })
              .promise.catch(noop);
          return;
        }
        this.#watchId = reply.watchId;
        const held = this.#cursor.attached(reply.revision, reply.snapshot !== undefined, reply.events);
        if (reply.snapshot !== undefined) {
          const reason = this.#nextSnapshotReason;
          this.#nextSnapshotReason = 'initial';
          this.#deliver({ type: 'snapshot', revision: reply.revision, leases: reply.snapshot, reason });
        }
        for (const e of held) this.#deliver({ type: 'event', event: e });
        if (this.#first) {
          clearTimeout(this.#first.timer);
          this.#first.resolve();
          this.#first = undefined;
        }
      },
      (error: unknown) => {
        if (generation !== this.#generation || this.#closed) return;
        if (error instanceof LeasewireError && error.code === 'COMPACTED') {
          // W4: history does not reach back; start over from a snapshot and say so.
          this.#cursor.forgetPosition();
          this.#nextSnapshotReason = 'compacted';
          this.#attach();
          return;
        }
        // A dropped connection re-attaches on the next welcome; anything else ends the watch.
        if (!session.connected) return;
        this.#end(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  #deliver(item: WatchItem): void {
    if (this.#closed) return;
    if (this.#onEvent) {
      try {
        this.#onEvent(item);
      } catch {
        // A throwing callback must not stop delivery to the rest of the client.
      }
      if (!this.#iterating) return;
    }
    if (!this.#queue.push(item)) this.#overflow();
  }

  /** The consumer is too slow: drop the backlog and start over from a fresh snapshot. */
  #overflow(): void {
    this.#queue.clear();
    const { session, options } = this.#host;
    const watchId = this.#watchId;
    this.#watchId = undefined;
    if (watchId !== undefined && session.connected) {
      session
        .call({ type: 'unwatch', watchId }, { policy: 'never', timeoutMs: options.requestTimeoutMs })
        .promise.catch(noop);
    }
    this.#cursor.detach();
    this.#cursor.forgetPosition();
    this.#nextSnapshotReason = 'overflow';
    this.#attach();
  }

  #end(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    this.#host.registry.remove(this.#link);
    this.#queue.end(error);
    if (this.#first) {
      clearTimeout(this.#first.timer);
      this.#first.reject(error ?? closedError());
      this.#first = undefined;
    }
    this.#finishDone(error);
  }
}

function noop(): void {}
