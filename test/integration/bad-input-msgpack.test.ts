import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../shared/close-codes.js';
import { encodeFrame } from '../../shared/codec.js';
import { packWithRaw, RawClient, raw, type Scene, startScene } from '../helpers/raw-client.js';

// msgpack that msgpackr would decode into something dangerous or surprising (it decodes; it does
// not validate). Frames the broker cannot read get an error BAD_FRAME (no ref: it could not
// read one) and a close with 4000; frames it can read but that are not requests get an error
// and the connection stays usable.

function bytes(...parts: (number[] | Uint8Array)[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

function repeat(byte: number, n: number): Uint8Array {
  return new Uint8Array(n).fill(byte);
}

async function attacker(scene: Scene): Promise<RawClient> {
  const { client } = await RawClient.session(scene.url, { owner: 'attacker' }, { label: 'attacker' });
  return client;
}

/** The frame is refused as undecodable: BAD_FRAME without a ref, then close 4000. */
async function expectUndecodable(client: RawClient, frame: Uint8Array): Promise<void> {
  const mark = client.mark();
  client.sendRaw(frame);
  const close = await client.waitForClose();
  expect(close.code).toBe(CloseCodes.BAD_FRAME);
  const after = client.frames.slice(mark);
  expect(after).toEqual([expect.objectContaining({ type: 'error', code: 'BAD_FRAME' })]);
  expect(after[0]).not.toHaveProperty('ref');
}

/** The frame decodes but is not a valid request: an error with this code, and the connection stays. */
async function expectRefusedButOpen(client: RawClient, frame: Uint8Array, code: string, ref?: number) {
  const mark = client.mark();
  client.sendRaw(frame);
  const reply = await client.waitFor((f) => f.type === 'error', { since: mark, label: `an error ${code}` });
  expect(reply).toMatchObject({ type: 'error', code });
  if (ref === undefined) expect(reply).not.toHaveProperty('ref');
  else expect(reply).toHaveProperty('ref', ref);
  // Still usable.
  expect(await client.request({ type: 'keepalive' })).toMatchObject({ type: 'ok' });
}

const get = (name: unknown) => ({ type: 'get', ref: 9, name });

describe('msgpack the broker refuses to decode', () => {
  it.each<{ what: string; frame: Uint8Array }>([
    { what: 'nesting 10,000 deep (0x91 repeated)', frame: bytes(repeat(0x91, 10_000), [0xc0]) },
    {
      what: 'maps nested 10,000 deep',
      frame: bytes(...Array.from({ length: 10_000 }, () => [0x81, 0xa1, 0x61]), [0xc0]),
    },
    {
      what: 'nesting one level past the limit inside a request',
      frame: packWithRaw({ ...get('x'), extra: raw(0x91, 0x91, 0x91, 0x91, 0xc0) }),
    },
    {
      what: 'an array32 that claims 4 billion elements (dd ff ff ff fe)',
      frame: bytes([0xdd, 0xff, 0xff, 0xff, 0xfe]),
    },
    {
      what: 'a map32 that claims 4 billion entries (df ff ff ff ff)',
      frame: bytes([0xdf, 0xff, 0xff, 0xff, 0xff]),
    },
    {
      what: 'a str32 whose length runs past the frame (db ff ff ff fe)',
      frame: packWithRaw(get(raw(0xdb, 0xff, 0xff, 0xff, 0xfe, 0x61))),
    },
    {
      what: 'a bin32 whose length runs past the frame (c6 ff ff ff fe)',
      frame: packWithRaw({ ...get('x'), meta: raw(0xc6, 0xff, 0xff, 0xff, 0xfe) }),
    },
    {
      what: 'an ext32 whose length runs past the frame (c9 ff ff ff fe)',
      frame: packWithRaw({ ...get('x'), meta: raw(0xc9, 0xff, 0xff, 0xff, 0xfe, 0x01) }),
    },
    {
      what: 'an array of 60,000 empty maps (over the element budget)',
      frame: bytes([0xdc, 0xea, 0x60], repeat(0x80, 60_000)),
    },
    { what: 'a peer-defined record (d4 72 …)', frame: packWithRaw(get(raw(0xd4, 0x72, 0x00))) },
    { what: 'the never-used type c1', frame: packWithRaw(get(raw(0xc1))) },
    {
      what: 'a timestamp ext (d6 ff …), which msgpackr turns into a Date',
      frame: packWithRaw({ type: 'hello', ref: 3, version: raw(0xd6, 0xff, 0, 0, 0, 1) }),
    },
    { what: 'an ext8 of type 0x01 (c7 …)', frame: packWithRaw(get(raw(0xc7, 0x01, 0x01, 0x00))) },
    {
      what: 'a name a1 ff (invalid UTF-8 that would decode to U+FFFD)',
      frame: packWithRaw({ type: 'acquire', ref: 4, name: raw(0xa1, 0xff) }),
    },
    {
      what: 'a name a1 fe (invalid UTF-8 that would decode to U+FFFD)',
      frame: packWithRaw({ type: 'acquire', ref: 4, name: raw(0xa1, 0xfe) }),
    },
    {
      what: 'a name holding a lone surrogate (a3 ed a0 80)',
      frame: packWithRaw({ type: 'acquire', ref: 4, name: raw(0xa3, 0xed, 0xa0, 0x80) }),
    },
    {
      what: 'a name with an overlong encoding of "/" (a2 c0 af)',
      frame: packWithRaw({ type: 'acquire', ref: 4, name: raw(0xa2, 0xc0, 0xaf) }),
    },
    {
      what: 'a map key that is not a string',
      frame: bytes(
        [0x82, 0x01, 0x02],
        encodeFrame('type' as unknown as object),
        encodeFrame('keepalive' as unknown as object),
      ),
    },
    { what: 'plain garbage', frame: new Uint8Array(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')) },
    { what: 'an empty frame', frame: new Uint8Array(0) },
    {
      what: 'a valid request followed by trailing bytes',
      frame: bytes(encodeFrame({ type: 'keepalive', ref: 1 }), [0xc0]),
    },
  ])('refuses $what with BAD_FRAME and closes with 4000', async ({ frame }) => {
    const scene = await startScene();
    const client = await attacker(scene);
    await expectUndecodable(client, frame);
    await scene.bystander.expectUndisturbed();
  });

  it('refuses deep nesting before hello the same way', async () => {
    const scene = await startScene();
    const client = await RawClient.open(scene.url, { label: 'attacker' });
    await expectUndecodable(client, bytes(repeat(0x91, 10_000), [0xc0]));
    await scene.bystander.expectUndisturbed();
  });

  it('closes with 1009 on 1 MiB of empty maps (maxPayloadBytes stops it before decoding)', async () => {
    const scene = await startScene();
    const client = await attacker(scene);
    const heapBefore = process.memoryUsage().heapUsed;
    client.sendRaw(bytes([0xdd, 0x00, 0x10, 0x00, 0x00], repeat(0x80, 1024 * 1024)));
    expect((await client.waitForClose()).code).toBe(CloseCodes.MESSAGE_TOO_BIG);
    // msgpackr would have built a million objects (~190 MB); the broker never decoded them.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    await scene.bystander.expectUndisturbed();
  });
});

describe('msgpack that decodes but is not a request', () => {
  it.each<{ what: string; frame: Uint8Array; code: string; ref?: number }>([
    { what: 'a bare integer', frame: bytes([0x2a]), code: 'BAD_FRAME' },
    { what: 'nil', frame: bytes([0xc0]), code: 'BAD_FRAME' },
    { what: 'an array instead of a map', frame: encodeFrame(['keepalive', 1]), code: 'BAD_FRAME' },
    { what: 'binary instead of a map', frame: bytes([0xc4, 0x01, 0x80]), code: 'BAD_FRAME' },
    { what: 'a map without a type', frame: encodeFrame({ ref: 12 }), code: 'BAD_FRAME', ref: 12 },
    {
      what: 'a map whose type is a number',
      frame: encodeFrame({ type: 1, ref: 12 }),
      code: 'BAD_FRAME',
      ref: 12,
    },
    {
      what: 'a ref that is a string',
      frame: encodeFrame({ type: 'keepalive', ref: '1' }),
      code: 'BAD_REQUEST',
    },
    {
      what: 'a ref that is a float',
      frame: encodeFrame({ type: 'keepalive', ref: 1.5 }),
      code: 'BAD_REQUEST',
    },
    { what: 'a negative ref', frame: encodeFrame({ type: 'keepalive', ref: -1 }), code: 'BAD_REQUEST' },
    {
      what: 'a ttlMs of 2^64-1 sent as uint64 (cf ff …)',
      frame: packWithRaw({ type: 'acquire', ref: 13, name: 'x', ttlMs: raw(0xcf, ...repeat(0xff, 8)) }),
      code: 'BAD_REQUEST',
      ref: 13,
    },
    {
      what: 'a ttlMs of -2^63 sent as int64 (d3 80 …)',
      frame: packWithRaw({ type: 'acquire', ref: 13, name: 'x', ttlMs: raw(0xd3, 0x80, ...repeat(0, 7)) }),
      code: 'BAD_REQUEST',
      ref: 13,
    },
  ])('answers $what with $code and keeps the connection', async ({ frame, code, ref }) => {
    const scene = await startScene();
    const client = await attacker(scene);
    await expectRefusedButOpen(client, frame, code, ref);
    await scene.bystander.expectUndisturbed();
  });

  it('reads a small ttlMs sent as uint64 (cf 00 … 13 88) as the number 5000', async () => {
    const scene = await startScene();
    const client = await attacker(scene);
    const ttl = raw(0xcf, 0, 0, 0, 0, 0, 0, 0x13, 0x88);
    const reply = await client.requestRaw(
      packWithRaw({ type: 'acquire', ref: 14, name: 'cf/ttl', ttlMs: ttl }),
      14,
    );
    expect(reply).toMatchObject({ type: 'granted', lease: { name: 'cf/ttl', ttlMs: 5000 } });
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'cf/ttl' });
  });

  it('does not let a __proto__ key give a frame an inherited type', async () => {
    const scene = await startScene();
    const client = await attacker(scene);
    // { "__proto__": { "type": "bye", "ref": 1 } }: a naive decoder would make this a bye.
    const frame = packWithRaw({ ['__proto__']: { type: 'bye', ref: 1 } });
    expect(Buffer.from(frame).includes('__proto__')).toBe(true);
    await expectRefusedButOpen(client, frame, 'BAD_FRAME');
    expect(client.closed).toBeUndefined();
    expect(({} as Record<string, unknown>).type).toBeUndefined();
    await scene.bystander.expectUndisturbed();
  });

  it('ignores __proto__ and constructor keys in a request and pollutes no prototype', async () => {
    const scene = await startScene();
    const client = await attacker(scene);
    const frame = packWithRaw({
      type: 'acquire',
      ref: 15,
      name: 'proto/keys',
      ['__proto__']: { wait: true, polluted: true },
      constructor: { prototype: { polluted: true } },
    });
    expect(Buffer.from(frame).includes('__proto__')).toBe(true);
    const reply = await client.requestRaw(frame, 15);
    expect(reply).toMatchObject({ type: 'granted', lease: { name: 'proto/keys' } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('wait');
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === 'proto/keys' });
  });

  it('treats a3 ef bf bd as the valid name "\\uFFFD", distinct from the refused a1 ff', async () => {
    const scene = await startScene();
    const holder = await attacker(scene);
    const granted = await holder.requestRaw(
      packWithRaw({ type: 'acquire', ref: 16, name: raw(0xa3, 0xef, 0xbf, 0xbd) }),
      16,
    );
    expect(granted).toMatchObject({ type: 'granted', lease: { name: '\uFFFD' } });
    // Another session sending a1 ff is refused outright, not told the lease is held.
    const other = await attacker(scene);
    await expectUndecodable(other, packWithRaw({ type: 'acquire', ref: 17, name: raw(0xa1, 0xff) }));
    expect(await holder.request({ type: 'get', name: '\uFFFD' })).toMatchObject({
      type: 'lease',
      lease: { name: '\uFFFD', sessionId: (granted as { lease: { sessionId: string } }).lease.sessionId },
    });
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n === '\uFFFD' });
  });
});
