import type { IncomingMessage, ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import type { GatewayMetrics } from '../gateway/gateway-metrics.js';
import { errorReply, HttpProblem, writeError } from '../http/http-error.js';
import type { HttpMetrics } from '../http/http-metrics.js';
import type { HttpHandler } from '../listener.js';
import type { StoreObserver } from '../storage/table-store.js';
import { EventLoopCollector } from './event-loop-collector.js';
import { createGatewayCollector } from './gateway-collector.js';
import { HttpCollector, type HttpGauges } from './http-collector.js';
import { type BrokerGauges, StoreCollector } from './store-collector.js';

export const METRICS_PATH = '/metrics';

/**
 * Prometheus metrics for one broker, in a registry of its own (two brokers in one process do
 * not share series). Built before the store and broker: hand `storeObserver` to createStore and
 * `gateway` to the Broker, then `observe` them once they exist. Serves GET /metrics.
 */
export class BrokerMetrics {
  readonly registry = new Registry();
  readonly gateway: GatewayMetrics;
  readonly storeObserver: StoreObserver;
  readonly http: HttpMetrics;
  readonly handler: HttpHandler;
  private readonly store: StoreCollector;
  private readonly httpCollector: HttpCollector;
  private readonly eventLoop: EventLoopCollector;

  constructor() {
    this.gateway = createGatewayCollector(this.registry);
    this.store = new StoreCollector(this.registry);
    this.storeObserver = this.store.observer;
    this.httpCollector = new HttpCollector(this.registry, (code) => this.gateway.errorOut(code));
    this.http = this.httpCollector.metrics;
    this.eventLoop = new EventLoopCollector(this.registry);
    this.handler = (req, res) => this.serve(req, res);
  }

  observe(sources: { broker: BrokerGauges; http?: HttpGauges }): void {
    this.store.observe(sources.broker);
    if (sources.http) this.httpCollector.observe(sources.http);
  }

  /** The exposition text, as GET /metrics serves it. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    this.store.close();
    this.eventLoop.close();
  }

  private serve(req: IncomingMessage, res: ServerResponse): boolean | Promise<boolean> {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== METRICS_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      writeError(
        res,
        errorReply(
          new HttpProblem(405, 'BAD_REQUEST', `${req.method} is not allowed on ${METRICS_PATH}`, {
            allow: 'GET, HEAD',
          }),
        ),
      );
      return true;
    }
    return this.text().then(
      (text) => {
        res.writeHead(200, {
          'content-type': this.registry.contentType,
          'content-length': String(Buffer.byteLength(text)),
          'cache-control': 'no-store',
        });
        res.end(text);
        return true;
      },
      (err: unknown) => {
        writeError(res, errorReply(err));
        return true;
      },
    );
  }
}
