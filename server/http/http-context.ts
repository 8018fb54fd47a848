import type { Clock } from '../clock.js';
import type { BrokerOptions } from '../config.js';
import type { WatchHub } from '../gateway/watch-hub.js';
import type { Logger } from '../log.js';
import type { LeaseStore } from '../storage/lease-store.js';
import type { WaitRegistry } from './wait-registry.js';
import type { WatchStreams } from './watch-streams.js';

/** What the HTTP API needs from the broker: the same store and hub the WebSocket gateway uses. */
export interface HttpBrokerView {
  readonly store: LeaseStore;
  readonly hub: WatchHub;
  readonly options: BrokerOptions;
  readonly log: Logger;
  readonly clock: Clock;
  /** Wait ids are unique per store, shared with the WebSocket gateway. */
  nextWaitId(): number;
}

/** What each route handler may reach. */
export interface HttpContext extends HttpBrokerView {
  readonly waits: WaitRegistry;
  readonly streams: WatchStreams;
  /** True once close() began: new requests get 503 SHUTTING_DOWN. */
  readonly closing: boolean;
}
