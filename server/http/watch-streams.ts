import type { Clock, TimerHandle } from '../clock.js';
import type { SseWatch } from './sse-watch.js';

/** The open SSE watch streams, and one heartbeat timer for all of them (armed only while any is open). */
export class WatchStreams {
  private readonly streams = new Set<SseWatch>();
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly heartbeatMs: number,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  add(w: SseWatch): void {
    this.streams.add(w);
    if (!this.timer) this.arm();
  }

  delete(w: SseWatch): void {
    this.streams.delete(w);
    if (this.streams.size === 0) this.disarm();
  }

  /** Ends every stream (broker closing). */
  closeAll(): void {
    for (const w of [...this.streams]) w.end();
    this.streams.clear();
    this.disarm();
  }

  private arm(): void {
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      for (const w of this.streams) w.heartbeat();
      if (this.streams.size > 0) this.arm();
    }, this.heartbeatMs);
    this.timer.unref?.();
  }

  private disarm(): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }
}
