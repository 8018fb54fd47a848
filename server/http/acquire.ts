import { LeasewireError } from '../../shared/errors.js';
import { heartbeatIntervalFor } from '../config.js';
import type { AcquireResult } from '../core/types.js';
import type { StoreAcquireParams } from '../storage/lease-store.js';
import { authenticate } from './auth.js';
import { readJsonObject } from './body.js';
import { checkName, optionalBool, optionalInt, optionalMeta, sessionIdField } from './fields.js';
import type { HttpContext } from './http-context.js';
import { writeJson } from './http-error.js';
import { leaseJson } from './json-views.js';
import type { HttpCall } from './router.js';
import type { RegisteredWait, WaitOutcome } from './wait-registry.js';

/**
 * POST /v1/leases/{name}/acquire {session, wait?, waitTimeoutMs?, meta? (base64), ttlMs?}
 * → 200 {lease}. Without `wait`, a held lease answers 409 LEASE_HELD at once. With `wait`, the
 * request is a bounded long poll: it is answered when the lease is granted (200) or when
 * waitTimeoutMs, capped at maxHttpWaitMs, passes (409 WAIT_TIMEOUT). If the client goes away
 * first, the wait is cancelled; a grant that raced the disconnect is released again, since
 * nobody learned its token.
 */
export async function acquireLease(call: HttpCall, ctx: HttpContext): Promise<void> {
  const { req, res } = call;
  const name = checkName(call.params[0] ?? '');
  const body = await readJsonObject(req, ctx.options.maxHttpBodyBytes);
  const sessionId = sessionIdField(body);
  const wait = optionalBool(body, 'wait') ?? false;
  const waitTimeoutMs = optionalInt(body, 'waitTimeoutMs', 0);
  const meta = optionalMeta(body, ctx.options.maxMetaBytes);
  const ttlMs = optionalInt(body, 'ttlMs', 1);
  const session = await authenticate(ctx, req, sessionId);

  const waitId = ctx.nextWaitId();
  const params: StoreAcquireParams = { waitId };
  if (meta) params.meta = meta;
  if (ttlMs !== undefined) params.ttlMs = ttlMs;
  let registered: RegisteredWait | undefined;
  if (wait) {
    const cap = ctx.options.maxHttpWaitMs;
    params.wait = true;
    params.waitTimeoutMs = Math.min(waitTimeoutMs ?? cap, cap);
    // Before the store call: with a durable store the grant notice can come first.
    registered = ctx.waits.register(waitId);
  }

  // Watch for the client going away from the start, so a close during the store call is seen.
  let gone = false;
  let queued = false;
  const cancel = () => void ctx.store.cancelWait(sessionId, name).catch(() => {});
  const onClose = () => {
    if (res.writableEnded) return;
    gone = true;
    if (queued) cancel();
  };
  res.once('close', onClose);

  let result: AcquireResult;
  try {
    result = await ctx.store.acquire(sessionId, name, params);
  } catch (err) {
    registered?.dispose();
    res.off('close', onClose);
    throw err;
  }
  if (result.kind !== 'queued' || !registered) {
    registered?.dispose();
    res.off('close', onClose);
    if (result.kind === 'queued') throw new Error('the store queued an acquire that did not ask to wait');
    answerAt(call, name, result);
    return;
  }

  queued = true;
  if (gone) cancel();
  // An open long poll is a sign of life (S2): refresh the session while it waits, so a wait
  // longer than the session TTL does not end with SESSION_EXPIRED.
  const everyMs = heartbeatIntervalFor(session.ttlMs);
  let timer = ctx.clock.setTimer(function tick() {
    ctx.store.touch(sessionId);
    timer = ctx.clock.setTimer(tick, everyMs);
  }, everyMs);
  let outcome: WaitOutcome;
  try {
    outcome = await registered.outcome;
  } finally {
    ctx.clock.clearTimer(timer);
    res.off('close', onClose);
  }
  if (gone) {
    if (outcome.kind === 'granted') {
      void ctx.store.release(sessionId, name, outcome.lease.token).catch(() => {});
    }
    return;
  }
  switch (outcome.kind) {
    case 'granted':
      writeJson(res, 200, { lease: leaseJson(outcome.lease) });
      return;
    case 'ended':
      throw new LeasewireError(
        outcome.code,
        outcome.code === 'WAIT_TIMEOUT'
          ? `${name} was not granted within ${params.waitTimeoutMs} ms (waitTimeoutMs, capped at maxHttpWaitMs)`
          : `the wait for ${name} ended: ${outcome.code}`,
      );
    case 'shutdown':
      cancel();
      throw new LeasewireError('SHUTTING_DOWN', 'the broker is shutting down');
  }
}

function answerAt(call: HttpCall, name: string, result: Exclude<AcquireResult, { kind: 'queued' }>): void {
  switch (result.kind) {
    case 'granted':
      writeJson(call.res, 200, { lease: leaseJson(result.lease) });
      return;
    case 'held':
      throw new LeasewireError(
        'LEASE_HELD',
        `${name} is held by ${result.holder.owner || result.holder.sessionId}`,
        {
          holder: result.holder,
        },
      );
    case 'lockDelay':
      throw new LeasewireError('LOCK_DELAY', `${name} is in lock-delay after an expiry`, {
        retryAfterMs: result.retryAfterMs,
      });
  }
}
