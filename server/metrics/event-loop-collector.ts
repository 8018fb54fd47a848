import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

const RESOLUTION_MS = 10;

/**
 * Event-loop delay from perf_hooks, reported as p50/p90/p99/max since the previous scrape. The
 * monitor records whole sampling intervals, so the interval itself is subtracted: an idle loop
 * reports about 0. A busy loop delays every heartbeat and expiry, so this is the first thing to
 * look at when expiry lag grows.
 */
export class EventLoopCollector {
  private readonly histogram: IntervalHistogram;

  constructor(registry: Registry) {
    const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    h.enable();
    this.histogram = h;
    new Gauge({
      name: 'leasewire_event_loop_delay_seconds',
      help: 'Event-loop delay since the previous scrape, by statistic (p50, p90, p99, max).',
      labelNames: ['stat'],
      registers: [registry],
      collect() {
        if (h.count === 0) return;
        const seconds = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1000;
        this.set({ stat: 'p50' }, seconds(h.percentile(50)));
        this.set({ stat: 'p90' }, seconds(h.percentile(90)));
        this.set({ stat: 'p99' }, seconds(h.percentile(99)));
        this.set({ stat: 'max' }, seconds(h.max));
        h.reset();
      },
    });
  }

  close(): void {
    this.histogram.disable();
  }
}
