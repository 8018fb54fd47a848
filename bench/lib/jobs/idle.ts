import { epochNow } from '../clock.js';
import type { Session } from '../session.js';
import { encodeRequest, ReplyType } from '../wire.js';

/**
 * Idle sessions: they only answer the broker's pings (RawWs does that), and, when switched on,
 * also send the `keepalive` request every heartbeat interval as the SDK does.
 */
const KEEPALIVE = encodeRequest({ type: 'keepalive', ref: 0 });

export class Idlers {
  private timers: NodeJS.Timeout[] = [];
  keepalivesSent = 0;
  repliesSeen = 0;
  closed = 0;
  /** Epoch ms of the first close (a dropped idle session is worth a timestamp). */
  firstCloseAt = 0;
  readonly closeReasons: Record<string, number> = {};

  constructor(private readonly sessions: Session[]) {
    for (const s of sessions) {
      s.onReply = (r) => {
        if (r.type === ReplyType.ok) this.repliesSeen++;
      };
      s.onClose = (why) => {
        this.closed++;
        if (this.firstCloseAt === 0) this.firstCloseAt = epochNow();
        this.closeReasons[why] = (this.closeReasons[why] ?? 0) + 1;
      };
    }
  }

  /** Starts per-session keepalives at a random phase of each session's heartbeat interval. */
  startKeepalives(): void {
    this.stopKeepalives();
    for (const s of this.sessions) {
      const every = s.heartbeatIntervalMs;
      const first = setTimeout(() => {
        const tick = () => {
          if (s.closed) return;
          s.send(KEEPALIVE);
          this.keepalivesSent++;
        };
        tick();
        this.timers.push(setInterval(tick, every));
      }, Math.random() * every);
      this.timers.push(first);
    }
  }

  stopKeepalives(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  stats(): {
    sessions: number;
    pings: number;
    keepalivesSent: number;
    repliesSeen: number;
    closed: number;
    firstCloseAt: number;
    closeReasons: Record<string, number>;
  } {
    let pings = 0;
    for (const s of this.sessions) pings += s.ws.pings;
    return {
      sessions: this.sessions.length,
      pings,
      keepalivesSent: this.keepalivesSent,
      repliesSeen: this.repliesSeen,
      closed: this.closed,
      firstCloseAt: this.firstCloseAt,
      closeReasons: this.closeReasons,
    };
  }
}
