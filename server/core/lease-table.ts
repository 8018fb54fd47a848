import { LeasewireError } from '../../shared/errors.js';
import type { EndReason, HolderInfo, LeaseEvent, LeaseInfo } from '../../shared/frames.js';
import { DeadlineHeap } from './deadline-heap.js';
import { EventHistory } from './event-history.js';
import {
  type AcquireParams,
  type AcquireResult,
  type ChangeRecord,
  DEFAULT_LEASE_TABLE_OPTIONS,
  type LeaseTableOptions,
  type Now,
  type Output,
  type SessionRecord,
  type TableSnapshot,
  type WaitEndCode,
} from './types.js';

/**
 * The lease state machine: sessions, leases, FIFO wait queues, fencing tokens and revisions.
 * Pure: it owns no sockets, timers or files. Every call takes `now`, first processes every
 * deadline that has passed by then (so a request is never served by a session that is already
 * dead on paper), applies the request, and leaves what happened in an outbox for `drain()`.
 * Methods check everything before they change anything: a thrown LeasewireError means no effect.
 * The rule ids (S1…) refer to docs/SEMANTICS.md.
 */

interface SessionState {
  record: SessionRecord;
  /** Monotonic ms: last heard + ttl. Only ever moves later (S3). */
  deadline: number;
  leases: Set<string>;
  waits: Map<string, Waiter>;
}

interface Lease {
  name: string;
  sessionId: string;
  token: number;
  acquiredAt: number;
  ttlMs?: number;
  leaseDeadline?: number;
  meta?: Uint8Array;
  revision: number;
}

interface Waiter {
  waitId: number;
  sessionId: string;
  name: string;
  deadline?: number;
  meta?: Uint8Array;
  ttlMs?: number;
}

interface LockDelay {
  until: number;
  previous: HolderInfo;
  reason: EndReason;
}

type DeadlineKey =
  | { kind: 'session'; id: string }
  | { kind: 'lease'; name: string; token: number }
  | { kind: 'wait'; waitId: number }
  | { kind: 'lockDelay'; name: string };

const NO_OUTPUT: readonly Output[] = Object.freeze([]);

export class LeaseTable {
  readonly options: LeaseTableOptions;
  private revision = 0;
  private lastToken = 0;
  private readonly sessions = new Map<string, SessionState>();
  private readonly leases = new Map<string, Lease>();
  private readonly queues = new Map<string, Waiter[]>();
  private readonly waitsById = new Map<number, Waiter>();
  private readonly lockDelays = new Map<string, LockDelay>();
  private readonly heap = new DeadlineHeap<DeadlineKey>();
  private readonly history: EventHistory;
  private out: Output[] = [];

  constructor(options: Partial<LeaseTableOptions> = {}) {
    this.options = { ...DEFAULT_LEASE_TABLE_OPTIONS, ...options };
    this.history = new EventHistory(this.options.historyLimit);
  }

  // ---- reading ----

  get currentRevision(): number {
    return this.revision;
  }

