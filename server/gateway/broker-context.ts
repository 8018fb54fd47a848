import type { Clock } from '../clock.js';
import type { BrokerOptions } from '../config.js';
import type { Logger } from '../log.js';
import type { LeaseStore } from '../storage/lease-store.js';
import type { Connection } from './connection.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { WatchHub } from './watch-hub.js';

/** What a connection may reach: the store through its interface, the hub, and the broker's session map. */
export interface BrokerContext {
  readonly store: LeaseStore;
  readonly hub: WatchHub;
  readonly options: BrokerOptions;
  readonly log: Logger;
  readonly clock: Clock;
  readonly metrics: GatewayMetrics;
  nextWaitId(): number;
  /** The connection now speaks for the session; an older connection of it is closed (taken over). */
  attach(conn: Connection, sessionId: string): void;
  /** The connection no longer speaks for its session; unless `closing`, the session is detached. */
  detach(conn: Connection, opts: { closing: boolean }): void;
}
