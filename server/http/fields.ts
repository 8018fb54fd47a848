import { LeasewireError } from '../../shared/errors.js';
import { MAX_OWNER_BYTES, MAX_SESSION_ID_LENGTH } from '../../shared/limits.js';
import { nameProblem } from '../../shared/names.js';
import { hasLoneSurrogate, utf8Length } from '../../shared/utf8.js';
import type { JsonObject } from './body.js';
import { badRequest } from './http-error.js';

/**
 * Field checks for JSON bodies and query strings: the HTTP counterpart of shared/validate.ts.
 * JSON numbers arrive as doubles, so every integer is checked to be a safe integer ("5000",
 * 1e308, 1.5 and -1 are refused, not coerced).
 */

export function optionalInt(body: JsonObject, key: string, min: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw badRequest(`${key} must be an integer >= ${min}`);
  }
  return v;
}

export function requiredInt(body: JsonObject, key: string, min: number): number {
  const v = optionalInt(body, key, min);
  if (v === undefined) throw badRequest(`${key} is required`);
  return v;
}

export function optionalBool(body: JsonObject, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badRequest(`${key} must be a boolean`);
  return v;
}

export function optionalOwner(body: JsonObject): string | undefined {
  const v = body.owner;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest('owner must be a string');
  if (utf8Length(v) > MAX_OWNER_BYTES) throw badRequest(`owner is longer than ${MAX_OWNER_BYTES} bytes`);
  if (hasLoneSurrogate(v)) throw badRequest('owner holds a lone surrogate');
  return v;
}

export function sessionIdField(body: JsonObject): string {
  const v = body.session;
  if (v === undefined || v === null) throw badRequest('session (the session id) is required');
  return checkSessionId(v);
}

export function checkSessionId(v: unknown): string {
  if (typeof v !== 'string' || v === '' || v.length > MAX_SESSION_ID_LENGTH) {
    throw badRequest(`a session id is a string of 1..${MAX_SESSION_ID_LENGTH} characters`);
  }
  return v;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** `meta` is standard base64 with padding (RFC 4648 §4); anything else is refused, not guessed at. */
export function optionalMeta(body: JsonObject, maxBytes: number): Uint8Array | undefined {
  const v = body.meta;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !BASE64.test(v)) throw badRequest('meta must be a base64 string');
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length > maxBytes) {
    throw new LeasewireError('META_TOO_LARGE', `meta is ${bytes.length} bytes; at most ${maxBytes}`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** A lease name or prefix, already percent-decoded; rule P6 via nameProblem. */
export function checkName(name: string, allowEmpty = false): string {
  const problem = nameProblem(name, allowEmpty);
  if (problem) throw new LeasewireError('NAME_INVALID', problem);
  return name;
}

/**
 * Strict percent-decoding: invalid UTF-8 (`%FF`, an encoded surrogate, an overlong) is
 * refused rather than turned into U+FFFD, so two different byte strings can never name the
 * same lease (the HTTP twin of rule P4).
 */
export function decodeComponent(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new LeasewireError('NAME_INVALID', `${what} is not valid percent-encoded UTF-8`);
  }
}

/** Parses a query string strictly: `+` is a space, a key may appear once. */
export function parseQuery(search: string): Map<string, string> {
  const out = new Map<string, string>();
  if (search === '') return out;
  for (const pair of search.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1);
    const key = decodeComponent(rawKey.replace(/\+/g, ' '), 'a query parameter');
    const value = decodeComponent(rawValue.replace(/\+/g, ' '), `query parameter ${key.slice(0, 32)}`);
    if (out.has(key)) throw badRequest(`query parameter ${key.slice(0, 32)} appears more than once`);
    out.set(key, value);
  }
  return out;
}

/** A non-negative integer written in decimal digits (a revision in a query or Last-Event-ID). */
export function parseRevision(raw: string, what: string): number {
  const n = /^[0-9]{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw badRequest(`${what} must be a non-negative integer`);
  return n;
}
