import { MAX_NAME_BYTES } from './limits.js';
import { hasLoneSurrogate, utf8Length } from './utf8.js';

/**
 * Lease names are UTF-8 strings of 1..512 bytes with no control characters (C0, DEL, C1).
 * `/` separates levels by convention; prefix watches are plain string prefixes. Names are
 * compared byte for byte: no Unicode normalisation (rule P6).
 *
 * Returns null when valid, else the reason.
 */
export function nameProblem(name: string, allowEmpty = false): string | null {
  if (name.length === 0) return allowEmpty ? null : 'name is empty';
  if (utf8Length(name) > MAX_NAME_BYTES) return `name is longer than ${MAX_NAME_BYTES} bytes`;
  if (hasLoneSurrogate(name)) return 'name holds a lone UTF-16 surrogate';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return `name holds control character U+${hex4(c)}`;
  }
  return null;
}

function hex4(c: number): string {
  return c.toString(16).toUpperCase().padStart(4, '0');
}
