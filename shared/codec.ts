import { type Options, Packr } from 'msgpackr';
import { DEFAULT_SCAN_LIMITS, type ScanLimits, scanMsgpack } from './msgpack-scan.js';

/**
 * The msgpack set-up both ends share. Records, structured clone and extension types are off:
 * frames are plain maps of strings, numbers, booleans, binary and arrays. 64-bit integers
 * decode as numbers (or BigInt past 2^53, which validation then rejects).
 *
 * msgpackr encodes `undefined` as the ext type `d4 00 00`, which the scan refuses (P3), so a
 * frame like `{ type: 'acquire', ttlMs: undefined }` would get its sender disconnected. Like
 * JSON, properties whose value is undefined are left out (`skipValues`, missing from
 * msgpackr's typings), and an undefined array element becomes nil.
 */
export const MSGPACK_OPTIONS: Options & { skipValues: unknown[] } = {
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  bundleStrings: false,
  useFloat32: 0,
  int64AsType: 'number',
  variableMapSize: true,
  skipValues: [undefined],
  encodeUndefinedAsNil: true,
};
const packr = new Packr(MSGPACK_OPTIONS);

/** Encodes one frame (a map with a `type`) to msgpack bytes. */
export function encodeFrame(frame: object): Uint8Array {
  return packr.pack(frame);
}

/** Why a frame could not be decoded. */
export class FrameDecodeError extends Error {
  override name = 'FrameDecodeError';
}

/**
 * Decodes bytes into a value after the structural scan. Throws {@link FrameDecodeError} for
 * anything the scan or msgpackr refuses; the result still needs schema validation.
 */
export function decodeFrame(bytes: Uint8Array, limits: ScanLimits = DEFAULT_SCAN_LIMITS): unknown {
  const problem = scanMsgpack(bytes, limits);
  if (problem) throw new FrameDecodeError(problem);
  try {
    return packr.unpack(bytes);
  } catch (cause) {
    throw new FrameDecodeError('msgpack decoding failed', { cause });
  }
}

// The `events` push frame is assembled from events encoded once each, so that one change
// fanned out to many watchers is encoded a single time, and several changes queued for one
// connection go out in one frame: { type: 'events', events: [ <pre-encoded>, ... ] }.
const EVENTS_FRAME_PREFIX = packr.pack({ type: 'events', events: [] }).subarray(0, -1);

/** Builds the bytes of an `events` frame from already-encoded events. */
export function encodeEventsFrame(encodedEvents: readonly Uint8Array[]): Uint8Array {
  const n = encodedEvents.length;
  const header = n < 16 ? 1 : n < 0x10000 ? 3 : 5;
  let total = EVENTS_FRAME_PREFIX.length + header;
  for (const e of encodedEvents) total += e.length;
  const out = new Uint8Array(total);
  out.set(EVENTS_FRAME_PREFIX, 0);
  let pos = EVENTS_FRAME_PREFIX.length;
  if (n < 16) out[pos++] = 0x90 | n;
  else if (n < 0x10000) {
    out[pos++] = 0xdc;
    out[pos++] = n >> 8;
    out[pos++] = n & 0xff;
  } else {
    out[pos++] = 0xdd;
    out[pos++] = (n >>> 24) & 0xff;
    out[pos++] = (n >>> 16) & 0xff;
    out[pos++] = (n >>> 8) & 0xff;
    out[pos++] = n & 0xff;
  }
  for (const e of encodedEvents) {
    out.set(e, pos);
    pos += e.length;
  }
  return out;
}
