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
  /** When the slot under the cursor began, by nowMs. */
  private cursorAt = 0;

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
    this.cursorAt = this.nowMs();
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
    // While the event loop is busy (one client flooding frames), the interval fires late and
    // missed firings are not repeated. Stepping one slot per firing would stretch every
    // connection's ping interval, and heartbeat() would then time out healthy connections for
    // pongs to pings the broker never sent. Step by the time that has passed instead.
    const now = this.nowMs();
    const behind = Math.floor((now - this.cursorAt) / this.slotMs);
    const steps = Math.min(this.slots.length, Math.max(1, behind));
    this.cursorAt = behind > this.slots.length ? now : this.cursorAt + steps * this.slotMs;
    // Take every connection due in the slots passed, then re-place them from the new cursor,
    // so that catching up never pings a connection twice in one tick.
    const due: Heartbeating[] = [];
    for (let i = 0; i < steps; i++) {
      this.cursor = (this.cursor + 1) % this.slots.length;
      const slot = this.slots[this.cursor];
      if (!slot || slot.size === 0) continue;
      for (const c of slot) {
        due.push(c);
        this.where.delete(c);
      }
      slot.clear();
    }
    for (const c of due) {
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
