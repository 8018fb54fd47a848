import { LeasewireError } from '../../shared/errors.js';
import type { HeldLease, LeaseEvent, LeaseInfo } from '../../shared/frames.js';
import type { Clock, TimerHandle } from '../clock.js';
import { LeaseTable } from '../core/lease-table.js';
import type { AcquireResult, ChangeRecord, LeaseTableOptions, Output, SessionRecord } from '../core/types.js';
import type { Logger } from '../log.js';
import type { LeaseStore, SessionNotice, StoreAcquireParams, StoreStats } from './lease-store.js';
import { hashSecret, newEpoch, newSecret, newSessionId, secretMatches } from './session-secret.js';

/** Observations the store reports for metrics; all optional. */
export interface StoreObserver {
  /** A deadline was processed this long after it was due (timer lag). */
  expiryLag?(lagMs: number): void;
}

/**
 * A store around the in-memory lease table and its expiry scheduler: one timer armed for the
 * earliest deadline, re-armed after every change. Subclasses decide durability through
 * `persist`: the memory store returns at once, the journal store returns a promise that
 * resolves once the records are on disk. Outputs of a change (events to watchers, notices to
 * sessions, the reply to the caller) are released only after its records and every earlier
 * change's are durable, in order (SEMANTICS D1).
 */
export abstract class TableStore implements LeaseStore {
  protected readonly table: LeaseTable;
  private readonly eventListeners = new Set<(events: readonly LeaseEvent[]) => void>();
  private readonly noticeListeners = new Set<(notice: SessionNotice) => void>();
  private timer: TimerHandle | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  /** Resolves when every change applied so far is durable and dispatched; undefined when nothing is pending. */
  private pending: Promise<void> | undefined;
  private closed = false;
  /** A memory store's history starts afresh each time; the journal store replaces this on open. */
  epoch = newEpoch();

  constructor(
    protected readonly clock: Clock,
    tableOptions: Partial<LeaseTableOptions>,
    protected readonly log: Logger,
    protected readonly observer: StoreObserver = {},
  ) {
    this.table = new LeaseTable(tableOptions);
  }

  /** Makes records durable. Returns undefined when they already are (memory), else a promise. */
  protected abstract persist(records: ChangeRecord[]): Promise<void> | undefined;

