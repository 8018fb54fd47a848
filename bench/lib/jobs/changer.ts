import { epochNow } from '../clock.js';
import type { Session } from '../session.js';
import { acquireTemplate, type FrameTemplate, ReplyType, releaseTemplate } from '../wire.js';

/** The writer side of the fan-out scenarios: single changes, and pipelined bursts of changes. */
export class Changer {
  private readonly tokens = new Map<string, number>();
  private ref = 0;

  constructor(private readonly session: Session) {}

  /** One acquire (or release) of `name`; resolves with the send time and the change's revision. */
  change(
    name: string,
    op: 'acquire' | 'release',
  ): Promise<{ sentAt: number; repliedAt: number; revision: number }> {
    const s = this.session;
    const ref = ++this.ref;
    const t = op === 'acquire' ? acquireTemplate(name) : releaseTemplate(name);
    t.setRef(ref);
    if (op === 'release') t.setToken(this.tokens.get(name) ?? 0);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${op} ${name}: no reply`)), 30_000);
      s.onReply = (r) => {
        if (r.ref !== ref) return;
        clearTimeout(timer);
        const repliedAt = epochNow();
        if (r.type === ReplyType.granted) this.tokens.set(name, r.token);
        if (r.type !== ReplyType.granted && r.type !== ReplyType.ok)
          reject(new Error(`${op} ${name} failed`));
        else resolve({ sentAt, repliedAt, revision: r.revision });
      };
      const sentAt = epochNow();
      s.send(t.frame);
    });
  }

  /**
   * `changes` changes as fast as `inflight` pipelined acquire/release cycles on distinct names
   * allow; every change emits one event. Resolves when the last reply is in.
   */
  burst(
    changes: number,
    inflight: number,
    namePrefix: string,
  ): Promise<{
    firstSentAt: number;
    lastRepliedAt: number;
    changes: number;
    firstRevision: number;
    lastRevision: number;
  }> {
    const s = this.session;
    let sent = 0;
    let replied = 0;
    let firstRevision = Number.POSITIVE_INFINITY;
    let lastRevision = 0;
    const slots: { acquire: FrameTemplate; release: FrameTemplate }[] = [];
    for (let j = 0; j < inflight; j++) {
      slots.push({
        acquire: acquireTemplate(`${namePrefix}${j}`),
        release: releaseTemplate(`${namePrefix}${j}`),
      });
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`burst: ${replied}/${changes} replies`)), 60_000);
      const firstSentAt = epochNow();
      s.onReply = (r) => {
        const j = r.ref % inflight;
        const slot = slots[j]!;
        if (r.type !== ReplyType.granted && r.type !== ReplyType.ok) {
          clearTimeout(timer);
          reject(new Error(`burst: a change failed (reply type ${r.type})`));
          return;
        }
        replied++;
        if (r.revision < firstRevision) firstRevision = r.revision;
        if (r.revision > lastRevision) lastRevision = r.revision;
        if (replied === changes) {
          clearTimeout(timer);
          resolve({ firstSentAt, lastRepliedAt: epochNow(), changes, firstRevision, lastRevision });
          return;
        }
        if (sent < changes) {
          sent++;
          const next = r.type === ReplyType.granted ? slot.release.setToken(r.token) : slot.acquire;
          s.send(next.setRef(++this.ref * inflight + j).frame);
        }
      };
      s.ws.corkForTick();
      for (let j = 0; j < inflight && sent < changes; j++) {
        sent++;
        s.send(slots[j]!.acquire.setRef(++this.ref * inflight + j).frame);
      }
    });
  }
}
