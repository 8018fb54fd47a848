import { Histogram, type HistogramJson } from '../histogram.js';
import { errorCode, type Session } from '../session.js';
import { acquireTemplate, type FrameTemplate, ReplyType, releaseTemplate } from '../wire.js';
import { bump, untilEpoch } from './timing.js';

/**
 * acquire → release → acquire … on distinct names, `inflight` requests outstanding per session
 * at all times. Every round trip (acquire or release) is one op. Runs from `startAt` (epoch ms);
 * ops completing in [startAt + warmupMs, + durationMs) are counted and their latency recorded.
 */
export interface CyclesArgs {
  inflight: number;
  /** `keepalive`: each slot sends keepalive requests instead (a heartbeat round trip per op). */
  mode?: 'cycles' | 'keepalive';
  /** Acquire with the lease's own TTL (a TTL'd lease, like an etcd lease grant). */
  leaseTtlMs?: number;
  namePrefix: string;
  startAt: number;
  warmupMs: number;
  durationMs: number;
}

export interface CyclesResult {
  ops: number;
  errors: Record<string, number>;
  latency: HistogramJson;
  windowMs: number;
  cpuUs: number;
  /** Slots still waiting for a reply when the run gave up on them. */
  stuck: number;
}

interface Slot {
  acquire: FrameTemplate;
  release: FrameTemplate;
  /** 1 = acquire in flight, 2 = release in flight, 0 = done. */
  state: number;
  sentAt: number;
  gen: number;
}

const SLOT_BITS = 8;

export function runCycles(sessions: Session[], args: CyclesArgs): Promise<CyclesResult> {
  if (args.inflight > 1 << SLOT_BITS) throw new RangeError('inflight must be <= 256');
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  let ops = 0;
  let active = 0;
  return new Promise((resolve) => {
    let cpuAtStart = process.cpuUsage();
    let cpuUs = 0;
    let measureFrom = Number.POSITIVE_INFINITY;
    let measureTo = Number.POSITIVE_INFINITY;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(safety);
      resolve({ ops, errors, latency: hist.toJSON(), windowMs: args.durationMs, cpuUs, stuck: active });
    };
    let safety: NodeJS.Timeout | undefined;
    const send = (s: Session, slot: Slot, j: number, t: FrameTemplate) => {
      slot.gen = (slot.gen + 1) & 0xffffff;
      t.setRef(slot.gen * (1 << SLOT_BITS) + j);
      slot.sentAt = performance.now();
      s.send(t.frame);
    };
    const slotsBySession = sessions.map((s, si) => {
      const slots: Slot[] = [];
      for (let j = 0; j < args.inflight; j++) {
        const name = `${args.namePrefix}${si}/${j}`;
        slots.push({
          acquire: acquireTemplate(name),
          release: releaseTemplate(name),
          state: 0,
          sentAt: 0,
          gen: 0,
        });
      }
      s.onReply = (r, buf, start, end) => {
        const now = performance.now();
        const j = r.ref & ((1 << SLOT_BITS) - 1);
        const slot = slots[j];
        if (!slot || slot.state === 0 || r.ref < 0) return;
        if (now >= measureFrom && now < measureTo) {
          hist.recordMs(now - slot.sentAt);
          ops++;
        }
        let next: FrameTemplate;
        if (r.type === ReplyType.granted) {
          slot.release.setToken(r.token);
          next = slot.release;
          slot.state = 2;
        } else if (r.type === ReplyType.ok) {
          // A release done (cycles), or a keepalive answered: the slot starts over.
          next = slot.acquire;
          slot.state = 1;
        } else {
          bump(errors, r.type === ReplyType.error ? errorCode(buf, start, end) : `reply type ${r.type}`);
          next = slot.acquire; // start over on this name
          slot.state = 1;
        }
        if (now >= measureTo) {
          // Finish on a release so no name stays held (matters when a run is followed by another).
          if (slot.state === 1) {
            slot.state = 0;
            if (--active === 0) finish();
            return;
          }
        }
        send(s, slot, j, next);
      };
      s.onClose = (why) => {
        bump(errors, `closed: ${why}`);
        for (const slot of slots) {
          if (slot.state !== 0) {
            slot.state = 0;
            active--;
          }
        }
        if (active === 0) finish();
      };
      return slots;
    });
    void untilEpoch(args.startAt).then(() => {
      const startMono = performance.now();
      measureFrom = startMono + args.warmupMs;
      measureTo = measureFrom + args.durationMs;
      setTimeout(() => {
        cpuAtStart = process.cpuUsage();
      }, args.warmupMs);
      setTimeout(() => {
        const d = process.cpuUsage(cpuAtStart);
        cpuUs = d.user + d.system;
      }, args.warmupMs + args.durationMs);
      safety = setTimeout(finish, args.warmupMs + args.durationMs + 15_000);
      sessions.forEach((s, si) => {
        s.ws.corkForTick();
        const slots = slotsBySession[si]!;
        slots.forEach((slot, j) => {
          if (s.closed) return;
          slot.state = 1;
          active++;
          send(s, slot, j, slot.acquire);
        });
      });
      if (active === 0) finish();
    });
  });
}
