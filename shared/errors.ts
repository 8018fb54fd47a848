/**
 * The one catalog of error codes that cross the wire. The broker sends `{ code, message }`; the
 * client rebuilds a {@link LeasewireError} with the same code. Each entry says whether retrying
 * the same request later can help.
 */
export const ErrorCodes = {
  BAD_FRAME: {
    retryable: false,
    description: 'The frame could not be decoded or does not match its schema.',
  },
  UNKNOWN_OP: { retryable: false, description: 'The frame type is not a request this broker knows.' },
  BAD_REQUEST: { retryable: false, description: 'A field has a wrong type or a value out of range.' },
  UNSUPPORTED_VERSION: { retryable: false, description: 'The protocol version in hello is not supported.' },
  HELLO_REQUIRED: { retryable: false, description: 'The first frame on a connection must be hello.' },
  ALREADY_HELLO: { retryable: false, description: 'hello was sent twice on one connection.' },
  NAME_INVALID: {
    retryable: false,
    description: 'A lease name is empty, too long, not valid UTF-8, or holds control characters.',
  },
  META_TOO_LARGE: { retryable: false, description: 'Lease metadata is larger than the broker allows.' },
  LEASE_HELD: { retryable: true, description: 'The lease is held by another session.' },
  LOCK_DELAY: {
    retryable: true,
    description: 'The lease expired recently and is not granted again until its lock-delay ends.',
  },
  NOT_HOLDER: { retryable: false, description: 'This session does not hold the lease.' },
  STALE_TOKEN: { retryable: false, description: 'The fencing token is not the current token of the lease.' },
  ALREADY_WAITING: { retryable: false, description: 'This session already waits for this lease.' },
  WAIT_TIMEOUT: { retryable: true, description: 'A waiting acquire was not granted within waitTimeoutMs.' },
  CANCELLED: { retryable: true, description: 'A waiting acquire was cancelled before it was granted.' },
  LIMIT_EXCEEDED: {
    retryable: true,
    description:
      'A limit would be exceeded (leases, waits or watches per session, requests in flight per connection, sessions per broker); details.limit names it. Retry once the count has dropped.',
  },
  RATE_LIMITED: { retryable: true, description: 'The session sends requests faster than the broker allows.' },
  SESSION_EXPIRED: {
    retryable: false,
    description: 'The session is unknown or has expired; its leases are gone. Open a new session.',
  },
  BAD_SECRET: { retryable: false, description: 'The resume secret does not match the session.' },
  NOT_FOUND: { retryable: false, description: 'The named lease, watch or session does not exist.' },
  COMPACTED: {
    retryable: false,
    description: 'The requested revision is older than the event history kept; take a new snapshot.',
  },
  UNAVAILABLE: {
    retryable: true,
    description:
      'The store cannot make changes durable right now (disk full, I/O error); new changes are refused until it recovers.',
  },
  SHUTTING_DOWN: { retryable: true, description: 'The broker is shutting down; reconnect to it or another.' },
  INTERNAL: { retryable: true, description: 'An unexpected broker error; the request had no effect.' },
} as const satisfies Record<string, { retryable: boolean; description: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ErrorCodes, value);
}

/** Extra, code-specific facts an error may carry (the current holder for LEASE_HELD, etc.). */
export interface ErrorDetails {
  /** LEASE_HELD: who holds the lease now. */
  holder?: { owner: string; sessionId: string; token: number };
  /** LOCK_DELAY and RATE_LIMITED: how long until a retry can succeed. */
  retryAfterMs?: number;
  /** COMPACTED: the oldest revision still in the history. */
  oldestRevision?: number;
  /** LIMIT_EXCEEDED: which limit and its value. */
  limit?: string;
  max?: number;
}

/**
 * An error with a stable catalog code. Thrown by the client for every error reply from the
 * broker, and used inside the broker to carry a code up to the gateway.
 *
 * @example
 * try { await client.acquire('jobs/nightly') } catch (e) {
 *   if (e instanceof LeasewireError && e.code === 'LEASE_HELD') console.log(e.details.holder)
 * }
 */
export class LeasewireError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message?: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message ?? ErrorCodes[code].description, options);
    this.name = 'LeasewireError';
    this.code = code;
    this.details = details;
  }

  /** True when sending the same request again later may succeed. */
  get retryable(): boolean {
    return ErrorCodes[this.code].retryable;
  }
}
