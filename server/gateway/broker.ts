import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { CloseCodes } from '../../shared/close-codes.js';
import type { Clock } from '../clock.js';
import type { BrokerOptions } from '../config.js';
import { heartbeatIntervalFor } from '../config.js';
import type { Logger } from '../log.js';
import type { LeaseStore, SessionNotice } from '../storage/lease-store.js';
import type { BrokerContext } from './broker-context.js';
import { Connection } from './connection.js';
import { type GatewayMetrics, noopGatewayMetrics } from './gateway-metrics.js';
import { HeartbeatWheel } from './heartbeat-wheel.js';
import { WatchHub } from './watch-hub.js';

/**
 * Accepts already-open WebSocket connections and wires them to the store: routes the store's
 * events to the watch hub and its notices to the connection that owns each session. Knows
 * nothing of HTTP servers or process signals (that is the listener's job).
 */
export class Broker implements BrokerContext {
  readonly hub = new WatchHub();
  private readonly connections = new Set<Connection>();
  /** Session id → the connection currently speaking for it. */
  private readonly attached = new Map<string, Connection>();
  private readonly wheel: HeartbeatWheel;
  private waitSeq = 0;
  private readonly unsubscribe: (() => void)[] = [];
  private closing = false;

  constructor(
    readonly store: LeaseStore,
    readonly options: BrokerOptions,
    readonly log: Logger,
    readonly clock: Clock,
    readonly metrics: GatewayMetrics = noopGatewayMetrics,
  ) {
    this.wheel = new HeartbeatWheel(50, heartbeatIntervalFor(options.maxTtlMs), () => clock.now().mono);
    this.unsubscribe.push(store.onEvents((events) => this.hub.publish(events)));
    this.unsubscribe.push(store.onNotice((n) => this.onNotice(n)));
    this.wheel.start();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get attachedCount(): number {
    return this.attached.size;
  }

  handleConnection(ws: WebSocket, req?: IncomingMessage): void {
    if (this.closing) {
      ws.close(CloseCodes.GOING_AWAY, 'shutting down');
      return;
    }
    const remote = req ? `${req.socket.remoteAddress}:${req.socket.remotePort}` : 'unknown';
    const conn = new Connection(ws, this, remote);
    this.connections.add(conn);
  }

  nextWaitId(): number {
    return ++this.waitSeq;
  }

  attach(conn: Connection, sessionId: string): void {
    const previous = this.attached.get(sessionId);
    this.attached.set(sessionId, conn);
    if (previous && previous !== conn) {
      // S7: a resume while the old socket still looks alive (half-open TCP after a network
      // change) takes the session over. The old socket's waits end: they belonged to it.
      previous.sessionId = undefined;
      previous.closeWith(CloseCodes.SESSION_TAKEN_OVER, 'session resumed on another connection');
      void this.store.detachSession(sessionId).catch(() => {});
    }
    this.wheel.add(conn, conn.intervalMs);
  }

  detach(conn: Connection, opts: { closing: boolean }): void {
    this.wheel.remove(conn);
    if (!opts.closing) this.connections.delete(conn);
    const sid = conn.sessionId;
    if (!sid || this.attached.get(sid) !== conn) return;
    this.attached.delete(sid);
    if (opts.closing) return;
    // S3: the session outlives its connection until its deadline. S5: its waits end now.
    this.store.detachSession(sid).catch((err: unknown) => {
      this.log.debug('detach failed', { session: sid, error: String(err) });
    });
  }

  private onNotice(n: SessionNotice): void {
    this.attached.get(n.sessionId)?.onNotice(n);
  }

  /** Tells every connection to go away and waits (bounded) for them to close. */
  async close(): Promise<void> {
    this.closing = true;
    this.wheel.stop();
    for (const conn of this.connections) conn.closeWith(CloseCodes.GOING_AWAY, 'broker shutting down');
    for (const u of this.unsubscribe) u();
    this.connections.clear();
    this.attached.clear();
  }
}
