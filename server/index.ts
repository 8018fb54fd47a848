import { WS_PATH } from '../shared/version.js';
import { type Clock, systemClock } from './clock.js';
import { type BrokerOptions, resolveBrokerOptions } from './config.js';
import { Broker } from './gateway/broker.js';
import { HttpApi } from './http/http-api.js';
import { Listener } from './listener.js';
import { createLogger, type Logger } from './log.js';
import { BrokerMetrics } from './metrics/broker-metrics.js';
import { createStore, type JournalTestKnobs } from './storage/create-store.js';
import type { LeaseStore } from './storage/lease-store.js';

export type { BrokerOptions } from './config.js';
export { DEFAULT_BROKER_OPTIONS, resolveBrokerOptions } from './config.js';
export type { LeaseStore } from './storage/lease-store.js';

/** A running broker, embedded in this process. */
export interface RunningBroker {
  /** ws://host:port/v1 */
  readonly url: string;
  /** http://host:port, for the HTTP API and metrics. */
  readonly httpUrl: string;
  readonly host: string;
  readonly port: number;
  readonly options: BrokerOptions;
  readonly store: LeaseStore;
  readonly broker: Broker;
  /** This broker's Prometheus registry, as GET /metrics serves it. */
  readonly metrics: BrokerMetrics;
  /** Tells every session to go away (1001), stops listening, closes the store. Idempotent. */
  close(): Promise<void>;
}

export interface StartExtras {
  logger?: Logger;
  clock?: Clock;
  /** For tests: fault injection and small segments for the journal store. */
  journal?: JournalTestKnobs;
}

/**
 * Starts a broker. Options mirror the command-line flags in camelCase; `port: 0` picks a
 * free port.
 *
 * @example
 * const broker = await startBroker({ port: 0, store: 'memory' });
 * console.log(broker.url); // ws://127.0.0.1:54321/v1
 * await broker.close();
 */
export async function startBroker(
  options: Partial<BrokerOptions> = {},
  extras: StartExtras = {},
): Promise<RunningBroker> {
  const resolved = resolveBrokerOptions(options);
  const log = extras.logger ?? createLogger(resolved.logLevel);
  const clock = extras.clock ?? systemClock;
  const metrics = new BrokerMetrics();
  const store = createStore(resolved, clock, log, metrics.storeObserver, extras.journal);
  try {
    await store.open();
  } catch (err) {
    metrics.close();
    throw err;
  }
  const broker = new Broker(store, resolved, log, clock, metrics.gateway);
  const http = new HttpApi(broker, metrics.http);
  metrics.observe({ broker, http });
  const listener = new Listener(broker, resolved, log, [http.handler, metrics.handler]);
  let address: { host: string; port: number };
  try {
    address = await listener.listen();
  } catch (err) {
    http.close();
    await broker.close();
    await store.close();
    metrics.close();
    throw err;
  }
  const hostPart = address.host.includes(':') ? `[${address.host}]` : address.host;
  let closing: Promise<void> | undefined;
  return {
    url: `ws://${hostPart}:${address.port}${WS_PATH}`,
    httpUrl: `http://${hostPart}:${address.port}`,
    host: address.host,
    port: address.port,
    options: resolved,
    store,
    broker,
    metrics,
    close() {
      closing ??= (async () => {
        // Long polls and SSE streams first: they hold HTTP connections the listener would wait for.
        http.close();
        await broker.close();
        await listener.close();
        await store.close();
        metrics.close();
      })();
      return closing;
    },
  };
}
