import type { LeaseInfo } from '../../shared/frames.js';
import type { WaitEndCode } from '../core/types.js';
import type { SessionNotice } from '../storage/lease-store.js';

export type WaitOutcome =
  | { kind: 'granted'; lease: LeaseInfo }
  | { kind: 'ended'; code: WaitEndCode }
  /** The broker is closing; the long poll is answered with 503. */
  | { kind: 'shutdown' };

export interface RegisteredWait {
  readonly outcome: Promise<WaitOutcome>;
  /** Forget the wait (it was answered without queueing, or failed). */
  dispose(): void;
}

/**
 * Long-polling acquires waiting for the store's waitGranted/waitEnded notices, by wait id. A
 * wait is registered before the store call: with a durable store the grant notice can come
 * before the acquire's own answer.
 */
export class WaitRegistry {
  private readonly waits = new Map<number, (outcome: WaitOutcome) => void>();

  get size(): number {
    return this.waits.size;
  }

  register(waitId: number): RegisteredWait {
    let settle: (outcome: WaitOutcome) => void = () => {};
    const outcome = new Promise<WaitOutcome>((resolve) => {
      settle = resolve;
    });
    this.waits.set(waitId, (o) => {
      this.waits.delete(waitId);
      settle(o);
    });
    return { outcome, dispose: () => this.waits.delete(waitId) };
  }

  onNotice(n: SessionNotice): void {
    if (n.type === 'waitGranted') this.waits.get(n.waitId)?.({ kind: 'granted', lease: n.lease });
    else if (n.type === 'waitEnded') this.waits.get(n.waitId)?.({ kind: 'ended', code: n.code });
  }

  /** Answers every pending long poll with `shutdown`. */
  closeAll(): void {
    for (const settle of [...this.waits.values()]) settle({ kind: 'shutdown' });
  }
}
