import { LeasewireError } from '../../shared/errors.js';
import type { HttpContext } from './http-context.js';
import { writeJson } from './http-error.js';
import type { HttpCall } from './router.js';

/** GET /healthz → 200 while the process serves HTTP at all (liveness). */
export async function healthz(call: HttpCall): Promise<void> {
  writeJson(call.res, 200, { status: 'ok' });
}

/** GET /readyz → 200 when the store is open and can make changes durable; 503 otherwise (readiness). */
export async function readyz(call: HttpCall, ctx: HttpContext): Promise<void> {
  if (ctx.closing) throw new LeasewireError('SHUTTING_DOWN', 'the broker is shutting down');
  if (!ctx.store.writable) throw new LeasewireError('UNAVAILABLE', 'the store cannot make changes durable');
  writeJson(call.res, 200, { status: 'ready', revision: ctx.store.revision });
}
