import type { ServerFrame } from '../shared/frames.js';
import { ReplyTypes } from '../shared/frames.js';

/**
 * Shape checks on decoded broker frames before anything reads them: the fields the client relies
 * on must be there with the right types. Extra fields are ignored (newer brokers may add some).
 * Returns the reason a frame is unusable, or null.
 */
export function serverFrameProblem(v: unknown): string | null {
  if (!isMap(v)) return 'a frame must be a map';
  const type = v.type;
  if (typeof type !== 'string' || !Object.hasOwn(ReplyTypes, type))
    return `unknown frame type ${String(type)}`;
  const needRef = type !== 'events' && type !== 'lost' && type !== 'error';
  if (needRef && !isUint(v.ref)) return `${type}: ref must be a non-negative integer`;
  switch (type) {
    case 'welcome':
      if (typeof v.sessionId !== 'string' || typeof v.secret !== 'string')
        return 'welcome: sessionId and secret';
      if (!isUint(v.ttlMs) || !isUint(v.heartbeatIntervalMs) || !isUint(v.revision))
        return 'welcome: numbers';
      if (typeof v.resumed !== 'boolean' || !Array.isArray(v.leases)) return 'welcome: resumed and leases';
      for (const l of v.leases)
        if (!isMap(l) || typeof l.name !== 'string' || !isUint(l.token)) return 'welcome: leases';
      return null;
    case 'granted':
      return leaseProblem(v.lease);
    case 'queued':
      return typeof v.name === 'string' ? null : 'queued: name';
    case 'ok':
      return null;
    case 'lease':
      return v.lease === null ? null : leaseProblem(v.lease);
    case 'leases':
      if (!Array.isArray(v.leases)) return 'leases: leases must be an array';
      for (const l of v.leases) {
        const p = leaseProblem(l);
        if (p) return p;
      }
      return null;
    case 'watching':
      if (!isUint(v.watchId) || !isUint(v.revision)) return 'watching: watchId and revision';
      if (v.events !== undefined) {
        if (!Array.isArray(v.events)) return 'watching: events must be an array';
        for (const e of v.events) {
          const p = eventProblem(e);
          if (p) return p;
        }
      }
      if (v.snapshot !== undefined) {
        if (!Array.isArray(v.snapshot)) return 'watching: snapshot must be an array';
        for (const l of v.snapshot) {
          const p = leaseProblem(l);
          if (p) return p;
        }
      }
      return null;
    case 'error':
      if (v.ref !== undefined && !isUint(v.ref)) return 'error: ref';
      return typeof v.code === 'string' ? null : 'error: code';
    case 'events':
      if (!Array.isArray(v.events)) return 'events: events must be an array';
      for (const e of v.events) {
        const p = eventProblem(e);
        if (p) return p;
      }
      return null;
    case 'lost':
      return typeof v.name === 'string' && isUint(v.token) ? null : 'lost: name and token';
    default:
      return null;
  }
}

/** Narrows a decoded value to a ServerFrame after {@link serverFrameProblem} said it is fine. */
export function asServerFrame(v: unknown): ServerFrame {
  return v as ServerFrame;
}

function eventProblem(e: unknown): string | null {
  if (!isMap(e) || typeof e.kind !== 'string' || typeof e.name !== 'string') return 'event: kind and name';
  if (!isUint(e.revision) || !isUint(e.token)) return 'event: revision and token';
  if (e.meta !== undefined && !(e.meta instanceof Uint8Array)) return 'event: meta';
  return null;
}

function leaseProblem(l: unknown): string | null {
  if (!isMap(l) || typeof l.name !== 'string' || !isUint(l.token) || !isUint(l.revision)) return 'lease info';
  if (l.meta !== undefined && !(l.meta instanceof Uint8Array)) return 'lease info: meta';
  return null;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
