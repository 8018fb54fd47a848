import { Counter, Histogram, type Registry } from 'prom-client';
import { CloseCodes } from '../../shared/close-codes.js';
import { ErrorCodes } from '../../shared/errors.js';
import { RequestTypes } from '../../shared/frames.js';
import type { GatewayMetrics } from '../gateway/gateway-metrics.js';

/** Seconds; from 100 µs (an in-memory renew) to 10 s (an fsync on a sick disk). */
export const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

interface Inc {
  inc(): void;
}
interface Observe {
  observe(v: number): void;
}

/** Close codes get their own label value; anything else a peer sends is `other` (bounded cardinality). */
const CLOSE_CODE_LABELS = [...new Set<number>([...Object.values(CloseCodes), 1005, 1006, 1007])].map(String);

/**
 * GatewayMetrics on Prometheus counters. Every label value is known up front and its child is
 * bound once, so the hot path is a Map lookup and an increment; unknown values fold into
 * `other` instead of growing the series count.
 */
export function createGatewayCollector(registry: Registry): GatewayMetrics {
  const frames = new Counter({
    name: 'leasewire_frames_in_total',
    help: 'Request frames received over WebSocket, by type (invalid: failed validation).',
    labelNames: ['type'],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'leasewire_errors_out_total',
    help: 'Error replies sent (WebSocket frames and HTTP responses), by catalog code.',
    labelNames: ['code'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'leasewire_request_duration_seconds',
    help: 'WebSocket request latency from frame in to reply out, by op (a waiting acquire counts until queued).',
    labelNames: ['op'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const missed = new Counter({
    name: 'leasewire_heartbeats_missed_total',
    help: 'WebSocket connections dropped for missing heartbeats.',
    registers: [registry],
  });
  const closed = new Counter({
    name: 'leasewire_connections_closed_total',
    help: 'WebSocket connections closed, by close code (other: a code the broker does not use).',
    labelNames: ['code'],
    registers: [registry],
  });

  const types = [...Object.values(RequestTypes), 'invalid'];
  const frameBy = bind(types, (t) => frames.labels(t));
  const errorBy = bind(Object.keys(ErrorCodes), (c) => errors.labels(c));
  const latencyBy = bind(Object.values(RequestTypes), (t) => latency.labels(t));
  const closedBy = bind(CLOSE_CODE_LABELS, (c) => closed.labels(c));
  const frameOther = frames.labels('other');
  const errorOther = errors.labels('other');
  const latencyOther = latency.labels('other');
  const closedOther = closed.labels('other');

  return {
    frameIn: (type) => (frameBy.get(type) ?? frameOther).inc(),
    errorOut: (code) => (errorBy.get(code) ?? errorOther).inc(),
    requestDone: (type, ms) => (latencyBy.get(type) ?? latencyOther).observe(ms / 1000),
    heartbeatMissed: () => missed.inc(),
    connectionClosed: (code) => (closedBy.get(String(code)) ?? closedOther).inc(),
  };
}

function bind<T extends Inc | Observe>(values: readonly string[], child: (v: string) => T): Map<string, T> {
  return new Map(values.map((v) => [v, child(v)]));
}
