import { LeasewireError } from '../../shared/errors.js';
import { authenticate } from './auth.js';
import { readJsonObject } from './body.js';
import { checkName, requiredInt, sessionIdField } from './fields.js';
import type { HttpContext } from './http-context.js';
import { writeJson } from './http-error.js';
import { leaseJson } from './json-views.js';
import type { HttpCall } from './router.js';

/** GET /v1/leases?prefix= → 200 {revision, leases}. */
export async function listLeases(call: HttpCall, ctx: HttpContext): Promise<void> {
  const prefix = checkName(call.query.get('prefix') ?? '', true);
  const { leases, revision } = await ctx.store.list(prefix);
  writeJson(call.res, 200, { revision, leases: leases.map(leaseJson) });
}

/**
 * GET /v1/leases/{name} → 200 {revision, lease}, or 404 NOT_FOUND when nobody holds it. What a
 * protected resource needs to check a fencing token: the holder's sessionId, owner and token.
 */
export async function getLease(call: HttpCall, ctx: HttpContext): Promise<void> {
  const name = checkName(call.params[0] ?? '');
  const { lease, revision } = await ctx.store.get(name);
  if (!lease) throw new LeasewireError('NOT_FOUND', `${name} is not held`);
  writeJson(call.res, 200, { revision, lease: leaseJson(lease) });
}

/** POST /v1/leases/{name}/release {session, token} → 200 {revision}. */
export async function releaseLease(call: HttpCall, ctx: HttpContext): Promise<void> {
  const { sessionId, name, token } = await holderRequest(call, ctx);
  const revision = await ctx.store.release(sessionId, name, token);
  writeJson(call.res, 200, { revision });
}

/** POST /v1/leases/{name}/renew {session, token} → 200 {lease}. */
export async function renewLease(call: HttpCall, ctx: HttpContext): Promise<void> {
  const { sessionId, name, token } = await holderRequest(call, ctx);
  const lease = await ctx.store.renew(sessionId, name, token);
  writeJson(call.res, 200, { lease: leaseJson(lease) });
}

async function holderRequest(
  call: HttpCall,
  ctx: HttpContext,
): Promise<{ sessionId: string; name: string; token: number }> {
  const name = checkName(call.params[0] ?? '');
  const body = await readJsonObject(call.req, ctx.options.maxHttpBodyBytes);
  const sessionId = sessionIdField(body);
  const token = requiredInt(body, 'token', 1);
  await authenticate(ctx, call.req, sessionId);
  return { sessionId, name, token };
}
