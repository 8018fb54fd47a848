/**
 * Helpers for the client integration tests (test/integration/client-*.test.ts): a real broker on
 * port 0, clients that are closed after each test, and waits that fail with a clear message
 * instead of sleeping.
 */
import { afterEach } from 'vitest';
import { type Client, type ConnectOptions, connect } from '../../client/index.js';
import type { ClientStatus, StatusChange } from '../../client/status.js';
import type { WatchItem } from '../../client/watch.js';
import { type BrokerOptions, type RunningBroker, startBroker } from '../../server/index.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';

export const WAIT_MS = 5_000;

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  // Clients first, then proxies, then brokers: the reverse of creation order.
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** Registers cleanup work for the end of the current test. */
export function cleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** A memory-store broker on an ephemeral port, closed after the test. */
export async function testBroker(options: Partial<BrokerOptions> = {}): Promise<RunningBroker> {
  const broker = await startBroker({
    port: 0,
    host: '127.0.0.1',
    store: 'memory',
    logLevel: 'silent',
    ...options,
  });
  cleanup(() => broker.close());
  return broker;
}

/** A fault proxy in front of the broker, closed after the test. */
export async function proxyFor(broker: RunningBroker): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: { host: broker.host, port: broker.port } });
  cleanup(() => proxy.close());
  return proxy;
}

/** A connected client, closed after the test. */
export async function testClient(url: string, options: ConnectOptions = {}): Promise<Client> {
  const client = await connect(url, { reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  cleanup(() => client.close());
  return client;
}

/** Rejects with `label` unless `promise` settles within `ms`. */
export function within<T>(promise: Promise<T>, label: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the change that brings `client` to `status` (at once if it is there already). */
export function statusReached(
  client: Client,
  status: ClientStatus,
  ms = WAIT_MS,
): Promise<StatusChange | undefined> {
  if (client.status === status) return Promise.resolve(undefined);
  return within(
    new Promise<StatusChange>((resolve) => {
      const off = client.onStatus((change) => {
        if (change.status !== status) return;
        off();
        resolve(change);
      });
    }),
    `status ${status} (now ${client.status})`,
    ms,
  );
}

/** Resolves with the time (performance.now()) at which `signal` aborted. */
export function abortedAt(signal: AbortSignal, label: string, ms = WAIT_MS): Promise<number> {
  if (signal.aborted) return Promise.resolve(performance.now());
  return within(
    new Promise<number>((resolve) =>
      signal.addEventListener('abort', () => resolve(performance.now()), { once: true }),
    ),
    label,
    ms,
  );
}

/** Collects watch items (pass `log.onEvent` as the watch's `onEvent`) and waits for one that matches. */
export class ItemLog {
  readonly items: Array<WatchItem & { at: number }> = [];
  private waiters: Array<{
    match: (item: WatchItem) => boolean;
    resolve: (item: WatchItem & { at: number }) => void;
  }> = [];

  readonly onEvent = (item: WatchItem): void => {
    const stamped = { ...item, at: performance.now() };
    this.items.push(stamped);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(item)) return true;
      w.resolve(stamped);
      return false;
    });
  };

  /** The events seen so far, as `kind name` strings. */
  get events(): string[] {
    return this.items.flatMap((i) => (i.type === 'event' ? [`${i.event.kind} ${i.event.name}`] : []));
  }

  get revisions(): number[] {
    return this.items.flatMap((i) => (i.type === 'event' ? [i.event.revision] : []));
  }

  waitFor(
    match: (item: WatchItem) => boolean,
    label: string,
    ms = WAIT_MS,
  ): Promise<WatchItem & { at: number }> {
    const seen = this.items.find(match);
    if (seen) return Promise.resolve(seen);
    return within(new Promise((resolve) => this.waiters.push({ match, resolve })), label, ms);
  }

  waitForEvent(kind: string, name: string, ms = WAIT_MS): Promise<WatchItem & { at: number }> {
    return this.waitFor(
      (i) => i.type === 'event' && i.event.kind === kind && i.event.name === name,
      `a ${kind} event for ${name}`,
      ms,
    );
  }
}
