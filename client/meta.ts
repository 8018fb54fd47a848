import { MAX_META_BYTES } from '../shared/limits.js';

/** Lease metadata as callers may give it: bytes, or a string sent as UTF-8. */
export type MetaInput = Uint8Array | string;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Converts and checks `meta` (an option named `option` in error messages). */
export function metaBytes(meta: MetaInput, option = 'meta'): Uint8Array {
  let bytes: Uint8Array;
  if (typeof meta === 'string') bytes = encoder.encode(meta);
  else if (meta instanceof Uint8Array) bytes = meta;
  else throw new TypeError(`${option} must be a Uint8Array or a string`);
  if (bytes.length > MAX_META_BYTES) {
    throw new RangeError(`${option} is ${bytes.length} bytes; at most ${MAX_META_BYTES}`);
  }
  return bytes;
}

/** Metadata read as UTF-8 (invalid sequences become U+FFFD), or undefined. */
export function metaText(meta: Uint8Array | undefined): string | undefined {
  return meta === undefined ? undefined : decoder.decode(meta);
}
