import type { EndReason, HolderInfo, LeaseEvent, LeaseInfo } from '../../shared/frames.js';

/** A point in time as the core sees it: a monotonic reading for deadlines, a wall reading for display. */
export interface Now {
  /** Monotonic milliseconds (performance.now() in production, a fake clock in tests). */
  mono: number;
  /** Epoch milliseconds, only copied into frames for display. */
  wall: number;
}

/** What is durable about a session: everything but its deadline, which restarts on recovery. */
export interface SessionRecord {
  id: string;
  /** SHA-256 of the resume secret, hex. The secret itself is never stored. */
  secretHash: string;
  owner: string;
  ttlMs: number;
  /** Epoch ms, for display. */
  createdAt: number;
}

export type SessionEndReason = 'closed' | 'expired';

/** Why a waiting acquire ended without a grant. */
export type WaitEndCode = 'WAIT_TIMEOUT' | 'CANCELLED' | 'SESSION_EXPIRED';

/**
 * What the table tells the world after a call. `event`, `sessionOpened` and `sessionEnded`
 * are the durable changes (the journal records them, replay applies them); the rest are
 * notices for the connection that owns a session.
 */
export type Output =
  | { type: 'event'; event: LeaseEvent }
  | { type: 'sessionOpened'; session: SessionRecord }
  | { type: 'sessionEnded'; sessionId: string; reason: SessionEndReason }
  | { type: 'waitGranted'; sessionId: string; waitId: number; lease: LeaseInfo }
  | { type: 'waitEnded'; sessionId: string; waitId: number; code: WaitEndCode }
  | { type: 'leaseLost'; sessionId: string; name: string; token: number; reason: EndReason };

/** The durable subset of outputs: what the journal writes and replay reads. */
export type ChangeRecord = Extract<Output, { type: 'event' | 'sessionOpened' | 'sessionEnded' }>;

export interface LeaseTableOptions {
  /** After an expiry (not a clean release) the name is not granted again for this long. */
  lockDelayMs: number;
  /** Events kept for watch replay. */
  historyLimit: number;
  /** Leases held plus waits queued, per session. */
  maxLeasesPerSession: number;
  maxWaitsPerSession: number;
  /** Bounds for a lease's own ttlMs; requests outside are clamped. */
  minLeaseTtlMs: number;
  maxLeaseTtlMs: number;
}

export const DEFAULT_LEASE_TABLE_OPTIONS: LeaseTableOptions = {
  lockDelayMs: 0,
  historyLimit: 10_000,
  maxLeasesPerSession: 10_000,
  maxWaitsPerSession: 1_000,
  minLeaseTtlMs: 500,
  maxLeaseTtlMs: 24 * 60 * 60 * 1000,
};

export interface AcquireParams {
  wait?: boolean;
  waitTimeoutMs?: number;
  meta?: Uint8Array;
  ttlMs?: number;
  /** Caller-chosen id for a waiting acquire, echoed in waitGranted/waitEnded. */
  waitId: number;
}

export type AcquireResult =
  | { kind: 'granted'; lease: LeaseInfo }
  | { kind: 'queued'; position: number }
  | { kind: 'held'; holder: HolderInfo }
  | { kind: 'lockDelay'; retryAfterMs: number };

/** The whole durable state, for snapshots. Deadlines are not in it: recovery grants fresh ones. */
export interface TableSnapshot {
  revision: number;
  lastToken: number;
  sessions: SessionRecord[];
  leases: {
    name: string;
    sessionId: string;
    token: number;
    acquiredAt: number;
    ttlMs?: number;
    meta?: Uint8Array;
    revision: number;
  }[];
  /** Names in lock-delay at snapshot time: held back for a full lock-delay after recovery. */
  lockDelayed: { name: string; previous: HolderInfo; reason: EndReason }[];
  history: LeaseEvent[];
}
