import { LeasewireError } from '../../shared/errors.js';
import { heartbeatIntervalFor } from '../config.js';
import { authenticate } from './auth.js';
import { readJsonObject } from './body.js';
import { checkSessionId, optionalInt, optionalOwner } from './fields.js';
import type { HttpContext } from './http-context.js';
import { writeJson } from './http-error.js';
import type { HttpCall } from './router.js';

/**
 * POST /v1/sessions {ttlMs?, owner?} → 201 {id, secret, ttlMs, heartbeatIntervalMs}. The same
 * kind of session hello opens: same TTL clamping, expiry and events; kept alive by keepalive
 * (or any authenticated call) at heartbeatIntervalMs instead of pings.
 */
export async function createSession(call: HttpCall, ctx: HttpContext): Promise<void> {
  const body = await readJsonObject(call.req, ctx.options.maxHttpBodyBytes);
  const requested = optionalInt(body, 'ttlMs', 1);
  const owner = optionalOwner(body) ?? '';
  const { options, store } = ctx;
  if (store.stats.sessions >= options.maxSessions) {
    throw new LeasewireError('LIMIT_EXCEEDED', 'the broker has reached maxSessions', {
      limit: 'maxSessions',
      max: options.maxSessions,
    });
  }
  const ttlMs = Math.min(options.maxTtlMs, Math.max(options.minTtlMs, requested ?? options.defaultTtlMs));
  const { session, secret } = await store.openSession({ ttlMs, owner });
  writeJson(
    call.res,
    201,
    {
      id: session.id,
      secret,
      ttlMs: session.ttlMs,
      heartbeatIntervalMs: heartbeatIntervalFor(session.ttlMs),
    },
    { location: `/v1/sessions/${encodeURIComponent(session.id)}` },
  );
}

/** POST /v1/sessions/{id}/keepalive → 200 {id, ttlMs, expiresInMs, heartbeatIntervalMs}. */
export async function keepalive(call: HttpCall, ctx: HttpContext): Promise<void> {
  const id = checkSessionId(call.params[0]);
  const session = await authenticate(ctx, call.req, id);
  const deadline = ctx.store.sessionDeadline(id);
  const expiresInMs = deadline === undefined ? 0 : Math.max(0, Math.round(deadline - ctx.clock.now().mono));
  writeJson(call.res, 200, {
    id,
    ttlMs: session.ttlMs,
    expiresInMs,
    heartbeatIntervalMs: heartbeatIntervalFor(session.ttlMs),
  });
}

/** DELETE /v1/sessions/{id} → 200 {revision}: ends the session now and releases its leases. */
export async function deleteSession(call: HttpCall, ctx: HttpContext): Promise<void> {
  const id = checkSessionId(call.params[0]);
  await authenticate(ctx, call.req, id);
  await ctx.store.closeSession(id);
  writeJson(call.res, 200, { revision: ctx.store.revision });
}
