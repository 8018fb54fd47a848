import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { HttpMetrics } from '../http/http-metrics.js';
import { LATENCY_BUCKETS } from './gateway-collector.js';

export interface HttpGauges {
  readonly stats: { longPolls: number; watchStreams: number };
}

/** HTTP API metrics. Route labels are the router's fixed route names; statuses are the few it sends. */
export class HttpCollector {
  readonly metrics: HttpMetrics;
  private source: HttpGauges | undefined;

  constructor(registry: Registry, errorOut: (code: string) => void) {
    const requests = new Counter({
      name: 'leasewire_http_requests_total',
      help: 'HTTP API requests answered, by route and status.',
      labelNames: ['route', 'status'],
      registers: [registry],
    });
    const latency = new Histogram({
      name: 'leasewire_http_request_duration_seconds',
      help: 'HTTP API request latency by route (long polls included; SSE streams not).',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    const self = this;
    new Gauge({
      name: 'leasewire_http_long_polls',
      help: 'Waiting acquires held open over HTTP.',
      registers: [registry],
      collect() {
        if (self.source) this.set(self.source.stats.longPolls);
      },
    });
    new Gauge({
      name: 'leasewire_http_watch_streams',
      help: 'Server-Sent Events watch streams open.',
      registers: [registry],
      collect() {
        if (self.source) this.set(self.source.stats.watchStreams);
      },
    });
    const children = new Map<string, { inc(): void }>();
    const latencyBy = new Map<string, { observe(v: number): void }>();
    this.metrics = {
      requestDone(route, status, ms) {
        const key = `${route} ${status}`;
        let c = children.get(key);
        if (!c) {
          c = requests.labels(route, String(status));
          children.set(key, c);
        }
        c.inc();
        if (ms === undefined) return;
        let h = latencyBy.get(route);
        if (!h) {
          h = latency.labels(route);
          latencyBy.set(route, h);
        }
        h.observe(ms / 1000);
      },
      errorOut,
    };
  }

  observe(source: HttpGauges): void {
    this.source = source;
  }
}
