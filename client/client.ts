import { LeasewireError } from '../shared/errors.js';
import type { LeaseInfo } from '../shared/frames.js';
import { WS_PATH } from '../shared/version.js';
import { Election, type ElectOptions } from './election.js';
import type { Lease } from './lease.js';
import { type AcquireOptions, checkName, LeaseBook, resolveAcquireOptions } from './leases.js';
import { type ConnectOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Session } from './session.js';
import type { ClientStatus, StatusChange } from './status.js';
import { Watch, type WatchOptions, WatchRegistry } from './watch.js';

/**
 * Opens a session with a leasewire broker and resolves once the broker welcomed it. Rejects with
 * the broker's {@link LeasewireError} (e.g. UNSUPPORTED_VERSION) or the connection error if the
 * first attempt fails; after that the client reconnects by itself. A URL without a path gets `/v1`.
 *
 * @example
 * const client = await connect('ws://127.0.0.1:7420', { ttlMs: 10_000, owner: 'worker-1' });
 * await client.withLease('jobs/nightly', async (lease) => runJob(lease.token, lease.signal));
 * await client.close();
 */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<Client> {
  const resolved = resolveOptions(options);
  const client = new Client(endpoint(url), resolved);
  await client.start();
  return client;
}

function endpoint(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new TypeError(`url is not a valid URL: ${String(url)}`, { cause });
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:')
    throw new TypeError('url must start with ws:// or wss://');
  if (u.pathname === '/' || u.pathname === '') u.pathname = WS_PATH;
  return u.toString();
}

/**
 * A connection to a leasewire broker: one session, kept alive across reconnects. Create it with
 * {@link connect}. All request methods return promises; while disconnected they wait (up to
 * `requestTimeoutMs`) and go out after the session is resumed.
 */
export class Client {
  readonly #session: Session;
  readonly #book: LeaseBook;
  readonly #watches = new WatchRegistry();
  readonly #elections = new Set<Election>();
  readonly #options: ResolvedOptions;
  /** The broker history's epoch at the last welcome. */
  #epoch: string | undefined;

