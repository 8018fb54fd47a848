import type { ServerResponse } from 'node:http';
import { type ErrorCode, type ErrorDetails, LeasewireError } from '../../shared/errors.js';

/**
 * HTTP status for every catalog code (docs/HTTP.md lists the same table). A `Record` over
 * `ErrorCode`, so a code added to the catalog does not compile until it has a status here.
 */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_FRAME: 400,
  UNKNOWN_OP: 400,
  BAD_REQUEST: 400,
  UNSUPPORTED_VERSION: 400,
  HELLO_REQUIRED: 400,
  ALREADY_HELLO: 400,
  NAME_INVALID: 400,
  META_TOO_LARGE: 413,
  LEASE_HELD: 409,
  LOCK_DELAY: 409,
  NOT_HOLDER: 409,
  STALE_TOKEN: 409,
  ALREADY_WAITING: 409,
  // 409, not 408: clients and proxies may resend a request answered with 408, and a resent
  // acquire should be the caller's decision.
  WAIT_TIMEOUT: 409,
  CANCELLED: 409,
  LIMIT_EXCEEDED: 429,
  RATE_LIMITED: 429,
  // 410: the broker forgets ended sessions, so "never existed" and "expired" look the same;
  // both mean "open a new session".
  SESSION_EXPIRED: 410,
  // A wrong secret; a missing Leasewire-Session-Secret header is 401 (see missingSecret).
  BAD_SECRET: 403,
  NOT_FOUND: 404,
  COMPACTED: 410,
  UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  INTERNAL: 500,
};

/**
 * An error answered with a status the catalog code alone does not give (405, 413 for the
 * body, 414, 415, 401). The body still carries a catalog code so clients need only one table.
 */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    /** The request body was not read: the connection cannot be reused. */
    readonly closeConnection = false,
  ) {
    super(message);
    this.name = 'HttpProblem';
  }
}

export function badRequest(message: string): LeasewireError {
  return new LeasewireError('BAD_REQUEST', message);
}

export interface ErrorReply {
  status: number;
  code: ErrorCode;
  body: { code: ErrorCode; message: string; details?: ErrorDetails };
  headers: Record<string, string>;
  closeConnection: boolean;
}

/** Turns anything thrown by a handler into the reply; unknown errors become 500 INTERNAL. */
export function errorReply(err: unknown): ErrorReply {
  if (err instanceof HttpProblem) {
    return {
      status: err.status,
      code: err.code,
      body: { code: err.code, message: err.message },
      headers: err.headers,
      closeConnection: err.closeConnection,
    };
  }
  const e =
    err instanceof LeasewireError
      ? err
      : new LeasewireError('INTERNAL', 'internal error; the request had no effect', {}, { cause: err });
  const headers: Record<string, string> = {};
  if (e.details.retryAfterMs !== undefined) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(e.details.retryAfterMs / 1000)));
  }
  const body: ErrorReply['body'] = { code: e.code, message: e.message };
  if (Object.keys(e.details).length > 0) body.details = { ...e.details };
  return { status: HTTP_STATUS[e.code], code: e.code, body, headers, closeConnection: false };
}

/** Writes a JSON reply with extra headers (the listener's sendJson has none). */
export function writeJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Sends the error reply, or drops the connection if a response (an SSE stream) has already begun. */
export function writeError(res: ServerResponse, reply: ErrorReply): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers = { ...reply.headers };
  if (reply.closeConnection) headers.connection = 'close';
  writeJson(res, reply.status, reply.body, headers);
}
