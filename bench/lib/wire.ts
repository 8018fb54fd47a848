import { Packr } from 'msgpackr';
import { frameBinary, frameHeaderLength } from './ws-raw.js';

/**
 * The protocol as the load generator speaks it: request frames built once as bytes with
 * fixed-width integer slots (patched in place before each send), and a reader that pulls the
 * few fields a load generator needs out of a reply without decoding the rest. Everything else
 * (welcome, errors, expiry events) goes through msgpackr.
 */

// ---- writing ----

type Value = string | number | boolean | Uint8Array | { u32: number };

function writeStr(out: number[], s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length < 32) out.push(0xa0 | b.length);
  else if (b.length < 256) out.push(0xd9, b.length);
  else out.push(0xda, b.length >> 8, b.length & 0xff);
  for (const x of b) out.push(x);
}

/**
 * Encodes a flat map. `{ u32: n }` values are written as uint32 (`ce` + 4 bytes) and their
 * payload offsets are returned, so the caller can patch them; other numbers are written as
 * msgpack ints (non-negative, < 2^32).
 */
export function encodeMap(entries: [string, Value][]): { bytes: Uint8Array; slots: Map<string, number> } {
  const out: number[] = [];
  const slots = new Map<string, number>();
  if (entries.length >= 16) throw new RangeError('encodeMap handles fixmaps only');
  out.push(0x80 | entries.length);
  for (const [k, v] of entries) {
    writeStr(out, k);
    if (typeof v === 'string') writeStr(out, v);
    else if (typeof v === 'boolean') out.push(v ? 0xc3 : 0xc2);
    else if (v instanceof Uint8Array) {
      out.push(0xc4, v.length);
      for (const x of v) out.push(x);
    } else if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0 || v >= 2 ** 32) throw new RangeError(`${k}: ${v} is not a uint32`);
      if (v < 128) out.push(v);
      else out.push(0xce, (v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    } else {
      out.push(0xce);
      slots.set(k, out.length);
      out.push(0, 0, 0, 0);
      const n = v.u32 >>> 0;
      out[out.length - 4] = (n >>> 24) & 0xff;
      out[out.length - 3] = (n >>> 16) & 0xff;
      out[out.length - 2] = (n >>> 8) & 0xff;
      out[out.length - 1] = n & 0xff;
    }
  }
  return { bytes: Uint8Array.from(out), slots };
}

/**
 * A framed request with patchable uint32 fields (`ref`, `token`). One template per request
 * slot: a slot sends again only after its reply, when the previous write has long left.
 */
export class FrameTemplate {
  readonly frame: Buffer;
  private readonly refAt: number;
  private readonly tokenAt: number;

  constructor(entries: [string, Value][]) {
    const { bytes, slots } = encodeMap(entries);
    this.frame = frameBinary(bytes);
    const shift = frameHeaderLength(bytes.length);
    const refAt = slots.get('ref');
    const tokenAt = slots.get('token');
    this.refAt = refAt === undefined ? -1 : refAt + shift;
    this.tokenAt = tokenAt === undefined ? -1 : tokenAt + shift;
  }

  setRef(ref: number): this {
    this.frame.writeUInt32BE(ref >>> 0, this.refAt);
    return this;
  }

  setToken(token: number): this {
    if (this.tokenAt < 0) throw new Error('template has no token slot');
    this.frame.writeUInt32BE(token >>> 0, this.tokenAt);
    return this;
  }
}

export const acquireTemplate = (name: string, extra: [string, Value][] = []) =>
  new FrameTemplate([['type', 'acquire'], ['ref', { u32: 0 }], ['name', name], ...extra]);
export const releaseTemplate = (name: string) =>
  new FrameTemplate([
    ['type', 'release'],
    ['ref', { u32: 0 }],
    ['name', name],
    ['token', { u32: 0 }],
  ]);

// msgpackr for the frames that are not on a hot path.
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'number',
  variableMapSize: true,
});

export function encodeRequest(frame: Record<string, unknown>): Buffer {
  return frameBinary(packr.pack(frame));
}

export function decode<T = Record<string, unknown>>(buf: Buffer, start: number, end: number): T {
  return packr.unpack(buf.subarray(start, end)) as T;
}