  /** Use {@link connect}. */
  constructor(url: string, options: ResolvedOptions) {
    this.#options = options;
    this.#session = new Session(url, options, {
      sessionStarted: (welcome, resumed) => {
        if (resumed) this.#book.resumed(welcome.leases);
        else this.#book.newSession();
        // W4: revisions only mean something within one epoch of the broker's history.
        const historyChanged = this.#epoch !== undefined && welcome.epoch !== this.#epoch;
        this.#epoch = welcome.epoch;
        this.#watches.sessionStarted(historyChanged);
      },
      connectionLost: () => this.#watches.connectionLost(),
      sessionMaybeExpired: () => this.#book.loseAll('expired', true),
      sessionEnded: (reason) => this.#book.sessionEnded(reason),
      push: (frame) => {
        if (frame.type === 'events') this.#watches.dispatch(frame.events);
        else this.#book.onLost(frame);
      },
      afterFrame: (frame) => {
        if (frame.type !== 'events') this.#watches.settle();
      },
      clientClosed: (byeConfirmed) => {
        this.#book.closed(byeConfirmed);
        this.#watches.endAll();
        for (const e of this.#elections) e.end();
        this.#elections.clear();
      },
    });
    this.#book = new LeaseBook(this.#session, options);
  }

  /** Internal: opens the first session (used by {@link connect}). */
  start(): Promise<void> {
    return this.#session.start();
  }

  /** Where the session stands now. */
  get status(): ClientStatus {
    return this.#session.status.status;
  }

  /** The broker's id for the current session (changes when a new session replaces an expired one). */
  get sessionId(): string | undefined {
    return this.#session.sessionId;
  }

  /** The session TTL the broker granted. */
  get ttlMs(): number {
    return this.#session.ttlMs;
  }

  /**
   * Every status change from now on, as an async iterable; ends after `closed`.
   *
   * @example
   * for await (const { status, reason } of client.statusChanges()) console.log(status, reason ?? '');
   */
  statusChanges(): AsyncIterableIterator<StatusChange> {
    return this.#session.status.changes();
  }

  /** Calls `callback` on every status change; returns a function that unsubscribes. */
  onStatus(callback: (change: StatusChange) => void): () => void {
    return this.#session.status.on(callback);
  }

  /**
   * Acquires a lease, waiting behind the current holder unless `wait: false` (then LEASE_HELD or
   * LOCK_DELAY rejects). Acquiring a lease this client already holds returns the same lease.
   * Rejects with WAIT_TIMEOUT after `waitTimeoutMs`, or with `signal.reason` when aborted.
   *
   * @example
   * const lease = await client.acquire('jobs/nightly', { waitTimeoutMs: 60_000, meta: 'host-a' });
   */
  async acquire(name: string, options?: AcquireOptions): Promise<Lease> {
    const lease = await this.#book.acquire(name, resolveAcquireOptions(options, true), false);
    if (!lease) throw new LeasewireError('LEASE_HELD');
    return lease;
  }

  /**
   * Acquires a lease if it is free right now; null if another session holds it (or it is in
   * lock-delay). Never waits.
   *
   * @example
   * const lease = await client.tryAcquire('cache/rebuild');
   * if (!lease) return; // someone else is on it
   */
  tryAcquire(name: string, options?: Omit<AcquireOptions, 'wait' | 'waitTimeoutMs'>): Promise<Lease | null> {
    try {
      return this.#book.acquire(name, resolveAcquireOptions({ ...options, wait: false }, false), true);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Acquires `name`, runs `fn` with the lease, and always releases it afterwards. `fn` should
   * stop when `lease.signal` aborts. A failing release is reported only if `fn` succeeded.
   *
   * @example
   * await client.withLease('jobs/nightly', async (lease) => {
   *   await runJob({ fencingToken: lease.token, signal: lease.signal });
   * });
   */
  async withLease<T>(
    name: string,
    fn: (lease: Lease) => Promise<T> | T,
    options?: AcquireOptions,
  ): Promise<T> {
    const lease = await this.acquire(name, options);
    let result: T;
    try {
      result = await fn(lease);
    } catch (error) {
      await lease.release().catch(noop);
      throw error;
    }
    await lease.release();
    return result;
  }

  /** The current state of a lease, or null if nobody holds it. */
  async get(name: string): Promise<LeaseInfo | null> {
    const invalid = checkName(name);
    if (invalid) throw invalid;
    const { reply } = await this.#session.call(
      { type: 'get', name },
      { policy: 'anySession', timeoutMs: this.#options.requestTimeoutMs },
    ).promise;
    if (reply.type !== 'lease') throw new LeasewireError('INTERNAL', `unexpected ${reply.type} reply to get`);
    return reply.lease;
  }

  /** Held leases whose names start with `prefix` ('' for all), sorted by name. */
  async list(prefix = ''): Promise<LeaseInfo[]> {
    const invalid = checkName(prefix, true);
    if (invalid) throw invalid;
    const { reply } = await this.#session.call(
      { type: 'list', prefix },
      { policy: 'anySession', timeoutMs: this.#options.requestTimeoutMs },
    ).promise;
    if (reply.type !== 'leases')
      throw new LeasewireError('INTERNAL', `unexpected ${reply.type} reply to list`);
    return reply.leases;
  }

  /**
   * Watches the leases whose names start with `prefix` (a plain string prefix; '' for all).
   * Resolves once the broker has accepted the watch. See {@link Watch}.
   *
   * @example
   * const watch = await client.watch('rooms/');
   * for await (const item of watch) console.log(item);
   */
  async watch(prefix: string, options: WatchOptions = {}): Promise<Watch> {
    const invalid = checkName(prefix, true);
    if (invalid) throw invalid;
    const from = options.fromRevision;
    if (from !== undefined && (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0))
      throw new RangeError(`fromRevision must be a non-negative integer, got ${String(from)}`);
    const size = options.bufferSize;
    if (size !== undefined && (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1))
      throw new RangeError(`bufferSize must be a positive integer, got ${String(size)}`);
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function')
      throw new TypeError('onEvent must be a function');
    if (this.status === 'closed') throw new LeasewireError('CANCELLED', 'the client is closed');
    const watch = new Watch(
      { session: this.#session, options: this.#options, registry: this.#watches },
      prefix,
      options,
    );
    await watch.start();
    return watch;
  }

  /**
   * Joins the election named `name`: campaigns at once (a waiting acquire) and keeps campaigning
   * after losing leadership, until `resign()` or `close()`. See {@link Election}.
   *
   * @example
   * const election = client.elect('services/scheduler', { meta: 'host-a:8080' });
   */
  elect(name: string, options: ElectOptions = {}): Election {
    const invalid = checkName(name);
    if (invalid) throw invalid;
    if (this.status === 'closed') throw new LeasewireError('CANCELLED', 'the client is closed');
    const session = this.#session;
    const election = new Election(
      {
        acquire: (n, o) => this.acquire(n, o),
        watch: (p, o) => this.watch(p, o),
        get finished() {
          return session.status.status === 'closed';
        },
      },
      name,
      options,
    );
    this.#elections.add(election);
    return election;
  }

  /**
   * Ends the session with `bye` (the broker releases every lease at once), closes the socket and
   * ends every iterator. Leases released this way do not abort their signals; if the broker could
   * not confirm (disconnected), their signals abort with reason `closed`.
   */
  close(): Promise<void> {
    return this.#session.close();
  }
}

function noop(): void {}
