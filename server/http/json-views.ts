import type { LeaseEvent, LeaseInfo } from '../../shared/frames.js';

/**
 * The JSON shapes of the HTTP API: the WebSocket protocol's LeaseInfo and LeaseEvent, field
 * for field, except that binary `meta` travels as base64.
 */
export type LeaseJson = Omit<LeaseInfo, 'meta'> & { meta?: string };
export type EventJson = Omit<LeaseEvent, 'meta'> & { meta?: string };

export function leaseJson(info: LeaseInfo): LeaseJson {
  const { meta, ...rest } = info;
  return meta ? { ...rest, meta: base64(meta) } : rest;
}

export function eventJson(event: LeaseEvent): EventJson {
  const { meta, ...rest } = event;
  return meta ? { ...rest, meta: base64(meta) } : rest;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}
