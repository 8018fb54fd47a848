import { MAX_META_BYTES } from '../shared/limits.js';
import type { LogLevel } from './log.js';

/** Broker options; the command line takes the same names in kebab-case (`--max-ttl-ms`). */
export interface BrokerOptions {
  /** Address to listen on; loopback by default (put a TLS proxy in front for other hosts). */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** `journal` keeps state on disk (durable default); `memory` keeps nothing across restarts. */
  store: 'memory' | 'journal';
  /** Journal store: where the journal and snapshots live. */
  dataDir: string;
  /** Journal store: when a change counts as durable. */
  fsync: 'always' | 'batch' | 'none';
  /** Journal store: keep the valid prefix of a corrupt journal instead of refusing to start. */
  repair: boolean;
  /** Journal store: write a snapshot after this many records. */
  snapshotEveryRecords: number;
  /** Session TTL when hello asks for none. */
  defaultTtlMs: number;
  /** Lowest session TTL granted; hello asks below it are raised to it. */
  minTtlMs: number;
  /** Highest session TTL granted; hello asks above it are lowered to it. */
  maxTtlMs: number;
  /** Longest lease-level ttlMs; longer requests are lowered to it (the lowest is minTtlMs). */
  maxLeaseTtlMs: number;
  /** After an expiry, a name is not granted again for this long (0 = off). */
  lockDelayMs: number;
  /** Events kept for watchers that resume with fromRevision. */
  historyLimit: number;
  /** Largest WebSocket message accepted; bigger ones close the socket with 1009. */
  maxPayloadBytes: number;
  /** Largest lease metadata (binary), at most the protocol's 1 KiB. */
  maxMetaBytes: number;
  /** Leases one session may hold (queued waits count too). */
  maxLeasesPerSession: number;
  /** Waiting acquires one session may have queued. */
  maxWaitsPerSession: number;
  /** Watches one connection may have open. */
  maxWatchesPerSession: number;
  /** Requests in flight per connection (a waiting acquire counts until it ends). */
  maxPendingRequests: number;
  /** Sustained requests per second per connection (token bucket, burst = 1 s worth). */
  maxRequestsPerSecond: number;
  /** Close a connection whose unsent bytes exceed this (a slow watcher). */
  maxBufferedBytes: number;
  /** A connection that has not sent hello by then is closed. */
  helloTimeoutMs: number;
  /** HTTP: time allowed for request headers (slowloris guard). */
  headersTimeoutMs: number;
  /** Browsers' Origin header allowed to connect; empty = any (sessions need no ambient credentials). */
  allowedOrigins: string[];
  /** Sessions at once (open connections plus detached sessions count against the fd limit). */
  maxSessions: number;
  /** How long `close()` waits for sockets to close after telling them to go away. */
  drainTimeoutMs: number;
  /** HTTP API: longest a waiting acquire is held open (a long poll); larger waitTimeoutMs are capped. */
  maxHttpWaitMs: number;
  /** HTTP API: largest request body accepted; bigger ones get 413. */
  maxHttpBodyBytes: number;
  /** HTTP API: Server-Sent Events watch streams open at once. */
  maxHttpWatches: number;
  /** HTTP API: interval of the comment lines that keep an idle SSE watch stream open. */
  sseHeartbeatMs: number;
  /** debug, info, warn, error or silent. Logs go to stderr, one line per event worth knowing. */
  logLevel: LogLevel;
}

export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  host: '127.0.0.1',
  port: 7420,
  store: 'journal',
  dataDir: './leasewire-data',
  fsync: 'batch',
  repair: false,
  snapshotEveryRecords: 100_000,
  defaultTtlMs: 10_000,
  minTtlMs: 500,
  maxTtlMs: 300_000,
  maxLeaseTtlMs: 86_400_000,
  lockDelayMs: 0,
  historyLimit: 10_000,
  maxPayloadBytes: 64 * 1024,
  maxMetaBytes: MAX_META_BYTES,
  maxLeasesPerSession: 10_000,
  maxWaitsPerSession: 1_000,
  maxWatchesPerSession: 256,
  maxPendingRequests: 4_096,
  maxRequestsPerSecond: 50_000,
  maxBufferedBytes: 8 * 1024 * 1024,
  helloTimeoutMs: 5_000,
  headersTimeoutMs: 5_000,
  allowedOrigins: [],
  maxSessions: 100_000,
  drainTimeoutMs: 2_000,
  maxHttpWaitMs: 30_000,
  maxHttpBodyBytes: 16 * 1024,
  maxHttpWatches: 1_024,
  sseHeartbeatMs: 15_000,
  logLevel: 'info',
};

