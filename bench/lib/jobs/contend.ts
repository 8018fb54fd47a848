import { Histogram, type HistogramJson } from '../histogram.js';
import { errorCode, type Session } from '../session.js';
import { acquireTemplate, ReplyType, releaseTemplate } from '../wire.js';
import { bump, untilEpoch } from './timing.js';

/**
 * Many sessions on few names: each session loops "wait-acquire its name → granted → release".
 * Session i (counting from `indexOffset` across load processes) contends for name i % names.
 * Records grants in the window, each session's grant count (for fairness), and the wait time
 * from sending the acquire to its grant.
 */
export interface ContendArgs {
  names: number;
  namePrefix: string;
  indexOffset: number;
  startAt: number;
  warmupMs: number;
  durationMs: number;
  waitTimeoutMs: number;
}

export interface ContendResult {
  grants: number;
  releases: number;
  errors: Record<string, number>;
  waitLatency: HistogramJson;
  grantsPerSession: number[];
  cpuUs: number;
  stuck: number;
}

export function runContend(sessions: Session[], args: ContendArgs): Promise<ContendResult> {
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  const grantsPerSession = new Array<number>(sessions.length).fill(0);
  let grants = 0;
  let releases = 0;
  let active = 0;
  return new Promise((resolve) => {
    let measureFrom = Number.POSITIVE_INFINITY;
    let measureTo = Number.POSITIVE_INFINITY;
    let cpuAtStart = process.cpuUsage();
    let cpuUs = 0;
    let finished = false;
    let safety: NodeJS.Timeout | undefined;
    const done = new Array<boolean>(sessions.length).fill(false);
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(safety);
      resolve({
        grants,
        releases,
        errors,
        waitLatency: hist.toJSON(),
        grantsPerSession,
        cpuUs,
        stuck: active,
      });
    };
    const stop = (i: number) => {
      if (done[i]) return;
      done[i] = true;
      if (--active === 0) finish();
    };
    const loops = sessions.map((s, i) => {
      const name = `${args.namePrefix}${(args.indexOffset + i) % args.names}`;
      const acquire = acquireTemplate(name, [
        ['wait', true],
        ['waitTimeoutMs', args.waitTimeoutMs],
      ]);
      const release = releaseTemplate(name);
      let ref = 0;
      let sentAt = 0;
      const sendAcquire = () => {
        sentAt = performance.now();
        s.send(acquire.setRef(++ref).frame);
      };
      s.onReply = (r, buf, start, end) => {
        const now = performance.now();
        if (r.type === ReplyType.queued) return;
        const inWindow = now >= measureFrom && now < measureTo;
        if (r.type === ReplyType.granted) {
          if (inWindow) {
            grants++;
            grantsPerSession[i]!++;
            hist.recordMs(now - sentAt);
          }
          s.send(release.setRef(++ref).setToken(r.token).frame);
          return;
        }
        if (r.type === ReplyType.ok) {
          if (inWindow) releases++;
          if (now >= measureTo) return stop(i);
          sendAcquire();
          return;
        }
        bump(errors, r.type === ReplyType.error ? errorCode(buf, start, end) : `reply type ${r.type}`);
        if (now >= measureTo) return stop(i);
        sendAcquire();
      };
      s.onClose = (why) => {
        bump(errors, `closed: ${why}`);
        stop(i);
      };
      return sendAcquire;
    });
    void untilEpoch(args.startAt).then(() => {
      measureFrom = performance.now() + args.warmupMs;
      measureTo = measureFrom + args.durationMs;
      setTimeout(() => {
        cpuAtStart = process.cpuUsage();
      }, args.warmupMs);
      setTimeout(() => {
        const d = process.cpuUsage(cpuAtStart);
        cpuUs = d.user + d.system;
      }, args.warmupMs + args.durationMs);
      safety = setTimeout(finish, args.warmupMs + args.durationMs + 15_000);
      loops.forEach((sendAcquire, i) => {
        if (sessions[i]!.closed) return;
        active++;
        sendAcquire();
      });
      if (active === 0) finish();
    });
  });
}
