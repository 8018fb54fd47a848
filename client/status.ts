import { AsyncQueue } from './async-queue.js';

/**
 * Where the client's session stands:
 * - `connecting`: the first connection is being opened;
 * - `connected`: a new session is open (first connect, or a fresh one after `expired`);
 * - `suspended`: the connection dropped; the session may still be resumed and leases are still
 *   safe to use (their signals abort if the safety deadline passes first);
 * - `resumed`: the same session was resumed on a new connection; leases and tokens kept;
 * - `expired`: the session is gone, or may be (no ack within the safety deadline): every lease's
 *   signal has been aborted. The client keeps reconnecting and opens a new session unless
 *   `reconnect.newSessionOnExpiry` is false;
 * - `closed`: `close()` was called, or a fatal error ended the client. Final.
 */
export type ClientStatus = 'connecting' | 'connected' | 'suspended' | 'resumed' | 'expired' | 'closed';

/** One status transition. */
export interface StatusChange {
  status: ClientStatus;
  previous: ClientStatus;
  /** Why, when there is more to say: a close-code name, `safety-deadline`, `resume-refused`, … */
  reason?: string;
  /** The error behind the change, if any. */
  error?: Error;
}

/** Status changes kept for a slow `statusChanges()` reader before the oldest are dropped. */
const STATUS_BUFFER = 64;

/** The current status plus its subscribers; internal to the client. */
export class StatusHub {
  private current: ClientStatus = 'connecting';
  private readonly queues = new Set<AsyncQueue<StatusChange>>();
  private readonly callbacks = new Set<(change: StatusChange) => void>();

  get status(): ClientStatus {
    return this.current;
  }

  set(status: ClientStatus, detail: { reason?: string; error?: Error } = {}): void {
    if (status === this.current || this.current === 'closed') return;
    const change: StatusChange = { status, previous: this.current, ...detail };
    this.current = status;
    for (const q of this.queues) {
      if (!q.push(change)) {
        // A reader that stopped reading loses its oldest changes, never the newest.
        q.next();
        q.push(change);
      }
    }
    for (const cb of this.callbacks) {
      try {
        cb(change);
      } catch {
        // A throwing subscriber must not break the client or other subscribers.
      }
    }
    if (status === 'closed') {
      for (const q of this.queues) q.end();
      this.queues.clear();
    }
  }

  changes(): AsyncIterableIterator<StatusChange> {
    const q: AsyncQueue<StatusChange> = new AsyncQueue(STATUS_BUFFER, () => this.queues.delete(q));
    if (this.current === 'closed') q.end();
    else this.queues.add(q);
    return q;
  }

  on(callback: (change: StatusChange) => void): () => void {
    this.callbacks.add(callback);
    return () => {
      this.callbacks.delete(callback);
    };
  }
}
