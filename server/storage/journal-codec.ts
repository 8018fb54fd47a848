import { Packr } from 'msgpackr';
import { MSGPACK_OPTIONS } from '../../shared/codec.js';
import type { ChangeRecord, TableSnapshot } from '../core/types.js';

/**
 * How the journal store encodes its records and snapshots: msgpack, like the wire, with the
 * same settings as the wire codec. The bytes are checksummed by the journal layer, so decoding
 * trusts them; a version field lets a later format be told apart.
 */
const packr = new Packr(MSGPACK_OPTIONS);

const FORMAT = 1;

/** One journal record holds every durable change of one commit, so replay applies them together. */
export function encodeRecords(records: readonly ChangeRecord[]): Uint8Array {
  return packr.pack({ v: FORMAT, r: records });
}

export function decodeRecords(payload: Uint8Array): ChangeRecord[] {
  const o = packr.unpack(payload) as { v?: number; r?: ChangeRecord[] };
  if (o?.v !== FORMAT || !Array.isArray(o.r))
    throw new Error(`unknown journal record format ${String(o?.v)}`);
  return o.r;
}

export function encodeSnapshot(snap: TableSnapshot): Uint8Array {
  return packr.pack({ v: FORMAT, s: snap });
}

export function decodeSnapshot(payload: Uint8Array): TableSnapshot {
  const o = packr.unpack(payload) as { v?: number; s?: TableSnapshot };
  if (o?.v !== FORMAT || !o.s) throw new Error(`unknown snapshot format ${String(o?.v)}`);
  return o.s;
}
