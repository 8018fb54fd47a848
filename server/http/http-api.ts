import type { HttpHandler } from '../listener.js';
import { acquireLease } from './acquire.js';
import { healthz, readyz } from './health.js';
import type { HttpBrokerView, HttpContext } from './http-context.js';
import { type HttpMetrics, noopHttpMetrics } from './http-metrics.js';
import { getLease, listLeases, releaseLease, renewLease } from './leases.js';
import { createRouter, type Route } from './router.js';
import { createSession, deleteSession, keepalive } from './sessions.js';
import { WaitRegistry } from './wait-registry.js';
import { watchLeases } from './watch.js';
import { WatchStreams } from './watch-streams.js';

/** Every route of the HTTP API (docs/HTTP.md documents each). */
export const HTTP_ROUTES: Route[] = [
  { path: '/healthz', name: 'healthz', methods: { GET: healthz }, duringShutdown: true },
  { path: '/readyz', name: 'readyz', methods: { GET: readyz }, duringShutdown: true },
  { path: '/v1/sessions', name: 'sessions.create', methods: { POST: createSession } },
  { path: '/v1/sessions/:id', name: 'sessions.delete', methods: { DELETE: deleteSession } },
  { path: '/v1/sessions/:id/keepalive', name: 'sessions.keepalive', methods: { POST: keepalive } },
  { path: '/v1/leases', name: 'leases.list', methods: { GET: listLeases } },
  { path: '/v1/leases/:name', name: 'leases.get', methods: { GET: getLease } },
  { path: '/v1/leases/:name/acquire', name: 'leases.acquire', methods: { POST: acquireLease } },
  { path: '/v1/leases/:name/release', name: 'leases.release', methods: { POST: releaseLease } },
  { path: '/v1/leases/:name/renew', name: 'leases.renew', methods: { POST: renewLease } },
  { path: '/v1/watch', name: 'watch', methods: { GET: watchLeases }, streaming: true },
];

/**
 * The HTTP API beside the WebSocket gateway, on the same store and watch hub: sessions kept
 * alive by calls instead of pings, leases with long-poll waits, watches as Server-Sent Events,
 * and health checks. `handler` plugs into the listener.
 */
export class HttpApi {
  readonly handler: HttpHandler;
  private readonly waits = new WaitRegistry();
  private readonly streams: WatchStreams;
  private readonly unsubscribe: () => void;
  private closing = false;

  constructor(broker: HttpBrokerView, metrics: HttpMetrics = noopHttpMetrics) {
    this.streams = new WatchStreams(broker.clock, broker.options.sseHeartbeatMs);
    this.unsubscribe = broker.store.onNotice((n) => this.waits.onNotice(n));
    const api = this;
    const ctx: HttpContext = {
      store: broker.store,
      hub: broker.hub,
      options: broker.options,
      log: broker.log,
      clock: broker.clock,
      nextWaitId: () => broker.nextWaitId(),
      waits: this.waits,
      streams: this.streams,
      get closing() {
        return api.closing;
      },
    };
    this.handler = createRouter(HTTP_ROUTES, ctx, metrics);
  }

  /** Long polls waiting for a grant, and SSE watch streams open. */
  get stats(): { longPolls: number; watchStreams: number } {
    return { longPolls: this.waits.size, watchStreams: this.streams.size };
  }

  /**
   * Answers every long poll with 503 SHUTTING_DOWN and ends every watch stream, so the
   * listener can close without waiting out its drain timeout. Later requests get 503.
   */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.waits.closeAll();
    this.streams.closeAll();
    this.unsubscribe();
  }
}
