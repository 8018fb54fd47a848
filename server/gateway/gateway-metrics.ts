/**
 * What the gateway reports as it works. The default does nothing; the metrics module (Prometheus)
 * plugs in its own. Kept to counters and one latency observation so the hot path stays cheap.
 */
export interface GatewayMetrics {
  frameIn(type: string): void;
  errorOut(code: string): void;
  requestDone(type: string, ms: number): void;
  heartbeatMissed(): void;
  connectionClosed(code: number): void;
}

export const noopGatewayMetrics: GatewayMetrics = {
  frameIn() {},
  errorOut() {},
  requestDone() {},
  heartbeatMissed() {},
  connectionClosed() {},
};