  abstract open(): Promise<void>;

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    if (this.pending) await this.pending.catch(() => {});
  }

  get writable(): boolean {
    return !this.closed;
  }

  get revision(): number {
    return this.table.currentRevision;
  }

  get stats(): StoreStats {
    return {
      sessions: this.table.sessionCount,
      leases: this.table.leaseCount,
      waiters: this.table.waiterCount,
      revision: this.table.currentRevision,
      lastToken: this.table.lastIssuedToken,
    };
  }

  onEvents(listener: (events: readonly LeaseEvent[]) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onNotice(listener: (notice: SessionNotice) => void): () => void {
    this.noticeListeners.add(listener);
    return () => this.noticeListeners.delete(listener);
  }

  // ---- sessions ----

  async openSession(params: {
    ttlMs: number;
    owner: string;
  }): Promise<{ session: SessionRecord; secret: string }> {
    this.assertWritable();
    const secret = newSecret();
    const now = this.clock.now();
    const session: SessionRecord = {
      id: newSessionId(),
      secretHash: hashSecret(secret),
      owner: params.owner,
      ttlMs: params.ttlMs,
      createdAt: now.wall,
    };
    await this.run(() => this.table.openSession(now, session));
    return { session, secret };
  }

  async resumeSession(
    sessionId: string,
    secret: string,
  ): Promise<{ session: SessionRecord; leases: HeldLease[] }> {
    return this.run(() => {
      const now = this.clock.now();
      this.table.advance(now);
      const session = this.table.session(sessionId);
      if (!session) throw new LeasewireError('SESSION_EXPIRED', 'the session is unknown or has expired');
      // A wrong secret must not refresh the session: check before touching it.
      if (!secretMatches(secret, session.secretHash)) {
        throw new LeasewireError('BAD_SECRET', 'the resume secret does not match the session');
      }
      this.table.touch(now, sessionId);
      const leases = this.table.heldBy(sessionId).map((l) => {
        const h: HeldLease = { name: l.name, token: l.token };
        if (l.ttlMs !== undefined) h.ttlMs = l.ttlMs;
        if (l.meta) h.meta = l.meta;
        return h;
      });
      return { session, leases };
    });
  }

  touch(sessionId: string): boolean {
    const alive = this.table.touch(this.clock.now(), sessionId);
    this.commit();
    return alive;
  }

  async detachSession(sessionId: string): Promise<void> {
    await this.run(() => this.table.cancelWaits(this.clock.now(), sessionId));
  }

  async closeSession(sessionId: string): Promise<void> {
    this.assertWritable();
    await this.run(() => this.table.closeSession(this.clock.now(), sessionId));
  }

  sessionDeadline(sessionId: string): number | undefined {
    return this.table.sessionDeadline(sessionId);
  }

  // ---- leases ----

  async acquire(sessionId: string, name: string, params: StoreAcquireParams): Promise<AcquireResult> {
    this.assertWritable();
    return this.run(() => this.table.acquire(this.clock.now(), sessionId, name, params));
  }

  async cancelWait(sessionId: string, name: string): Promise<void> {
    await this.run(() => this.table.cancelWait(this.clock.now(), sessionId, name));
  }

  async release(sessionId: string, name: string, token: number): Promise<number> {
    this.assertWritable();
    return this.run(() => {
      this.table.release(this.clock.now(), sessionId, name, token);
      return this.table.currentRevision;
    });
  }

  async renew(sessionId: string, name: string, token: number): Promise<LeaseInfo> {
    return this.run(() => this.table.renew(this.clock.now(), sessionId, name, token));
  }

  async setMeta(sessionId: string, name: string, token: number, meta: Uint8Array | null): Promise<LeaseInfo> {
    this.assertWritable();
    return this.run(() => this.table.setMeta(this.clock.now(), sessionId, name, token, meta));
  }

  async get(name: string): Promise<{ lease: LeaseInfo | null; revision: number }> {
    return this.run(() => ({
      lease: this.table.get(this.clock.now(), name),
      revision: this.table.currentRevision,
    }));
  }

  async list(prefix: string): Promise<{ leases: LeaseInfo[]; revision: number }> {
    return this.run(() => ({
      leases: this.table.list(this.clock.now(), prefix),
      revision: this.table.currentRevision,
    }));
  }

  async eventsSince(fromRevision: number): Promise<{ events: LeaseEvent[] | null; oldestRevision: number }> {
    return this.run(() => ({
      events: this.table.eventsSince(fromRevision),
      oldestRevision: this.table.oldestHistoryRevision,
    }));
  }

  // ---- plumbing ----

  protected assertWritable(): void {
    if (this.closed) throw new LeasewireError('SHUTTING_DOWN', 'the broker is shutting down');
  }

  /**
   * Runs one table operation and returns its result once everything it may reflect is durable.
   * The table is changed synchronously (so later requests see the change at once), but the
   * caller hears about it only after the journal has it.
   */
  private async run<T>(op: () => T): Promise<T> {
    let result: T;
    try {
      result = op();
    } finally {
      const barrier = this.commit();
      if (barrier) await barrier;
    }
    return result;
  }

  /** Drains the table's outputs, persists the durable ones, dispatches them once durable. */
  protected commit(): Promise<void> | undefined {
    const outputs = this.table.drain();
    this.rearm();
    if (outputs.length === 0) return this.pending;
    const records: ChangeRecord[] = [];
    for (const o of outputs)
      if (o.type === 'event' || o.type === 'sessionOpened' || o.type === 'sessionEnded') records.push(o);
    const persisted = records.length > 0 ? this.persist(records) : undefined;
    if (!persisted && !this.pending) {
      this.dispatch(outputs);
      return undefined;
    }
    const prev = this.pending;
    const done = (prev ? prev.then(() => persisted) : (persisted as Promise<void>)).then(() => {
      this.dispatch(outputs);
      if (this.pending === done) this.pending = undefined;
    });
    this.pending = done;
    return done;
  }

  private dispatch(outputs: readonly Output[]): void {
    let events: LeaseEvent[] | undefined;
    for (const o of outputs) {
      switch (o.type) {
        case 'event':
          if (!events) events = [];
          events.push(o.event);
          break;
        case 'sessionOpened':
          break;
        case 'sessionEnded':
          if (o.reason === 'expired') this.log.info('session expired', { session: o.sessionId });
          this.notify(o);
          break;
        default:
          this.notify(o);
      }
    }
    if (events) {
      for (const l of this.eventListeners) {
        try {
          l(events);
        } catch (err) {
          this.log.error('event listener failed', { error: String(err) });
        }
      }
    }
  }

  private notify(n: SessionNotice): void {
    for (const l of this.noticeListeners) {
      try {
        l(n);
      } catch (err) {
        this.log.error('notice listener failed', { error: String(err) });
      }
    }
  }

  /** One timer for the earliest deadline in the table (not one per lease or session). */
  protected rearm(): void {
    if (this.closed) return;
    const next = this.table.nextDeadline();
    if (next === undefined || next >= this.armedAt) return;
    if (this.timer) this.clock.clearTimer(this.timer);
    this.armedAt = next;
    const delayMs = Math.max(0, Math.ceil(next - this.clock.now().mono));
    this.timer = this.clock.setTimer(() => this.onTimer(next), delayMs);
    this.timer.unref?.();
  }

  private onTimer(dueAt: number): void {
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    this.observer.expiryLag?.(now.mono - dueAt);
    this.table.advance(now);
    this.commit();
    this.rearm();
  }
}
