import { describe, expect, it } from 'vitest';
import { crc32c } from '../../../../server/storage/journal/crc32c.js';
import { bytes } from './temp-dir.js';

describe('crc32c', () => {
  it.each([
    ['the check string "123456789"', bytes('123456789'), 0xe3069283],
    ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
    ['32 bytes of 0xff', new Uint8Array(32).fill(0xff), 0x62a8ab43],
    ['32 ascending bytes', Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    ['an empty buffer', new Uint8Array(0), 0],
  ])('matches the published vector for %s', (_name, data, expected) => {
    expect(crc32c(data)).toBe(expected);
  });

  it('continues a checksum across split buffers for every split point and length', () => {
    const data = Uint8Array.from({ length: 67 }, (_, i) => (i * 37 + 11) & 0xff);
    for (let length = 0; length <= data.length; length++) {
      const whole = crc32c(data.subarray(0, length));
      for (let split = 0; split <= length; split++) {
        expect(crc32c(data.subarray(split, length), crc32c(data.subarray(0, split)))).toBe(whole);
      }
    }
  });

  it('agrees with a bit-at-a-time reference on buffers longer than one slice', () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 131 + 7) & 0xff);
    expect(crc32c(data)).toBe(bitwiseCrc32c(data));
    expect(crc32c(data.subarray(3, 998))).toBe(bitwiseCrc32c(data.subarray(3, 998)));
  });
});

function bitwiseCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
