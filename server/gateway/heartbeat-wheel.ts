/**
 * Pings every connection once per its heartbeat interval, spread over the interval instead of
 * in one loop (20,000 sockets pinged in one loop stall the event loop for ~200 ms here). A
 * timing wheel: slots `slotMs` wide, one timer ticking through them, each connection sitting
 * in the slot of its next ping.
 */
export interface Heartbeating {
  /** Called at the connection's turn; returns its next interval, or undefined to leave the wheel. */
  heartbeat(nowMs: number): number | undefined;
}

export class HeartbeatWheel {
  private readonly slots: Set<Heartbeating>[];
  private readonly where = new Map<Heartbeating, number>();
  private cursor = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly slotMs: number,
    maxIntervalMs: number,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.slots = Array.from({ length: Math.ceil(maxIntervalMs / slotMs) + 2 }, () => new Set());
  }

  get size(): number {
    return this.where.size;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.slotMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Adds a connection at a random point of its first interval, which spreads a reconnect storm. */
  add(c: Heartbeating, intervalMs: number): void {
    this.place(c, Math.random() * intervalMs);
  }

  remove(c: Heartbeating): void {
    const slot = this.where.get(c);
    if (slot === undefined) return;
    this.slots[slot]?.delete(c);
    this.where.delete(c);
  }

  private place(c: Heartbeating, inMs: number): void {
    this.remove(c);
    const steps = Math.min(this.slots.length - 1, Math.max(1, Math.round(inMs / this.slotMs)));
    const slot = (this.cursor + steps) % this.slots.length;
    this.slots[slot]?.add(c);
    this.where.set(c, slot);
  }

  private tick(): void {
    this.cursor = (this.cursor + 1) % this.slots.length;
    const due = this.slots[this.cursor];
    if (!due || due.size === 0) return;
    const now = this.nowMs();
    for (const c of [...due]) {
      due.delete(c);
      this.where.delete(c);
      let next: number | undefined;
      try {
        next = c.heartbeat(now);
      } catch {
        next = undefined;
      }
      if (next !== undefined) this.place(c, next);
    }
  }
}
