/**
 * What the HTTP API reports. The default does nothing; server/metrics plugs in Prometheus.
 * `route` is one of the fixed route names of the router, never a raw path.
 */
export interface HttpMetrics {
  /** `ms` is undefined for streams (SSE): their lifetime is not a latency. */
  requestDone(route: string, status: number, ms: number | undefined): void;
  /** An error reply with a catalog code (counted with the WebSocket errors). */
  errorOut(code: string): void;
}

export const noopHttpMetrics: HttpMetrics = {
  requestDone() {},
  errorOut() {},
};