// ---- reading ----

export const ReplyType = {
  unknown: 0,
  welcome: 1,
  granted: 2,
  queued: 3,
  ok: 4,
  lease: 5,
  leases: 6,
  watching: 7,
  error: 8,
  events: 9,
  lost: 10,
} as const;

/** What {@link peek} extracts. Reused between calls: copy what you keep. */
export interface Peeked {
  type: number;
  ref: number;
  /** `lease.token` of granted/lease replies. */
  token: number;
  /** Top-level `revision`, or `lease.revision` for granted. */
  revision: number;
  /** Number of events in an `events` frame. */
  count: number;
  /** Revisions of the events in an `events` frame, `count` of them. */
  revisions: number[];
}

export function newPeeked(): Peeked {
  return { type: 0, ref: -1, token: 0, revision: 0, count: 0, revisions: [] };
}

let b: Buffer = Buffer.alloc(0);
let p = 0;

/** Reads type, ref, token, revision and event revisions from a reply frame `buf[start, end)`. */
export function peek(buf: Buffer, start: number, end: number, out: Peeked): Peeked {
  b = buf;
  p = start;
  out.type = 0;
  out.ref = -1;
  out.token = 0;
  out.revision = 0;
  out.count = 0;
  const n = mapHeader();
  for (let i = 0; i < n && p < end; i++) {
    const kLen = strHeader();
    const k = p;
    p += kLen;
    if (kLen === 4 && b[k] === 0x74 && b[k + 1] === 0x79) {
      // "type": classify by first letter and length
      const len = strHeader();
      out.type = classify(b[p]!, len);
      p += len;
    } else if (kLen === 3 && b[k] === 0x72 && b[k + 1] === 0x65 && b[k + 2] === 0x66) {
      out.ref = readNumber(); // "ref"
    } else if (kLen === 8 && b[k] === 0x72 && b[k + 1] === 0x65) {
      out.revision = readNumber(); // "revision"
    } else if (kLen === 5 && b[k] === 0x6c && b[k + 4] === 0x65) {
      readLease(out); // "lease"
    } else if (kLen === 6 && b[k] === 0x65 && b[k + 1] === 0x76) {
      readEvents(out); // "events"
    } else skip();
  }
  return out;
}

function classify(first: number, len: number): number {
  switch (first) {
    case 0x67: // g
      return ReplyType.granted;
    case 0x71: // q
      return ReplyType.queued;
    case 0x6f: // o
      return ReplyType.ok;
    case 0x6c: // l
      return len === 5 ? ReplyType.lease : len === 6 ? ReplyType.leases : ReplyType.lost;
    case 0x77: // w
      return len === 7 ? ReplyType.welcome : ReplyType.watching;
    case 0x65: // e
      return len === 5 ? ReplyType.error : ReplyType.events;
    default:
      return ReplyType.unknown;
  }
}

function readLease(out: Peeked): void {
  if (b[p] === 0xc0) {
    p++;
    return;
  }
  const n = mapHeader();
  for (let i = 0; i < n; i++) {
    const kLen = strHeader();
    const k = p;
    p += kLen;
    if (kLen === 5 && b[k] === 0x74 && b[k + 1] === 0x6f) out.token = readNumber();
    else if (kLen === 8 && b[k] === 0x72 && b[k + 1] === 0x65 && out.revision === 0)
      out.revision = readNumber();
    else skip();
  }
}

function readEvents(out: Peeked): void {
  const n = arrayHeader();
  out.count = n;
  out.revisions.length = n;
  for (let e = 0; e < n; e++) {
    const m = mapHeader();
    let rev = 0;
    for (let i = 0; i < m; i++) {
      const kLen = strHeader();
      const k = p;
      p += kLen;
      if (kLen === 8 && b[k] === 0x72 && b[k + 1] === 0x65) rev = readNumber();
      else skip();
    }
    out.revisions[e] = rev;
  }
}

