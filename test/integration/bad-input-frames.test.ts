import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../shared/close-codes.js';
import { encodeFrame } from '../../shared/codec.js';
import {
  closePayload,
  encodeWsFrame,
  Opcodes,
  RawClient,
  RawTcp,
  type Scene,
  startScene,
  type WsFrameSpec,
} from '../helpers/raw-client.js';

// WebSocket framing abuse, sent by hand over a raw socket after a successful hello (the harder
// case: a session is attached). Each must close the connection with the RFC 6455 code `ws`
// uses, and leave the bystander session untouched.

async function helloOverTcp(scene: Scene, label = 'attacker'): Promise<RawTcp> {
  const tcp = await RawTcp.upgraded(scene.port, label);
  await tcp.hello();
  return tcp;
}

async function expectClosedWith(tcp: RawTcp, code: number): Promise<void> {
  const close = await tcp.waitForCloseFrame();
  expect(close.code).toBe(code);
  // The broker drops the TCP connection too; nothing lingers.
  await tcp.waitForEnd();
}

const oneByte = Uint8Array.of(0x80);
// One key for bulk frames: a fresh random key per frame costs more than the attack itself.
const maskKey = Uint8Array.of(0x12, 0x34, 0x56, 0x78);

describe('WebSocket framing abuse', () => {
  it.each<{ what: string; frames: WsFrameSpec[]; code: number }>([
    {
      what: 'an unmasked client frame',
      frames: [{ opcode: Opcodes.binary, payload: oneByte, mask: false }],
      code: 1002,
    },
    {
      what: 'RSV1 set (a compressed frame with no deflate negotiated)',
      frames: [{ opcode: Opcodes.binary, payload: oneByte, rsv: 0b100 }],
      code: 1002,
    },
    { what: 'RSV2 set', frames: [{ opcode: Opcodes.binary, payload: oneByte, rsv: 0b010 }], code: 1002 },
    { what: 'RSV3 set', frames: [{ opcode: Opcodes.binary, payload: oneByte, rsv: 0b001 }], code: 1002 },
    { what: 'reserved data opcode 0x3', frames: [{ opcode: 0x3, payload: oneByte }], code: 1002 },
    { what: 'reserved data opcode 0x7', frames: [{ opcode: 0x7, payload: oneByte }], code: 1002 },
    { what: 'reserved control opcode 0xB', frames: [{ opcode: 0xb, payload: oneByte }], code: 1002 },
    { what: 'reserved control opcode 0xF', frames: [{ opcode: 0xf }], code: 1002 },
    {
      what: 'a ping over 125 bytes',
      frames: [{ opcode: Opcodes.ping, payload: new Uint8Array(126) }],
      code: 1002,
    },
    {
      what: 'a fragmented ping',
      frames: [{ opcode: Opcodes.ping, payload: oneByte, fin: false }],
      code: 1002,
    },
    {
      what: 'a continuation with no start',
      frames: [{ opcode: Opcodes.continuation, payload: oneByte }],
      code: 1002,
    },
    {
      what: 'a new message inside a fragmented one',
      frames: [
        { opcode: Opcodes.binary, payload: oneByte, fin: false },
        { opcode: Opcodes.binary, payload: oneByte },
      ],
      code: 1002,
    },
    { what: 'close code 0', frames: [{ opcode: Opcodes.close, payload: closePayload(0) }], code: 1002 },
    { what: 'close code 999', frames: [{ opcode: Opcodes.close, payload: closePayload(999) }], code: 1002 },
    { what: 'close code 1005', frames: [{ opcode: Opcodes.close, payload: closePayload(1005) }], code: 1002 },
    { what: 'close code 1006', frames: [{ opcode: Opcodes.close, payload: closePayload(1006) }], code: 1002 },
    { what: 'close code 5000', frames: [{ opcode: Opcodes.close, payload: closePayload(5000) }], code: 1002 },
    {
      what: 'a one-byte close payload',
      frames: [{ opcode: Opcodes.close, payload: Uint8Array.of(3) }],
      code: 1002,
    },
    {
      what: 'invalid UTF-8 in a close reason',
      frames: [{ opcode: Opcodes.close, payload: closePayload(1000, Uint8Array.of(0xff, 0xfe, 0xc0, 0xaf)) }],
      code: 1007,
    },
    {
      what: 'a 64-bit length with the top bit set',
      frames: [{ opcode: Opcodes.binary, announcedLength: 0x8000_0000_0000_0000n }],
      code: 1009,
    },
    {
      what: 'a length just over maxPayloadBytes',
      frames: [{ opcode: Opcodes.binary, payload: new Uint8Array(64 * 1024 + 1) }],
      code: 1009,
    },
  ])('closes the connection on $what with $code', async ({ frames, code }) => {
    const scene = await startScene();
    const tcp = await helloOverTcp(scene);
    await tcp.write(Buffer.concat(frames.map(encodeWsFrame)));
    await expectClosedWith(tcp, code);
    await scene.bystander.expectUndisturbed();
  });

  it('closes with 1009 on a frame over a lowered maxPayloadBytes, before reading its body', async () => {
    const scene = await startScene({ maxPayloadBytes: 4096 });
    const tcp = await helloOverTcp(scene);
    // Only the header: the broker must not wait for (or buffer) the 1 GiB it announces.
    await tcp.sendFrame({ opcode: Opcodes.binary, announcedLength: 1n << 30n });
    await expectClosedWith(tcp, CloseCodes.MESSAGE_TOO_BIG);
    await scene.bystander.expectUndisturbed();
  });

  it('closes with 1008 on 100k one-byte fragments (ws allows 16384 fragments per message)', async () => {
    const scene = await startScene();
    const tcp = await helloOverTcp(scene);
    const parts: Buffer[] = [];
    for (let i = 0; i < 100_000; i++) {
      parts.push(
        encodeWsFrame({
          opcode: i === 0 ? Opcodes.binary : Opcodes.continuation,
          payload: oneByte,
          fin: false,
          maskKey,
        }),
      );
    }
    await tcp.write(Buffer.concat(parts));
    await expectClosedWith(tcp, CloseCodes.POLICY_VIOLATION);
    await scene.bystander.expectUndisturbed();
  });

  it('closes with 1009 on one-byte fragments once they add up past a lowered maxPayloadBytes', async () => {
    const scene = await startScene({ maxPayloadBytes: 4096 });
    const tcp = await helloOverTcp(scene);
    const parts: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      parts.push(
        encodeWsFrame({
          opcode: i === 0 ? Opcodes.binary : Opcodes.continuation,
          payload: oneByte,
          fin: false,
          maskKey,
        }),
      );
    }
    await tcp.write(Buffer.concat(parts));
    await expectClosedWith(tcp, CloseCodes.MESSAGE_TOO_BIG);
    await scene.bystander.expectUndisturbed();
  });

  it('reassembles a request sent as one-byte fragments within maxPayloadBytes', async () => {
    const scene = await startScene();
    const tcp = await helloOverTcp(scene);
    const bytes = encodeFrame({ type: 'keepalive', ref: 77 });
    const parts = [...bytes].map((b, i) =>
      encodeWsFrame({
        opcode: i === 0 ? Opcodes.binary : Opcodes.continuation,
        payload: Uint8Array.of(b),
        fin: i === bytes.length - 1,
      }),
    );
    await tcp.write(Buffer.concat(parts));
    expect(await tcp.waitForMessage((m) => 'ref' in m && m.ref === 77, 'the keepalive reply')).toMatchObject({
      type: 'ok',
    });
    await scene.bystander.expectUndisturbed();
  });

  it('answers a text frame with BAD_FRAME, then closes with 1003', async () => {
    const scene = await startScene();
    const { client } = await RawClient.session(scene.url, {}, { label: 'attacker' });
    const mark = client.mark();
    client.sendRaw(JSON.stringify({ type: 'get', ref: 5, name: 'x' }));
    const close = await client.waitForClose();
    expect(close.code).toBe(CloseCodes.UNSUPPORTED_DATA);
    expect(client.frames.slice(mark)).toEqual([
      expect.objectContaining({ type: 'error', code: 'BAD_FRAME' }),
    ]);
    await scene.bystander.expectUndisturbed();
  });

  it('closes with 1009 when an oversize message arrives before hello', async () => {
    const scene = await startScene({ maxPayloadBytes: 4096 });
    const client = await RawClient.open(scene.url, { label: 'attacker' });
    client.sendRaw(new Uint8Array(4097));
    expect((await client.waitForClose()).code).toBe(CloseCodes.MESSAGE_TOO_BIG);
    await scene.bystander.expectUndisturbed();
  });
});
