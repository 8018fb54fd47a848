import type { IncomingMessage } from 'node:http';
import { LeasewireError } from '../../shared/errors.js';
import { MAX_SECRET_LENGTH } from '../../shared/limits.js';
import type { SessionRecord } from '../core/types.js';
import type { HttpContext } from './http-context.js';
import { HttpProblem } from './http-error.js';

/** The secret travels in this header, never in a URL (URLs end up in logs and proxies). */
export const SECRET_HEADER = 'leasewire-session-secret';

/**
 * Checks the session's secret and, like any frame on a WebSocket, refreshes the session: an
 * authenticated HTTP call is a heartbeat (S2). 401 without the header, 403 BAD_SECRET for a
 * wrong one (the session is not refreshed then), 410 SESSION_EXPIRED for an unknown session.
 */
export async function authenticate(
  ctx: HttpContext,
  req: IncomingMessage,
  sessionId: string,
): Promise<SessionRecord> {
  const secret = req.headers[SECRET_HEADER];
  if (typeof secret !== 'string' || secret === '') {
    throw new HttpProblem(401, 'BAD_SECRET', 'the Leasewire-Session-Secret header is required', {
      'www-authenticate': 'Leasewire-Session-Secret',
    });
  }
  if (secret.length > MAX_SECRET_LENGTH) {
    throw new LeasewireError('BAD_SECRET', 'the secret does not match the session');
  }
  const { session } = await ctx.store.resumeSession(sessionId, secret);
  return session;
}