function mapHeader(): number {
  const t = b[p++]!;
  if ((t & 0xf0) === 0x80) return t & 0x0f;
  if (t === 0xde) {
    p += 2;
    return b.readUInt16BE(p - 2);
  }
  if (t === 0xdf) {
    p += 4;
    return b.readUInt32BE(p - 4);
  }
  throw new Error(`expected a map at ${p - 1}, got 0x${t.toString(16)}`);
}

function arrayHeader(): number {
  const t = b[p++]!;
  if ((t & 0xf0) === 0x90) return t & 0x0f;
  if (t === 0xdc) {
    p += 2;
    return b.readUInt16BE(p - 2);
  }
  if (t === 0xdd) {
    p += 4;
    return b.readUInt32BE(p - 4);
  }
  throw new Error(`expected an array at ${p - 1}, got 0x${t.toString(16)}`);
}

function strHeader(): number {
  const t = b[p++]!;
  if ((t & 0xe0) === 0xa0) return t & 0x1f;
  if (t === 0xd9) return b[p++]!;
  if (t === 0xda) {
    p += 2;
    return b.readUInt16BE(p - 2);
  }
  if (t === 0xdb) {
    p += 4;
    return b.readUInt32BE(p - 4);
  }
  throw new Error(`expected a string at ${p - 1}, got 0x${t.toString(16)}`);
}

function readNumber(): number {
  const t = b[p++]!;
  if (t < 0x80) return t;
  if (t >= 0xe0) return t - 0x100;
  switch (t) {
    case 0xcc:
      return b[p++]!;
    case 0xcd:
      p += 2;
      return b.readUInt16BE(p - 2);
    case 0xce:
      p += 4;
      return b.readUInt32BE(p - 4);
    case 0xcf:
      p += 8;
      return b.readUInt32BE(p - 8) * 2 ** 32 + b.readUInt32BE(p - 4);
    case 0xd0:
      return b.readInt8(p++);
    case 0xd1:
      p += 2;
      return b.readInt16BE(p - 2);
    case 0xd2:
      p += 4;
      return b.readInt32BE(p - 4);
    case 0xd3:
      p += 8;
      return Number(b.readBigInt64BE(p - 8));
    case 0xca:
      p += 4;
      return b.readFloatBE(p - 4);
    case 0xcb:
      p += 8;
      return b.readDoubleBE(p - 8);
    default:
      p--;
      skip();
      return Number.NaN;
  }
}

function skip(): void {
  const t = b[p++]!;
  if (t < 0x80 || t >= 0xe0) return;
  if ((t & 0xf0) === 0x80) {
    const n = t & 0x0f;
    for (let i = 0; i < 2 * n; i++) skip();
    return;
  }
  if ((t & 0xf0) === 0x90) {
    const n = t & 0x0f;
    for (let i = 0; i < n; i++) skip();
    return;
  }
  if ((t & 0xe0) === 0xa0) {
    p += t & 0x1f;
    return;
  }
  switch (t) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return;
    case 0xcc:
    case 0xd0:
      p += 1;
      return;
    case 0xcd:
    case 0xd1:
      p += 2;
      return;
    case 0xce:
    case 0xd2:
    case 0xca:
      p += 4;
      return;
    case 0xcf:
    case 0xd3:
    case 0xcb:
      p += 8;
      return;
    case 0xc4:
    case 0xd9:
      p += 1 + b[p]!;
      return;
    case 0xc5:
    case 0xda:
      p += 2 + b.readUInt16BE(p);
      return;
    case 0xc6:
    case 0xdb:
      p += 4 + b.readUInt32BE(p);
      return;
    case 0xdc: {
      const n = b.readUInt16BE(p);
      p += 2;
      for (let i = 0; i < n; i++) skip();
      return;
    }
    case 0xdd: {
      const n = b.readUInt32BE(p);
      p += 4;
      for (let i = 0; i < n; i++) skip();
      return;
    }
    case 0xde: {
      const n = b.readUInt16BE(p);
      p += 2;
      for (let i = 0; i < 2 * n; i++) skip();
      return;
    }
    case 0xdf: {
      const n = b.readUInt32BE(p);
      p += 4;
      for (let i = 0; i < 2 * n; i++) skip();
      return;
    }
    default:
      throw new Error(`unexpected msgpack type 0x${t.toString(16)} at ${p - 1}`);
  }
}
