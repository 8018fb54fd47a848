import { Counter, type Registry } from 'prom-client';
import { CloseCodes } from '../../shared/close-codes.js';
import { ErrorCodes } from '../../shared/errors.js';
import { RequestTypes } from '../../shared/frames.js';
import type { GatewayMetrics } from '../gateway/gateway-metrics.js';
import { CellCounter, CellHistogram } from './cell-metrics.js';

/** Seconds; from 100 µs (an in-memory renew) to 10 s (an fsync on a sick disk). */
export const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Close codes get their own label value; anything else a peer sends is `other` (bounded cardinality). */
const CLOSE_CODE_LABELS = [...new Set<number>([...Object.values(CloseCodes), 1005, 1006, 1007])].map(String);

/**
 * GatewayMetrics for Prometheus. Every label value is known up front and its cell is bound
 * once, so a frame costs a Map lookup and a field increment (cell-metrics.ts); unknown values
 * fold into `other` instead of growing the series count.
 */
export function createGatewayCollector(registry: Registry): GatewayMetrics {
  const frames = new CellCounter(
    'leasewire_frames_in_total',
    'Request frames received over WebSocket, by type (invalid: failed validation).',
    ['type'],
    registry,
  );
  const errors = new CellCounter(
    'leasewire_errors_out_total',
    'Error replies sent (WebSocket frames and HTTP responses), by catalog code.',
    ['code'],
    registry,
  );
  const latency = new CellHistogram(
    'leasewire_request_duration_seconds',
    'WebSocket request latency from frame in to reply out, by op (a waiting acquire counts until queued).',
    ['op'],
    LATENCY_BUCKETS,
    registry,
  );
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

  const frameBy = bind([...Object.values(RequestTypes), 'invalid'], (t) => frames.cell(t));
  const errorBy = bind(Object.keys(ErrorCodes), (c) => errors.cell(c));
  const latencyBy = bind(Object.values(RequestTypes), (t) => latency.cell(t));
  const closedBy = bind(CLOSE_CODE_LABELS, (c) => closed.labels(c));
  const frameOther = frames.cell('other');
  const errorOther = errors.cell('other');
  const latencyOther = latency.cell('other');
  const closedOther = closed.labels('other');

  return {
    frameIn: (type) => {
      (frameBy.get(type) ?? frameOther).n++;
    },
    errorOut: (code) => {
      (errorBy.get(code) ?? errorOther).n++;
    },
    requestDone: (type, ms) => (latencyBy.get(type) ?? latencyOther).observe(ms / 1000),
    heartbeatMissed: () => missed.inc(),
    connectionClosed: (code) => (closedBy.get(String(code)) ?? closedOther).inc(),
  };
}

function bind<T>(values: readonly string[], child: (v: string) => T): Map<string, T> {
  return new Map(values.map((v) => [v, child(v)]));
}
