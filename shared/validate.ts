import { LeasewireError } from './errors.js';
import type { Request } from './frames.js';
import { MAX_META_BYTES, MAX_OWNER_BYTES, MAX_SECRET_LENGTH, MAX_SESSION_ID_LENGTH } from './limits.js';
import { nameProblem } from './names.js';
import { hasLoneSurrogate, utf8Length } from './utf8.js';

/**
 * Schema checks for decoded request frames (rule P3). The decoder only promises a tree of
 * plain values; everything a handler reads is checked here first. Unknown fields are ignored
 * so that newer clients can add optional fields (rule P2).
 */

type Fields = Record<string, unknown>;

function isPlainMap(v: unknown): v is Fields {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function bad(message: string): LeasewireError {
  return new LeasewireError('BAD_REQUEST', message);
}

/** The request id, if the frame has a usable one: lets error replies name their request. */
export function peekRef(v: unknown): number | undefined {
  if (!isPlainMap(v)) return undefined;
  const ref = v.ref;
  return typeof ref === 'number' && Number.isSafeInteger(ref) && ref >= 0 ? ref : undefined;
}

function uint(f: Fields, key: string, opts: { min?: number; optional: true }): number | undefined;
function uint(f: Fields, key: string, opts?: { min?: number; optional?: false }): number;
function uint(f: Fields, key: string, opts: { min?: number; optional?: boolean } = {}): number | undefined {
  const v = f[key];
  if (v === undefined || v === null) {
    if (opts.optional) return undefined;
    throw bad(`${key} is required`);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(`${key} must be an integer`);
  const min = opts.min ?? 0;
  if (v < min) throw bad(`${key} must be at least ${min}`);
  return v;
}

function bool(f: Fields, key: string): boolean | undefined {
  const v = f[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`${key} must be a boolean`);
  return v;
}

function text(f: Fields, key: string, maxBytes: number, optional: boolean): string | undefined {
  const v = f[key];
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw bad(`${key} is required`);
  }
  if (typeof v !== 'string') throw bad(`${key} must be a string`);
  if (utf8Length(v) > maxBytes) throw bad(`${key} is longer than ${maxBytes} bytes`);
  if (hasLoneSurrogate(v)) throw bad(`${key} holds a lone surrogate`);
  return v;
}

function leaseName(f: Fields, key: string, allowEmpty = false): string {
  const v = f[key];
  if (typeof v !== 'string') throw new LeasewireError('NAME_INVALID', `${key} must be a string`);
  const problem = nameProblem(v, allowEmpty);
  if (problem) throw new LeasewireError('NAME_INVALID', problem);
  return v;
}

function meta(f: Fields, key: string, maxBytes: number, allowNull: boolean): Uint8Array | null | undefined {
  const v = f[key];
  if (v === undefined) return undefined;
  if (v === null) {
    if (allowNull) return null;
    return undefined;
  }
  if (!(v instanceof Uint8Array)) throw bad(`${key} must be binary (msgpack bin)`);
  if (v.length > maxBytes)
    throw new LeasewireError('META_TOO_LARGE', `${key} is ${v.length} bytes; at most ${maxBytes}`);
  return v;
}

export interface ValidateOptions {
  maxMetaBytes: number;
}

const DEFAULT_VALIDATE: ValidateOptions = { maxMetaBytes: MAX_META_BYTES };

/**
 * Checks a decoded frame and returns it as a typed request, or throws a LeasewireError with
 * BAD_FRAME, UNKNOWN_OP, BAD_REQUEST, NAME_INVALID or META_TOO_LARGE.
 */
export function validateRequest(v: unknown, options: ValidateOptions = DEFAULT_VALIDATE): Request {
  if (!isPlainMap(v)) throw new LeasewireError('BAD_FRAME', 'a frame must be a msgpack map');
  const type = v.type;
  if (typeof type !== 'string') throw new LeasewireError('BAD_FRAME', 'a frame must have a string type');
  const ref = uint(v, 'ref');
  switch (type) {
    case 'hello': {
      const req: Request = { type, ref, version: uint(v, 'version') };
      const ttlMs = uint(v, 'ttlMs', { min: 1, optional: true });
      if (ttlMs !== undefined) req.ttlMs = ttlMs;
      const owner = text(v, 'owner', MAX_OWNER_BYTES, true);
      if (owner !== undefined) req.owner = owner;
      const sessionId = text(v, 'sessionId', MAX_SESSION_ID_LENGTH, true);
      const secret = text(v, 'secret', MAX_SECRET_LENGTH, true);
      if ((sessionId === undefined) !== (secret === undefined)) {
        throw bad('sessionId and secret go together');
      }
      if (sessionId !== undefined && secret !== undefined) {
        req.sessionId = sessionId;
        req.secret = secret;
      }
      return req;
    }
    case 'acquire': {
      const req: Request = { type, ref, name: leaseName(v, 'name') };
      const wait = bool(v, 'wait');
      if (wait !== undefined) req.wait = wait;
      const waitTimeoutMs = uint(v, 'waitTimeoutMs', { min: 0, optional: true });
      if (waitTimeoutMs !== undefined) req.waitTimeoutMs = waitTimeoutMs;
      const m = meta(v, 'meta', options.maxMetaBytes, false);
      if (m) req.meta = m;
      const ttlMs = uint(v, 'ttlMs', { min: 1, optional: true });
      if (ttlMs !== undefined) req.ttlMs = ttlMs;
      return req;
    }
    case 'release':
    case 'renew':
      return { type, ref, name: leaseName(v, 'name'), token: uint(v, 'token', { min: 1 }) };
    case 'setMeta': {
      const m = meta(v, 'meta', options.maxMetaBytes, true);
      if (m === undefined) throw bad('meta is required (null removes it)');
      return { type, ref, name: leaseName(v, 'name'), token: uint(v, 'token', { min: 1 }), meta: m };
    }
    case 'cancel':
    case 'get':
      return { type, ref, name: leaseName(v, 'name') };
    case 'list':
      return { type, ref, prefix: leaseName(v, 'prefix', true) };
    case 'watch': {
      const req: Request = { type, ref, prefix: leaseName(v, 'prefix', true) };
      const fromRevision = uint(v, 'fromRevision', { min: 0, optional: true });
      if (fromRevision !== undefined) req.fromRevision = fromRevision;
      return req;
    }
    case 'unwatch':
      return { type, ref, watchId: uint(v, 'watchId', { min: 1 }) };
    case 'keepalive':
    case 'bye':
      return { type, ref };
    default:
      throw new LeasewireError('UNKNOWN_OP', `unknown frame type ${JSON.stringify(type.slice(0, 64))}`);
  }
}
