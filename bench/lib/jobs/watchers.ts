import { epochNow } from '../clock.js';
import { emit } from '../rpc.js';
import type { Session } from '../session.js';
import { encodeRequest, ReplyType } from '../wire.js';

/**
 * Watch side of the fan-out scenarios: every session watches a prefix; each incoming event is
 * stamped with its arrival (epoch ms) per revision. When every session of this process has a
 * revision, the parent is told (`rev-complete`) so it can make the next change.
 */
export interface RevisionArrivals {
  revision: number;
  count: number;
  firstAt: number;
  lastAt: number;
  sumAt: number;
}

export class WatchTracker {
  private readonly byRevision = new Map<number, RevisionArrivals>();
  deliveries = 0;
  frames = 0;
  firstAt = 0;
  lastAt = 0;
  errors = 0;
  closed = 0;

  constructor(
    private readonly sessions: Session[],
    private notify: boolean,
  ) {}

  /** Sends `watch` on every session and resolves when all are `watching`. */
  async watch(prefix: string, timeoutMs: number): Promise<number> {
    let watching = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.sessions.length - watching} watches not set up in ${timeoutMs} ms`)),
        timeoutMs,
      );
      for (const s of this.sessions) {
        s.onReply = (r) => {
          if (r.type === ReplyType.watching) {
            if (++watching === this.sessions.length) {
              clearTimeout(timer);
              resolve();
            }
            this.track(s);
          } else if (r.type === ReplyType.error) {
            clearTimeout(timer);
            reject(new Error('watch refused'));
          }
        };
        s.onClose = () => this.closed++;
        s.send(encodeRequest({ type: 'watch', ref: 1, prefix }));
      }
      if (this.sessions.length === 0) resolve();
    });
    return watching;
  }

  private track(s: Session): void {
    const total = this.sessions.length;
    s.onReply = (r) => {
      if (r.type !== ReplyType.events) {
        if (r.type === ReplyType.error) this.errors++;
        return;
      }
      const at = epochNow();
      this.frames++;
      this.deliveries += r.count;
      if (this.firstAt === 0) this.firstAt = at;
      this.lastAt = at;
      for (let i = 0; i < r.count; i++) {
        const rev = r.revisions[i]!;
        let a = this.byRevision.get(rev);
        if (!a) {
          a = { revision: rev, count: 0, firstAt: at, lastAt: at, sumAt: 0 };
          this.byRevision.set(rev, a);
        }
        a.count++;
        a.lastAt = at;
        a.sumAt += at;
        if (this.notify && a.count === total) emit('rev-complete', { revision: rev, lastAt: at });
      }
    };
  }

  report(revisions?: number[]): {
    deliveries: number;
    frames: number;
    firstAt: number;
    lastAt: number;
    errors: number;
    closed: number;
    revisions: RevisionArrivals[];
  } {
    const list = revisions
      ? revisions.map((r) => this.byRevision.get(r)).filter((a): a is RevisionArrivals => a !== undefined)
      : [...this.byRevision.values()];
    return {
      deliveries: this.deliveries,
      frames: this.frames,
      firstAt: this.firstAt,
      lastAt: this.lastAt,
      errors: this.errors,
      closed: this.closed,
      revisions: list,
    };
  }

  totals(): {
    deliveries: number;
    frames: number;
    firstAt: number;
    lastAt: number;
    errors: number;
    closed: number;
  } {
    return {
      deliveries: this.deliveries,
      frames: this.frames,
      firstAt: this.firstAt,
      lastAt: this.lastAt,
      errors: this.errors,
      closed: this.closed,
    };
  }

  setNotify(on: boolean): void {
    this.notify = on;
  }

  reset(): void {
    this.byRevision.clear();
    this.deliveries = 0;
    this.frames = 0;
    this.firstAt = 0;
    this.lastAt = 0;
  }
}