const POSITIVE_INTS: (keyof BrokerOptions)[] = [
  'snapshotEveryRecords',
  'defaultTtlMs',
  'minTtlMs',
  'maxTtlMs',
  'maxLeaseTtlMs',
  'historyLimit',
  'maxPayloadBytes',
  'maxLeasesPerSession',
  'maxWaitsPerSession',
  'maxWatchesPerSession',
  'maxPendingRequests',
  'maxRequestsPerSecond',
  'maxBufferedBytes',
  'helloTimeoutMs',
  'headersTimeoutMs',
  'maxSessions',
  'drainTimeoutMs',
  'maxHttpWaitMs',
  'maxHttpBodyBytes',
  'maxHttpWatches',
  'sseHeartbeatMs',
];

/**
 * Merges user options over the defaults and rejects bad values and contradictory
 * combinations early, naming the option (TypeError for a wrong type, RangeError for a range).
 */
export function resolveBrokerOptions(input: Partial<BrokerOptions> = {}): BrokerOptions {
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(DEFAULT_BROKER_OPTIONS, key)) throw new TypeError(`unknown broker option ${key}`);
  }
  const o: BrokerOptions = { ...DEFAULT_BROKER_OPTIONS, ...stripUndefined(input) };
  for (const key of POSITIVE_INTS) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(`${key} must be a positive integer, got ${String(v)}`);
    }
  }
  if (!Number.isSafeInteger(o.lockDelayMs) || o.lockDelayMs < 0)
    throw new RangeError('lockDelayMs must be an integer >= 0');
  if (!Number.isSafeInteger(o.port) || o.port < 0 || o.port > 65535)
    throw new RangeError('port must be 0..65535');
  if (typeof o.host !== 'string' || o.host === '') throw new TypeError('host must be a non-empty string');
  if (o.store !== 'memory' && o.store !== 'journal')
    throw new RangeError(`store must be memory or journal, got ${o.store}`);
  if (!['always', 'batch', 'none'].includes(o.fsync))
    throw new RangeError(`fsync must be always, batch or none, got ${o.fsync}`);
  if (o.minTtlMs > o.maxTtlMs) throw new RangeError('minTtlMs must not exceed maxTtlMs');
  if (o.defaultTtlMs < o.minTtlMs || o.defaultTtlMs > o.maxTtlMs) {
    throw new RangeError('defaultTtlMs must lie within [minTtlMs, maxTtlMs]');
  }
  if (o.maxLeaseTtlMs < o.minTtlMs) throw new RangeError('maxLeaseTtlMs must be at least minTtlMs');
  if (o.maxMetaBytes < 0 || o.maxMetaBytes > MAX_META_BYTES) {
    throw new RangeError(`maxMetaBytes must be within 0..${MAX_META_BYTES}`);
  }
  if (o.maxPayloadBytes < 1024) throw new RangeError('maxPayloadBytes must be at least 1024');
  // Base64 of the largest meta plus the other fields must fit in one acquire body.
  if (o.maxHttpBodyBytes < 2048) throw new RangeError('maxHttpBodyBytes must be at least 2048');
  if (!Array.isArray(o.allowedOrigins)) throw new TypeError('allowedOrigins must be an array of origins');
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(o.logLevel)) {
    throw new RangeError(`logLevel must be debug, info, warn, error or silent, got ${o.logLevel}`);
  }
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Heartbeat interval for a session TTL: a third, so two pings can be lost before expiry. */
export function heartbeatIntervalFor(ttlMs: number): number {
  return Math.max(100, Math.floor(ttlMs / 3));
}
