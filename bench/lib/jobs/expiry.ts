import { epochNow } from '../clock.js';
import type { Session } from '../session.js';
import { acquireTemplate, decode, encodeRequest, ReplyType } from '../wire.js';

/**
 * The expiry scenario's parts: holders that acquire one name each (and are then killed), waiters
 * queued on the same names that note when their grant arrives, and one watcher that notes every
 * `expired` event (decoded in full: it needs `name` and `at`).
 */
export async function holdNames(
  sessions: Session[],
  namePrefix: string,
  offset: number,
  timeoutMs: number,
): Promise<number> {
  let held = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${held}/${sessions.length} holders granted`)),
      timeoutMs,
    );
    sessions.forEach((s, i) => {
      s.onReply = (r) => {
        if (r.type !== ReplyType.granted) return reject(new Error(`hold: reply type ${r.type}`));
        if (++held === sessions.length) {
          clearTimeout(timer);
          resolve();
        }
      };
      s.send(acquireTemplate(`${namePrefix}${offset + i}`).setRef(1).frame);
    });
    if (sessions.length === 0) resolve();
  });
  return held;
}

export class Waiters {
  /** name → epoch ms the grant arrived. */
  readonly grantedAt = new Map<string, number>();
  errors = 0;

  constructor(private readonly sessions: Session[]) {}

  /** Queues a waiting acquire per session; resolves when all are `queued`. */
  async queue(namePrefix: string, offset: number, timeoutMs: number): Promise<number> {
    let queued = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${queued}/${this.sessions.length} waiters queued`)),
        timeoutMs,
      );
      this.sessions.forEach((s, i) => {
        const name = `${namePrefix}${offset + i}`;
        s.onReply = (r) => {
          if (r.type === ReplyType.queued) {
            if (++queued === this.sessions.length) {
              clearTimeout(timer);
              resolve();
            }
          } else if (r.type === ReplyType.granted) this.grantedAt.set(name, epochNow());
          else this.errors++;
        };
        s.send(acquireTemplate(name, [['wait', true]]).setRef(1).frame);
      });
      if (this.sessions.length === 0) resolve();
    });
    return queued;
  }
}

export interface ObservedExpiry {
  name: string;
  sessionId: string;
  revision: number;
  /** The event's `at` (broker wall clock, whole ms). */
  at: number;
  arrivedAt: number;
}

export class ExpiryWatcher {
  readonly expired: ObservedExpiry[] = [];

  constructor(private readonly session: Session) {}

  async watch(prefix: string, timeoutMs: number): Promise<void> {
    const s = this.session;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('expiry watch not set up')), timeoutMs);
      s.onReply = (r, buf, start, end) => {
        if (r.type === ReplyType.watching) {
          clearTimeout(timer);
          resolve();
          return;
        }
        if (r.type !== ReplyType.events) return;
        const arrivedAt = epochNow();
        const frame = decode<{
          events: { kind: string; name: string; sessionId: string; revision: number; at: number }[];
        }>(buf, start, end);
        for (const e of frame.events) {
          if (e.kind === 'expired') {
            this.expired.push({
              name: e.name,
              sessionId: e.sessionId,
              revision: e.revision,
              at: e.at,
              arrivedAt,
            });
          }
        }
      };
      s.send(encodeRequest({ type: 'watch', ref: 1, prefix }));
    });
  }
}
