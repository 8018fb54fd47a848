import { MAX_OWNER_BYTES } from '../shared/limits.js';
import { utf8Length } from '../shared/utf8.js';
import type { BackoffOptions } from './backoff.js';
import { safetyMarginMs } from './safety-deadline.js';
import type { WebSocketConstructor } from './websocket.js';

/** How the client reconnects after a dropped connection. */
export interface ReconnectOptions extends BackoffOptions {
  /**
   * When the broker refuses to resume the session (it expired): open a new session, re-attach
   * watches and let elections campaign again. With false the client stays `expired` and every
   * request fails with SESSION_EXPIRED until it is closed.
   */
  newSessionOnExpiry: boolean;
}

/** Options of {@link connect}. Every field is optional; see {@link DEFAULT_CONNECT_OPTIONS}. */
export interface ConnectOptions {
  /** Session TTL asked for; the broker clamps it and the welcome's value is the one used. */
  ttlMs?: number;
  /** A label others see as the holder of this client's leases (e.g. the host name). */
  owner?: string;
  /** A WebSocket class; defaults to `globalThis.WebSocket`, then the `ws` package. */
  WebSocket?: WebSocketConstructor;
  reconnect?: Partial<ReconnectOptions>;
  /** How long a request may wait (queued while disconnected, then in flight) before it fails with UNAVAILABLE. */
  requestTimeoutMs?: number;
  /** How long one attempt to open a socket and get a welcome may take. */
  connectTimeoutMs?: number;
  /** How long `close()` waits for the broker to confirm `bye`. */
  closeTimeoutMs?: number;
  /** Assumed bound on each clock's rate error (0.01 = 1%); sizes the safety margin. */
  clockDriftRate?: number;
  /** Fixed part of the safety margin, for timers firing late. */
  safetyMarginMs?: number;
  /** Requests held while disconnected; more fail at once with LIMIT_EXCEEDED. */
  maxQueuedRequests?: number;
  /** Items a watch holds for a slow iterator before it drops them and starts over from a snapshot. */
  watchBufferSize?: number;
}

/** Options after defaults are applied. */
export interface ResolvedOptions {
  ttlMs: number;
  owner: string | undefined;
  WebSocket: WebSocketConstructor | undefined;
  reconnect: ReconnectOptions;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  closeTimeoutMs: number;
  clockDriftRate: number;
  safetyMarginMs: number;
  maxQueuedRequests: number;
  watchBufferSize: number;
}

/** The defaults {@link connect} applies. */
export const DEFAULT_CONNECT_OPTIONS = {
  ttlMs: 10_000,
  reconnect: { initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2, newSessionOnExpiry: true },
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  closeTimeoutMs: 2_000,
  clockDriftRate: 0.01,
  safetyMarginMs: 50,
  maxQueuedRequests: 1_000,
  watchBufferSize: 1_000,
} as const satisfies Omit<ResolvedOptions, 'owner' | 'WebSocket'>;

/** Merges user options with the defaults and checks them; throws TypeError/RangeError naming the option. */
export function resolveOptions(options: ConnectOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const d = DEFAULT_CONNECT_OPTIONS;
  const r = options.reconnect ?? {};
  if (typeof r !== 'object' || r === null) throw new TypeError('reconnect must be an object');
  const resolved: ResolvedOptions = {
    ttlMs: positiveInt('ttlMs', options.ttlMs ?? d.ttlMs),
    owner: options.owner,
    WebSocket: options.WebSocket,
    reconnect: {
      initialDelayMs: nonNegative('reconnect.initialDelayMs', r.initialDelayMs ?? d.reconnect.initialDelayMs),
      maxDelayMs: nonNegative('reconnect.maxDelayMs', r.maxDelayMs ?? d.reconnect.maxDelayMs),
      multiplier: nonNegative('reconnect.multiplier', r.multiplier ?? d.reconnect.multiplier),
      newSessionOnExpiry: bool('reconnect.newSessionOnExpiry', r.newSessionOnExpiry ?? true),
    },
    requestTimeoutMs: positiveInt('requestTimeoutMs', options.requestTimeoutMs ?? d.requestTimeoutMs),
    connectTimeoutMs: positiveInt('connectTimeoutMs', options.connectTimeoutMs ?? d.connectTimeoutMs),
    closeTimeoutMs: positiveInt('closeTimeoutMs', options.closeTimeoutMs ?? d.closeTimeoutMs),
    clockDriftRate: nonNegative('clockDriftRate', options.clockDriftRate ?? d.clockDriftRate),
    safetyMarginMs: nonNegative('safetyMarginMs', options.safetyMarginMs ?? d.safetyMarginMs),
    maxQueuedRequests: positiveInt('maxQueuedRequests', options.maxQueuedRequests ?? d.maxQueuedRequests),
    watchBufferSize: positiveInt('watchBufferSize', options.watchBufferSize ?? d.watchBufferSize),
  };
  if (resolved.owner !== undefined) {
    if (typeof resolved.owner !== 'string') throw new TypeError('owner must be a string');
    if (utf8Length(resolved.owner) > MAX_OWNER_BYTES)
      throw new RangeError(`owner is longer than ${MAX_OWNER_BYTES} bytes`);
  }
  if (resolved.WebSocket !== undefined && typeof resolved.WebSocket !== 'function')
    throw new TypeError('WebSocket must be a WebSocket class');
  if (resolved.reconnect.multiplier < 1) throw new RangeError('reconnect.multiplier must be at least 1');
  if (resolved.reconnect.maxDelayMs < resolved.reconnect.initialDelayMs)
    throw new RangeError('reconnect.maxDelayMs must be at least reconnect.initialDelayMs');
  if (resolved.clockDriftRate >= 0.1) throw new RangeError('clockDriftRate must be below 0.1 (10%)');
  const margin = safetyMarginMs(resolved.ttlMs, {
    clockDriftRate: resolved.clockDriftRate,
    extraMs: resolved.safetyMarginMs,
  });
  if (margin * 2 > resolved.ttlMs)
    throw new RangeError(`ttlMs (${resolved.ttlMs}) is too short for a safety margin of ${margin} ms`);
  return resolved;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
    throw new RangeError(`${name} must be a positive integer, got ${String(v)}`);
  return v;
}

function nonNegative(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new RangeError(`${name} must be a non-negative number, got ${String(v)}`);
  return v;
}

function bool(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${name} must be a boolean`);
  return v;
}
