import { isStrictUtf8 } from './utf8.js';

/**
 * A byte-level pass over a msgpack frame before msgpackr decodes it. msgpackr is a decoder,
 * not a validator: deep nesting overflows the stack, ext types come back as RegExp, Set, Date
 * or peer-defined records, and invalid UTF-8 silently becomes U+FFFD. This pass allocates
 * nothing and accepts only what our frames can contain (rule P3): nil, booleans, integers,
 * floats, strict UTF-8 strings, binary, arrays and maps with string keys, within a depth and an
 * element budget, with no trailing bytes.
 */
export interface ScanLimits {
  maxDepth: number;
  maxElements: number;
}

/** For frames a client sends: small requests, so tight bounds. */
export const DEFAULT_SCAN_LIMITS: ScanLimits = { maxDepth: 4, maxElements: 4096 };

/**
 * For frames the broker sends: a `list` reply, a watch snapshot or an `events` frame can hold
 * thousands of leases. The client still refuses ext types, bad UTF-8 and absurd nesting.
 */
export const SERVER_FRAME_SCAN_LIMITS: ScanLimits = { maxDepth: 6, maxElements: 50_000_000 };

/** Returns null if the frame is acceptable, otherwise a reason for the error message. */
export function scanMsgpack(bytes: Uint8Array, limits: ScanLimits = DEFAULT_SCAN_LIMITS): string | null {
  if (bytes.length === 0) return 'empty frame';
  const s = new Scanner(bytes, limits);
  const err = s.value(0, false);
  if (err) return err;
  if (s.pos !== bytes.length) return `trailing bytes after the frame at offset ${s.pos}`;
  return null;
}

class Scanner {
  pos = 0;
  elements = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly limits: ScanLimits,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number): boolean {
    return this.pos + n <= this.bytes.length;
  }

  private u8(): number {
    return this.bytes[this.pos++] as number;
  }

  private len(width: 1 | 2 | 4): number | null {
    if (!this.need(width)) return null;
    const at = this.pos;
    this.pos += width;
    if (width === 1) return this.view.getUint8(at);
    if (width === 2) return this.view.getUint16(at);
    return this.view.getUint32(at);
  }

  private str(n: number | null): string | null {
    if (n === null || !this.need(n)) return 'string length runs past the end of the frame';
    if (!isStrictUtf8(this.bytes, this.pos, this.pos + n))
      return `invalid UTF-8 in a string at offset ${this.pos}`;
    this.pos += n;
    return null;
  }

  private skip(n: number | null, what: string): string | null {
    if (n === null || !this.need(n)) return `${what} runs past the end of the frame`;
    this.pos += n;
    return null;
  }

  private container(count: number | null, depth: number, isMap: boolean): string | null {
    if (count === null) return 'container length runs past the end of the frame';
    if (depth + 1 > this.limits.maxDepth) return `nesting deeper than ${this.limits.maxDepth}`;
    this.elements += count;
    if (this.elements > this.limits.maxElements) return `more than ${this.limits.maxElements} elements`;
    // Each element takes at least one byte: a lying length fails here, before any loop.
    if (!this.need(isMap ? count * 2 : count)) return 'container length runs past the end of the frame';
    for (let i = 0; i < count; i++) {
      if (isMap) {
        const keyErr = this.value(depth + 1, true);
        if (keyErr) return keyErr;
      }
      const err = this.value(depth + 1, false);
      if (err) return err;
    }
    return null;
  }

  value(depth: number, mustBeString: boolean): string | null {
    if (!this.need(1)) return 'unexpected end of frame';
    const at = this.pos;
    const b = this.u8();
    const isStr = (b >= 0xa0 && b <= 0xbf) || b === 0xd9 || b === 0xda || b === 0xdb;
    if (mustBeString && !isStr) return `map key at offset ${at} is not a string`;
    if (b <= 0x7f || b >= 0xe0) return null; // fixint
    if (b >= 0x80 && b <= 0x8f) return this.container(b & 0x0f, depth, true);
    if (b >= 0x90 && b <= 0x9f) return this.container(b & 0x0f, depth, false);
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f);
    switch (b) {
      case 0xc0: // nil
      case 0xc2: // false
      case 0xc3: // true
        return null;
      case 0xc4:
        return this.skip(this.len(1), 'binary');
      case 0xc5:
        return this.skip(this.len(2), 'binary');
      case 0xc6:
        return this.skip(this.len(4), 'binary');
      case 0xca:
        return this.skip(4, 'float');
      case 0xcb:
        return this.skip(8, 'float');
      case 0xcc:
      case 0xd0:
        return this.skip(1, 'integer');
      case 0xcd:
      case 0xd1:
        return this.skip(2, 'integer');
      case 0xce:
      case 0xd2:
        return this.skip(4, 'integer');
      case 0xcf:
      case 0xd3:
        return this.skip(8, 'integer');
      case 0xd9:
        return this.str(this.len(1));
      case 0xda:
        return this.str(this.len(2));
      case 0xdb:
        return this.str(this.len(4));
      case 0xdc:
        return this.container(this.len(2), depth, false);
      case 0xdd:
        return this.container(this.len(4), depth, false);
      case 0xde:
        return this.container(this.len(2), depth, true);
      case 0xdf:
        return this.container(this.len(4), depth, true);
      default:
        // 0xc1 (never used) and every ext type (0xc7-0xc9, 0xd4-0xd8): msgpackr would turn
        // these into Dates, RegExps, Sets, records or C1Type objects.
        return `msgpack type 0x${b.toString(16)} at offset ${at} is not allowed`;
    }
  }
}
