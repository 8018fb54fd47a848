import type { HeldLease, LeaseEvent, LeaseInfo } from '../../shared/frames.js';
import type { AcquireResult, SessionRecord, WaitEndCode } from '../core/types.js';

/**
 * The seam between the gateway and where the truth lives. The memory store and the journal
 * store wrap the pure lease table; a store backed by etcd would implement the same contract.
 * Every change carries a revision; events reach `onEvents` listeners in revision order and only
 * once they are durable, and no promise resolves with a result that reflects a change that is
 * not yet durable (SEMANTICS D1).
 */
export interface LeaseStore {
  open(): Promise<void>;
  close(): Promise<void>;

  /**
   * Names this store's history. Revisions and tokens of stores with different epochs are
   * unrelated: a memory store gets a new epoch each start, a journal store keeps its own.
   */
  readonly epoch: string;
  /** Revision of the newest change applied (possibly not yet durable). */
  readonly revision: number;
  /** False while the store cannot make changes durable (disk full, I/O error). */
  readonly writable: boolean;
  readonly stats: StoreStats;

  /** All lease events, durable, in revision order, in batches. */
  onEvents(listener: (events: readonly LeaseEvent[]) => void): () => void;
  /** Notices for the connection that owns a session. */
  onNotice(listener: (notice: SessionNotice) => void): () => void;

  openSession(params: { ttlMs: number; owner: string }): Promise<{ session: SessionRecord; secret: string }>;
  /** Checks id + secret; throws SESSION_EXPIRED or BAD_SECRET. Refreshes the deadline. */
  resumeSession(sessionId: string, secret: string): Promise<{ session: SessionRecord; leases: HeldLease[] }>;
  /** A heartbeat or any frame. Synchronous on purpose: it runs for every frame and pong. */
  touch(sessionId: string): boolean;
  /** The connection went away: the session keeps its leases until its deadline; its waits end. */
  detachSession(sessionId: string): Promise<void>;
  /** Ends the session now; its leases are released. */
  closeSession(sessionId: string): Promise<void>;
  /** Monotonic deadline of the session, if it lives. */
  sessionDeadline(sessionId: string): number | undefined;

  acquire(sessionId: string, name: string, params: StoreAcquireParams): Promise<AcquireResult>;
  cancelWait(sessionId: string, name: string): Promise<void>;
  release(sessionId: string, name: string, token: number): Promise<number>;
  renew(sessionId: string, name: string, token: number): Promise<LeaseInfo>;
  setMeta(sessionId: string, name: string, token: number, meta: Uint8Array | null): Promise<LeaseInfo>;

  get(name: string): Promise<{ lease: LeaseInfo | null; revision: number }>;
  list(prefix: string): Promise<{ leases: LeaseInfo[]; revision: number }>;
  /** Events after fromRevision, or null when the history no longer reaches back (COMPACTED). */
  eventsSince(fromRevision: number): Promise<{ events: LeaseEvent[] | null; oldestRevision: number }>;
}

export interface StoreAcquireParams {
  wait?: boolean;
  waitTimeoutMs?: number;
  meta?: Uint8Array;
  ttlMs?: number;
  /** Identifies a waiting acquire in waitGranted/waitEnded notices; unique per store. */
  waitId: number;
}

export type SessionNotice =
  | { type: 'waitGranted'; sessionId: string; waitId: number; lease: LeaseInfo }
  | { type: 'waitEnded'; sessionId: string; waitId: number; code: WaitEndCode }
  | {
      type: 'leaseLost';
      sessionId: string;
      name: string;
      token: number;
      reason: LeaseEvent['reason'] & string;
    }
  | { type: 'sessionEnded'; sessionId: string; reason: 'closed' | 'expired' };

export interface StoreStats {
  sessions: number;
  leases: number;
  waiters: number;
  revision: number;
  lastToken: number;
}