  get lastIssuedToken(): number {
    return this.lastToken;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get leaseCount(): number {
    return this.leases.size;
  }

  get waiterCount(): number {
    return this.waitsById.size;
  }

  get oldestHistoryRevision(): number {
    return this.history.oldestRevision;
  }

  /** The earliest monotonic time at which `advance` has work, if any. */
  nextDeadline(): number | undefined {
    return this.heap.peek()?.at;
  }

  session(id: string): SessionRecord | undefined {
    return this.sessions.get(id)?.record;
  }

  /** Monotonic deadline of a session, for the client's view and tests. */
  sessionDeadline(id: string): number | undefined {
    return this.sessions.get(id)?.deadline;
  }

  /** Leases a session holds, for welcome on resume. */
  heldBy(sessionId: string): Lease[] {
    const s = this.sessions.get(sessionId);
    if (!s) return [];
    const out: Lease[] = [];
    for (const name of s.leases) {
      const l = this.leases.get(name);
      if (l) out.push(l);
    }
    return out;
  }

  /** Like every call, processes due deadlines first (outputs wait in the outbox for drain). */
  get(now: Now, name: string): LeaseInfo | null {
    this.advance(now);
    const l = this.leases.get(name);
    return l ? this.info(l, now) : null;
  }

  /** Held leases whose names start with prefix ('' for all), sorted by name. */
  list(now: Now, prefix: string): LeaseInfo[] {
    this.advance(now);
    const out: LeaseInfo[] = [];
    for (const l of this.leases.values()) if (l.name.startsWith(prefix)) out.push(this.info(l, now));
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  /** Events after fromRevision for watch replay, or null when compacted (W4). */
  eventsSince(fromRevision: number): LeaseEvent[] | null {
    return this.history.since(fromRevision, this.revision);
  }

  /** Takes the outputs produced since the last drain. */
  drain(): readonly Output[] {
    // Runs after every frame and pong (touch): most calls have nothing, so allocate nothing for them.
    if (this.out.length === 0) return NO_OUTPUT;
    const out = this.out;
    this.out = [];
    return out;
  }

  // ---- time ----

  /** Processes every deadline at or before now.mono: expiries, wait timeouts, lock-delay ends. */
  advance(now: Now): void {
    for (;;) {
      const top = this.heap.peek();
      if (!top || top.at > now.mono) return;
      this.heap.pop();
      const key = top.key;
      switch (key.kind) {
        case 'session': {
          const s = this.sessions.get(key.id);
          if (!s) break;
          // Heartbeats move the deadline without touching the heap; re-queue at the live one (S3).
          if (s.deadline > now.mono) this.heap.push(s.deadline, key);
          else this.expireSession(now, s);
          break;
        }
        case 'lease': {
          const l = this.leases.get(key.name);
          if (!l || l.token !== key.token || l.leaseDeadline === undefined) break;
          if (l.leaseDeadline > now.mono) this.heap.push(l.leaseDeadline, key);
          else this.expireLease(now, l);
          break;
        }
        case 'wait': {
          const w = this.waitsById.get(key.waitId);
          if (w && w.deadline !== undefined && w.deadline <= now.mono) this.endWait(w, 'WAIT_TIMEOUT');
          break;
        }
        case 'lockDelay': {
          const d = this.lockDelays.get(key.name);
          if (!d) break;
          if (d.until > now.mono) {
            // Moved later (recovery grace) or superseded by a newer delay: keep one entry due at its end.
            if (d.until > top.at) this.heap.push(d.until, key);
            break;
          }
          this.lockDelays.delete(key.name);
          this.grantNext(now, key.name, d.previous, d.reason);
          break;
        }
      }
    }
  }

  // ---- sessions ----

  openSession(now: Now, record: SessionRecord): void {
    this.advance(now);
    if (this.sessions.has(record.id)) throw new LeasewireError('BAD_REQUEST', 'session id already in use');
    this.addSession(now, record);
    this.out.push({ type: 'sessionOpened', session: record });
  }

  /** A heartbeat or any frame from the session (S2). Returns false if the session is gone. */
  touch(now: Now, sessionId: string): boolean {
    this.advance(now);
    const s = this.sessions.get(sessionId);
    if (!s) return false;
    const deadline = now.mono + s.record.ttlMs;
    if (deadline > s.deadline) s.deadline = deadline;
    return true;
  }

  /** Ends a session at once: waits cancelled, leases released with reason session-closed (S6). */
  closeSession(now: Now, sessionId: string): void {
    this.advance(now);
    const s = this.requireSession(sessionId);
    for (const w of [...s.waits.values()]) this.endWait(w, 'CANCELLED');
    for (const name of [...s.leases]) {
      const l = this.leases.get(name);
      if (l) this.endLease(now, l, 'released', 'session-closed');
    }
    this.sessions.delete(sessionId);
    this.out.push({ type: 'sessionEnded', sessionId, reason: 'closed' });
  }

  /** Cancels every wait of a session, e.g. when its connection drops (waits belong to a connection, S5). */
  cancelWaits(now: Now, sessionId: string): void {
    this.advance(now);
    const s = this.sessions.get(sessionId);
    if (!s) return;
    for (const w of [...s.waits.values()]) this.endWait(w, 'CANCELLED');
  }

  // ---- leases ----

  acquire(now: Now, sessionId: string, name: string, params: AcquireParams): AcquireResult {
    this.advance(now);
    const s = this.requireSession(sessionId);
    const held = this.leases.get(name);
    // L2: acquiring a lease the session already holds answers with the same grant.
    if (held && held.sessionId === sessionId) return { kind: 'granted', lease: this.info(held, now) };
    const delay = this.lockDelays.get(name);
    // Queued waits count against maxLeasesPerSession too: each may turn into a held lease later
    // (grantNext does not check the limit), so admitting them here is what bounds the holdings.
    const committed = s.leases.size + s.waits.size;
    if (!held && !delay) {
      this.assertUnderLeaseLimit(committed);
      const lease = this.grant(now, s, name, params.meta, this.clampLeaseTtl(params.ttlMs));
      return { kind: 'granted', lease: this.info(lease, now) };
    }
    if (!params.wait) {
      if (held) return { kind: 'held', holder: this.holderOf(held) };
      return {
        kind: 'lockDelay',
        retryAfterMs: Math.max(0, Math.ceil((delay as LockDelay).until - now.mono)),
      };
    }
    if (s.waits.has(name))
      throw new LeasewireError('ALREADY_WAITING', `this session already waits for ${name}`);
    if (s.waits.size >= this.options.maxWaitsPerSession) {
      throw new LeasewireError(
        'LIMIT_EXCEEDED',
        `a session may wait for at most ${this.options.maxWaitsPerSession} leases`,
        {
          limit: 'maxWaitsPerSession',
          max: this.options.maxWaitsPerSession,
        },
      );
    }
    this.assertUnderLeaseLimit(committed);
    if (this.waitsById.has(params.waitId)) throw new LeasewireError('BAD_REQUEST', 'waitId already in use');
    if (params.waitTimeoutMs === 0)
      throw new LeasewireError('WAIT_TIMEOUT', 'waitTimeoutMs is 0 and the lease is held');
    const w: Waiter = { waitId: params.waitId, sessionId, name };
    if (params.meta) w.meta = params.meta;
    const ttlMs = this.clampLeaseTtl(params.ttlMs);
    if (ttlMs !== undefined) w.ttlMs = ttlMs;
    if (params.waitTimeoutMs !== undefined) {
      w.deadline = now.mono + params.waitTimeoutMs;
      this.heap.push(w.deadline, { kind: 'wait', waitId: w.waitId });
    }
    let q = this.queues.get(name);
    if (!q) {
      q = [];
      this.queues.set(name, q);
    }
    q.push(w);
    s.waits.set(name, w);
    this.waitsById.set(w.waitId, w);
    return { kind: 'queued', position: q.length };
  }

  /** Cancels this session's wait on name; NOT_FOUND if it has none. */
  cancelWait(now: Now, sessionId: string, name: string): void {
    this.advance(now);
    const s = this.requireSession(sessionId);
    const w = s.waits.get(name);
    if (!w) throw new LeasewireError('NOT_FOUND', `this session does not wait for ${name}`);
    this.endWait(w, 'CANCELLED');
  }

  /** L4: only the holder, only with its current token. The next waiter is granted at once. */
  release(now: Now, sessionId: string, name: string, token: number): void {
    this.advance(now);
    this.requireSession(sessionId);
    const l = this.requireHolder(name, sessionId, token);
    this.endLease(now, l, 'released', 'release');
  }

  /** L6: restarts the lease's own TTL. On a lease without one it only proves the holder is alive. */
  renew(now: Now, sessionId: string, name: string, token: number): LeaseInfo {
    this.advance(now);
    this.requireSession(sessionId);
    const l = this.requireHolder(name, sessionId, token);
    if (l.ttlMs !== undefined) l.leaseDeadline = now.mono + l.ttlMs;
    return this.info(l, now);
  }

  setMeta(now: Now, sessionId: string, name: string, token: number, meta: Uint8Array | null): LeaseInfo {
    this.advance(now);
    this.requireSession(sessionId);
    const l = this.requireHolder(name, sessionId, token);
    if (meta) l.meta = meta;
    else delete l.meta;
    l.revision = ++this.revision;
    this.emit(this.event(now, 'updated', l));
    return this.info(l, now);
  }

  // ---- snapshots and replay (the journal's side) ----

  /** The durable state; deadlines are left out on purpose (R1: recovery grants fresh ones). */
  snapshot(): TableSnapshot {
    const leases: TableSnapshot['leases'] = [];
    for (const l of this.leases.values()) {
      const e: TableSnapshot['leases'][number] = {
        name: l.name,
        sessionId: l.sessionId,
        token: l.token,
        acquiredAt: l.acquiredAt,
        revision: l.revision,
      };
      if (l.ttlMs !== undefined) e.ttlMs = l.ttlMs;
      if (l.meta) e.meta = l.meta;
      leases.push(e);
    }
    return {
      revision: this.revision,
      lastToken: this.lastToken,
      sessions: [...this.sessions.values()].map((s) => s.record),
      leases,
      lockDelayed: [...this.lockDelays].map(([name, d]) => ({
        name,
        previous: d.previous,
        reason: d.reason,
      })),
      history: this.history.all(),
    };
  }

  /** Loads a snapshot into an empty table. Every session gets a grace deadline of now + its TTL (R1). */
  restore(now: Now, snap: TableSnapshot): void {
    if (this.sessions.size || this.leases.size || this.revision)
      throw new Error('restore needs an empty table');
    this.revision = snap.revision;
    this.lastToken = snap.lastToken;
    for (const rec of snap.sessions) this.addSession(now, rec);
    for (const e of snap.leases) {
      this.restoreLease(now, e);
    }
    for (const d of snap.lockDelayed) this.startLockDelay(now, d.name, d.previous, d.reason);
    for (const ev of snap.history) this.history.push(ev);
  }

  /**
   * R1: after recovery, every session, lease TTL and lock-delay gets at least now + its full
   * duration, however long the replay took. Deadlines only move later here.
   */
  extendDeadlines(now: Now): void {
    for (const s of this.sessions.values()) s.deadline = Math.max(s.deadline, now.mono + s.record.ttlMs);
    for (const l of this.leases.values()) {
      if (l.ttlMs !== undefined && l.leaseDeadline !== undefined) {
        l.leaseDeadline = Math.max(l.leaseDeadline, now.mono + l.ttlMs);
      }
    }
    for (const d of this.lockDelays.values())
      d.until = Math.max(d.until, now.mono + this.options.lockDelayMs);
  }

  /**
   * Applies one journal record during recovery. Replay is exact for the durable state; deadlines
   * restart (R1) and nothing is emitted: watchers catch up from the history.
   */
  apply(now: Now, rec: ChangeRecord): void {
    switch (rec.type) {
      case 'sessionOpened':
        if (!this.sessions.has(rec.session.id)) this.addSession(now, rec.session);
        return;
      case 'sessionEnded': {
        const s = this.sessions.get(rec.sessionId);
        if (!s) return;
        for (const name of s.leases) this.leases.delete(name);
        this.sessions.delete(rec.sessionId);
        return;
      }
      case 'event': {
        const ev = rec.event;
        // R2: a snapshot is taken while later records may still be in flight, so replay can meet
        // events the snapshot already reflects. Revisions tell them apart; skipping makes replay idempotent.
        if (ev.revision <= this.revision) return;
        this.revision = ev.revision;
        if (ev.token > this.lastToken) this.lastToken = ev.token;
        this.history.push(ev);
        const s = this.sessions.get(ev.sessionId);
        if (ev.kind === 'acquired') {
          this.lockDelays.delete(ev.name);
          this.restoreLease(now, { ...ev, acquiredAt: ev.at });
        } else if (ev.kind === 'updated') {
          const l = this.leases.get(ev.name);
          if (!l || l.token !== ev.token) return;
          if (ev.meta) l.meta = ev.meta;
          else delete l.meta;
          l.revision = ev.revision;
        } else {
          const l = this.leases.get(ev.name);
          if (l && l.token === ev.token) {
            this.leases.delete(ev.name);
            s?.leases.delete(ev.name);
          }
          if (ev.kind === 'expired' && this.options.lockDelayMs > 0) {
            this.startLockDelay(
              now,
              ev.name,
              { owner: ev.owner, sessionId: ev.sessionId, token: ev.token },
              ev.reason ?? 'session-expired',
            );
          }
        }
        return;
      }
    }
  }

  // ---- internals ----

  private assertUnderLeaseLimit(committed: number): void {
    const max = this.options.maxLeasesPerSession;
    if (committed < max) return;
    throw new LeasewireError(
      'LIMIT_EXCEEDED',
      `a session may hold at most ${max} leases, counting queued waits`,
      { limit: 'maxLeasesPerSession', max },
    );
  }

  /** Puts back a grant read from a snapshot or the journal; its TTL (if any) restarts now (R1). */
  private restoreLease(now: Now, e: TableSnapshot['leases'][number]): void {
    const s = this.sessions.get(e.sessionId);
    if (!s) return;
    const l: Lease = {
      name: e.name,
      sessionId: e.sessionId,
      token: e.token,
      acquiredAt: e.acquiredAt,
      revision: e.revision,
    };
    if (e.meta) l.meta = e.meta;
    if (e.ttlMs !== undefined) this.armLeaseTtl(now, l, e.ttlMs);
    this.leases.set(l.name, l);
    s.leases.add(l.name);
  }

  private addSession(now: Now, record: SessionRecord): void {
    const s: SessionState = {
      record,
      deadline: now.mono + record.ttlMs,
      leases: new Set(),
      waits: new Map(),
    };
    this.sessions.set(record.id, s);
    this.heap.push(s.deadline, { kind: 'session', id: record.id });
  }

  private requireSession(id: string): SessionState {
    const s = this.sessions.get(id);
    if (!s) throw new LeasewireError('SESSION_EXPIRED', 'the session is unknown or has expired');
    return s;
  }

  private requireHolder(name: string, sessionId: string, token: number): Lease {
    const l = this.leases.get(name);
    if (!l || l.sessionId !== sessionId)
      throw new LeasewireError('NOT_HOLDER', `this session does not hold ${name}`);
    if (l.token !== token) {
      throw new LeasewireError('STALE_TOKEN', `token ${token} is not the current token of ${name}`);
    }
    return l;
  }

  private clampLeaseTtl(ttlMs: number | undefined): number | undefined {
    if (ttlMs === undefined) return undefined;
    return Math.min(this.options.maxLeaseTtlMs, Math.max(this.options.minLeaseTtlMs, ttlMs));
  }

  private armLeaseTtl(now: Now, l: Lease, ttlMs: number): void {
    l.ttlMs = ttlMs;
    l.leaseDeadline = now.mono + ttlMs;
    this.heap.push(l.leaseDeadline, { kind: 'lease', name: l.name, token: l.token });
  }

  /** L5: every grant takes the next token and the next revision; neither is ever reused. */
  private grant(
    now: Now,
    s: SessionState,
    name: string,
    meta: Uint8Array | undefined,
    ttlMs: number | undefined,
    previous?: HolderInfo,
    reason?: EndReason,
  ): Lease {
    const l: Lease = {
      name,
      sessionId: s.record.id,
      token: ++this.lastToken,
      acquiredAt: now.wall,
      revision: ++this.revision,
    };
    if (meta) l.meta = meta;
    if (ttlMs !== undefined) this.armLeaseTtl(now, l, ttlMs);
    this.leases.set(name, l);
    s.leases.add(name);
    const ev = this.event(now, 'acquired', l);
    if (previous) ev.previous = previous;
    if (reason) ev.reason = reason;
    if (ttlMs !== undefined) ev.ttlMs = ttlMs;
    this.emit(ev);
    return l;
  }

  /** Ends the current grant of a lease, then hands it on (or starts a lock-delay after an expiry). */
  private endLease(now: Now, l: Lease, kind: 'released' | 'expired', reason: EndReason): void {
    this.leases.delete(l.name);
    this.sessions.get(l.sessionId)?.leases.delete(l.name);
    const ev = this.event(now, kind, l);
    ev.reason = reason;
    ev.revision = ++this.revision;
    this.emit(ev);
    const previous = this.holderOf(l);
    // L7: lock-delay follows expiries only; a clean release hands over at once.
    if (kind === 'expired' && this.options.lockDelayMs > 0)
      this.startLockDelay(now, l.name, previous, reason);
    else this.grantNext(now, l.name, previous, reason);
  }

  private startLockDelay(now: Now, name: string, previous: HolderInfo, reason: EndReason): void {
    const until = now.mono + this.options.lockDelayMs;
    this.lockDelays.set(name, { until, previous, reason });
    this.heap.push(until, { kind: 'lockDelay', name });
  }

  /** L3: the longest waiter gets the lease, with the previous holder and the reason in the event. */
  private grantNext(now: Now, name: string, previous: HolderInfo, reason: EndReason): void {
    const q = this.queues.get(name);
    if (!q) return;
    for (let w = q.shift(); w; w = q.shift()) {
      this.forgetWait(w);
      const s = this.sessions.get(w.sessionId);
      if (!s) continue;
      if (q.length === 0) this.queues.delete(name);
      const lease = this.grant(now, s, name, w.meta, w.ttlMs, previous, reason);
      this.out.push({
        type: 'waitGranted',
        sessionId: w.sessionId,
        waitId: w.waitId,
        lease: this.info(lease, now),
      });
      return;
    }
    this.queues.delete(name);
  }

  private endWait(w: Waiter, code: WaitEndCode): void {
    const q = this.queues.get(w.name);
    if (q) {
      const i = q.indexOf(w);
      if (i >= 0) q.splice(i, 1);
      if (q.length === 0) this.queues.delete(w.name);
    }
    this.forgetWait(w);
    this.out.push({ type: 'waitEnded', sessionId: w.sessionId, waitId: w.waitId, code });
  }

  private forgetWait(w: Waiter): void {
    this.waitsById.delete(w.waitId);
    this.sessions.get(w.sessionId)?.waits.delete(w.name);
  }

  /** S4: at the deadline every lease of the session is revoked and handed on. */
  private expireSession(now: Now, s: SessionState): void {
    for (const w of [...s.waits.values()]) this.endWait(w, 'SESSION_EXPIRED');
    for (const name of [...s.leases]) {
      const l = this.leases.get(name);
      if (l) this.endLease(now, l, 'expired', 'session-expired');
    }
    this.sessions.delete(s.record.id);
    this.out.push({ type: 'sessionEnded', sessionId: s.record.id, reason: 'expired' });
  }

  private expireLease(now: Now, l: Lease): void {
    this.out.push({
      type: 'leaseLost',
      sessionId: l.sessionId,
      name: l.name,
      token: l.token,
      reason: 'lease-ttl',
    });
    this.endLease(now, l, 'expired', 'lease-ttl');
  }

  private holderOf(l: Lease): HolderInfo {
    return {
      owner: this.sessions.get(l.sessionId)?.record.owner ?? '',
      sessionId: l.sessionId,
      token: l.token,
    };
  }

  private event(now: Now, kind: LeaseEvent['kind'], l: Lease): LeaseEvent {
    const ev: LeaseEvent = {
      kind,
      revision: l.revision,
      name: l.name,
      owner: this.sessions.get(l.sessionId)?.record.owner ?? '',
      sessionId: l.sessionId,
      token: l.token,
      at: now.wall,
    };
    if (l.meta) ev.meta = l.meta;
    return ev;
  }

  private emit(ev: LeaseEvent): void {
    this.history.push(ev);
    this.out.push({ type: 'event', event: ev });
  }

  private info(l: Lease, now: Now): LeaseInfo {
    const s = this.sessions.get(l.sessionId);
    const sessionDeadline = s ? s.deadline : now.mono;
    const deadline =
      l.leaseDeadline !== undefined ? Math.min(sessionDeadline, l.leaseDeadline) : sessionDeadline;
    const info: LeaseInfo = {
      name: l.name,
      token: l.token,
      owner: s?.record.owner ?? '',
      sessionId: l.sessionId,
      acquiredAt: l.acquiredAt,
      sessionTtlMs: s?.record.ttlMs ?? 0,
      expiresInMs: Math.max(0, Math.round(deadline - now.mono)),
      waiters: this.queues.get(l.name)?.length ?? 0,
      revision: l.revision,
    };
    if (l.ttlMs !== undefined) info.ttlMs = l.ttlMs;
    if (l.meta) info.meta = l.meta;
    return info;
  }
}
