/**
 * One status line on stderr, rewritten in place with `\r` while a long run goes on. Silent when
 * stderr is not a terminal (CI, the smoke test), unless BENCH_PROGRESS=1.
 */
export class Progress {
  private readonly enabled: boolean;
  private lastLength = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(enabled = process.stderr.isTTY === true || process.env.BENCH_PROGRESS === '1') {
    this.enabled = enabled;
  }

  set(text: string): void {
    if (!this.enabled) return;
    const padded = text.padEnd(this.lastLength);
    this.lastLength = text.length;
    process.stderr.write(`\r${padded}`);
  }

  /** Shows `label` with a seconds counter until `done()` (or the next `track`). */
  track(label: string, totalMs?: number): void {
    this.stopTimer();
    const started = performance.now();
    const tick = () => {
      const s = (performance.now() - started) / 1000;
      this.set(
        totalMs ? `${label} ${s.toFixed(1)}s/${(totalMs / 1000).toFixed(1)}s` : `${label} ${s.toFixed(1)}s`,
      );
    };
    tick();
    if (this.enabled) {
      this.timer = setInterval(tick, 250);
      this.timer.unref();
    }
  }

  done(): void {
    this.stopTimer();
    if (!this.enabled || this.lastLength === 0) return;
    process.stderr.write(`\r${' '.repeat(this.lastLength)}\r`);
    this.lastLength = 0;
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
