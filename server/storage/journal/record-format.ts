import { crc32c } from './crc32c.js';

// On-disk layout, version 1. All integers little-endian.
//
// Segment file `<firstSeq, 18 digits>.wal`:
//   header (24 bytes): magic "LWJ1" | u16 version | u16 reserved (0) | u64 firstSeq
//                      | u32 crc32c of the 16 bytes before it | u32 reserved (0)
//   records, back to back:
//                      u32 payload length | u32 crc32c(length bytes + payload) | payload
//
// A record's sequence number is implicit: the segment's firstSeq plus its index in the segment.
// The checksum covers the length bytes so that a flipped length is caught as a checksum error
// instead of being trusted to find the next record.

export const SEGMENT_MAGIC = 'LWJ1';
export const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 24;
export const RECORD_HEADER_BYTES = 8;
export const SEGMENT_SUFFIX = '.wal';

/** Default cap on one record's payload; a length above the cap is treated as corruption. */
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** Sequence numbers are JavaScript numbers; the u64 on disk never exceeds this. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

const SEQ_DIGITS = 18;
const SEGMENT_NAME = /^(\d{18})\.wal$/;
const MAGIC_BYTES = new TextEncoder().encode(SEGMENT_MAGIC);

export function assertSeq(seq: number, what: string): void {
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${seq}`);
  }
}

/** Zero-padded so that file names sort in sequence order. */
export function formatSeq(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

export function segmentFileName(firstSeq: number): string {
  return `${formatSeq(firstSeq)}${SEGMENT_SUFFIX}`;
}

/** The first sequence number a segment's file name claims, or undefined for other files. */
export function parseSegmentFileName(name: string): number | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (!match) return undefined;
  const seq = Number(match[1]);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

export function encodeSegmentHeader(firstSeq: number): Uint8Array {
  assertSeq(firstSeq, 'firstSeq');
  const header = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(MAGIC_BYTES, 0);
  view.setUint16(4, FORMAT_VERSION, true);
  view.setBigUint64(8, BigInt(firstSeq), true);
  view.setUint32(16, crc32c(header.subarray(0, 16)), true);
  return header;
}

export type SegmentHeaderResult = { ok: true; firstSeq: number } | { ok: false; reason: string };

export function decodeSegmentHeader(header: Uint8Array): SegmentHeaderResult {
  if (header.length < SEGMENT_HEADER_BYTES) {
    return {
      ok: false,
      reason: `segment header is ${header.length} bytes, expected ${SEGMENT_HEADER_BYTES}`,
    };
  }
  const view = new DataView(header.buffer, header.byteOffset, SEGMENT_HEADER_BYTES);
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (header[i] !== MAGIC_BYTES[i]) return { ok: false, reason: 'segment header has no LWJ1 magic' };
  }
  if (view.getUint32(16, true) !== crc32c(header.subarray(0, 16))) {
    return { ok: false, reason: 'segment header checksum mismatch' };
  }
  const version = view.getUint16(4, true);
  if (version !== FORMAT_VERSION) {
    return { ok: false, reason: `unsupported segment format version ${version}` };
  }
  const firstSeq = view.getBigUint64(8, true);
  if (firstSeq > BigInt(MAX_SEQ)) return { ok: false, reason: `first sequence ${firstSeq} is out of range` };
  return { ok: true, firstSeq: Number(firstSeq) };
}

/** Bytes a record with this payload occupies on disk. */
export function recordBytes(payloadLength: number): number {
  return RECORD_HEADER_BYTES + payloadLength;
}

/** Writes the 8-byte record header for `payload` into `target` at `offset`. */
export function writeRecordHeader(target: Uint8Array, offset: number, payload: Uint8Array): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, RECORD_HEADER_BYTES);
  view.setUint32(0, payload.length, true);
  const lengthBytes = target.subarray(offset, offset + 4);
  view.setUint32(4, crc32c(payload, crc32c(lengthBytes)), true);
}

/** One record as a single buffer (header + payload); the writer uses headers and writev instead. */
export function encodeRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(recordBytes(payload.length));
  out.set(payload, RECORD_HEADER_BYTES);
  writeRecordHeader(out, 0, payload);
  return out;
}

export function readRecordLength(buf: Uint8Array, offset: number): number {
  return new DataView(buf.buffer, buf.byteOffset + offset, 4).getUint32(0, true);
}

/** True when the complete record at `offset` (header and payload present in `buf`) is intact. */
export function recordIsIntact(buf: Uint8Array, offset: number, payloadLength: number): boolean {
  const stored = new DataView(buf.buffer, buf.byteOffset + offset + 4, 4).getUint32(0, true);
  const start = offset + RECORD_HEADER_BYTES;
  const crc = crc32c(buf.subarray(start, start + payloadLength), crc32c(buf.subarray(offset, offset + 4)));
  return crc === stored;
}
