import { describe, expect, it } from 'vitest';
import {
  decodeSegmentHeader,
  encodeRecord,
  encodeSegmentHeader,
  parseSegmentFileName,
  RECORD_HEADER_BYTES,
  readRecordLength,
  recordIsIntact,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from '../../../../server/storage/journal/record-format.js';
import { bytes } from './temp-dir.js';

describe('record format', () => {
  it('frames a record as length, checksum over length and payload, then payload', () => {
    const record = encodeRecord(bytes('hello'));
    expect(record.length).toBe(RECORD_HEADER_BYTES + 5);
    expect(readRecordLength(record, 0)).toBe(5);
    expect(Buffer.from(record.subarray(RECORD_HEADER_BYTES)).toString()).toBe('hello');
    expect(recordIsIntact(record, 0, 5)).toBe(true);
  });

  it('detects a flipped bit in the payload and in the length', () => {
    const record = encodeRecord(bytes('hello'));
    const payloadFlip = record.slice();
    payloadFlip[RECORD_HEADER_BYTES + 2]! ^= 0x10;
    expect(recordIsIntact(payloadFlip, 0, 5)).toBe(false);
    const lengthFlip = record.slice();
    lengthFlip[0]! ^= 0x01;
    expect(readRecordLength(lengthFlip, 0)).toBe(4);
    expect(recordIsIntact(lengthFlip, 0, 4)).toBe(false);
  });

  it('does not accept an all-zero header as an empty record', () => {
    expect(recordIsIntact(new Uint8Array(RECORD_HEADER_BYTES), 0, 0)).toBe(false);
    expect(recordIsIntact(encodeRecord(new Uint8Array(0)), 0, 0)).toBe(true);
  });

  it('round-trips the segment header and rejects a damaged one', () => {
    const header = encodeSegmentHeader(2 ** 40 + 3);
    expect(header.length).toBe(SEGMENT_HEADER_BYTES);
    expect(Buffer.from(header.subarray(0, 4)).toString()).toBe('LWJ1');
    expect(decodeSegmentHeader(header)).toEqual({ ok: true, firstSeq: 2 ** 40 + 3 });
    const damaged = header.slice();
    damaged[9]! ^= 0xff;
    expect(decodeSegmentHeader(damaged)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/checksum/),
    });
    expect(decodeSegmentHeader(new Uint8Array(SEGMENT_HEADER_BYTES))).toMatchObject({ ok: false });
  });

  it('names segments by zero-padded first sequence so that names sort in sequence order', () => {
    expect(segmentFileName(42)).toBe('000000000000000042.wal');
    const names = [1000, 42, 9, 100000].map(segmentFileName).sort();
    expect(names.map(parseSegmentFileName)).toEqual([9, 42, 1000, 100000]);
    expect(parseSegmentFileName('000000000000000042.wal.tmp')).toBeUndefined();
    expect(parseSegmentFileName('LOCK')).toBeUndefined();
  });
});
