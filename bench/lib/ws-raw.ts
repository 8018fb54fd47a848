import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A minimal WebSocket client for load generation: one TCP socket, the RFC 6455 handshake, and
 * frames written by hand. Outgoing frames use an all-zero mask key (legal: the key need only be
 * present), so a frame is built once and sent as is, with no per-send masking or copying.
 * Replies to one incoming chunk go out in one write (the socket is corked while the chunk's frames
 * are handled). Pings are answered with pongs, as any WebSocket library would.
 */
export interface RawWsHandler {
  /** One binary message: `buf[start, end)`; valid only during the call. */
  onMessage(buf: Buffer, start: number, end: number): void;
  onClose(why: string): void;
}

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export interface RawWsStats {
  pings: number;
  messages: number;
}

export class RawWs {
  private rest: Buffer | undefined;
  private handler: RawWsHandler;
  closed = false;
  pings = 0;
  private corkedByUs = false;

  private constructor(
    readonly socket: Socket,
    handler: RawWsHandler,
  ) {
    this.handler = handler;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.markClosed('socket closed'));
    socket.on('error', (err) => this.markClosed(`socket error: ${err.message}`));
  }

  setHandler(handler: RawWsHandler): void {
    this.handler = handler;
  }

  /** Opens a connection; `localAddress` picks the source address (127.0.0.x) for port space. */
  static open(
    url: string,
    opts: { localAddress?: string; timeoutMs?: number; handler?: RawWsHandler } = {},
  ): Promise<RawWs> {
    const u = new URL(url);
    const key = randomBytes(16).toString('base64');
    const expectAccept = createHash('sha1')
      .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: u.hostname,
        port: Number(u.port),
        localAddress: opts.localAddress,
        noDelay: true,
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`WebSocket handshake to ${url} timed out`));
      }, opts.timeoutMs ?? 10_000);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 16_384) fail(new Error('handshake reply too long'));
          return;
        }
        const text = head.subarray(0, end).toString('latin1');
        if (!text.startsWith('HTTP/1.1 101'))
          return fail(new Error(`upgrade refused: ${text.split('\r\n')[0]}`));
        if (!text.toLowerCase().includes(`sec-websocket-accept: ${expectAccept.toLowerCase()}`)) {
          return fail(new Error('bad Sec-WebSocket-Accept'));
        }
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', fail);
        const ws = new RawWs(socket, opts.handler ?? nullHandler);
        const rest = head.subarray(end + 4);
        resolve(ws);
        if (rest.length > 0) ws.onData(rest);
      };
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.on('data', onData);
      socket.on('error', fail);
      socket.on('connect', () => {
        socket.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
    });
  }

  /** Writes an already framed message (see {@link frameBinary}). */
  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.socket.write(frame);
  }

  /** Corks the socket until the end of this tick (for a burst of sends outside a handler). */
  corkForTick(): void {
    if (this.corkedByUs || this.closed) return;
    this.corkedByUs = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corkedByUs = false;
      this.socket.uncork();
    });
  }

  close(): void {
    if (this.closed) return;
    this.socket.write(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
    this.socket.end();
    this.markClosed('closed by us');
  }

  /** Drops the connection without a closing handshake (a crashed client): an RST. */
  kill(): void {
    if (this.closed) return;
    this.markClosed('killed');
    this.socket.resetAndDestroy();
  }

  private markClosed(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.handler.onClose(why);
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    const socket = this.socket;
    socket.cork();
    try {
      let pos = 0;
      const n = buf.length;
      while (n - pos >= 2) {
        const b0 = buf[pos]!;
        const b1 = buf[pos + 1]!;
        let len = b1 & 0x7f;
        let hdr = 2;
        if (len === 126) {
          if (n - pos < 4) break;
          len = buf.readUInt16BE(pos + 2);
          hdr = 4;
        } else if (len === 127) {
          if (n - pos < 10) break;
          len = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
          hdr = 10;
        }
        if (n - pos < hdr + len) break;
        const start = pos + hdr;
        const end = start + len;
        pos = end;
        if ((b0 & 0x80) === 0 || (b1 & 0x80) !== 0) {
          // The broker (ws) never fragments or masks; anything else is a bug worth hearing about.
          this.kill();
          return;
        }
        const op = b0 & 0x0f;
        if (op === OP_BINARY || op === OP_TEXT) this.handler.onMessage(buf, start, end);
        else if (op === OP_PING) {
          this.pings++;
          socket.write(frame(OP_PONG, buf.subarray(start, end)));
        } else if (op === OP_CLOSE) {
          const code = len >= 2 ? buf.readUInt16BE(start) : 1005;
          const reason = buf.toString('utf8', Math.min(end, start + 2), end);
          this.markClosed(`closed by server: ${code} ${reason}`);
          socket.end();
          return;
        } else if (op !== OP_PONG) {
          this.kill();
          return;
        }
      }
      if (pos < n) this.rest = Buffer.from(buf.subarray(pos));
    } finally {
      socket.uncork();
    }
  }
}

const nullHandler: RawWsHandler = { onMessage() {}, onClose() {} };

function frame(op: number, payload: Uint8Array): Buffer {
  const len = payload.length;
  const hdr = len < 126 ? 2 : len < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdr + 4 + len);
  out[0] = 0x80 | op;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(len, 6);
  }
  out.writeUInt32BE(0, hdr); // mask key 0: the payload goes out as is
  out.set(payload, hdr + 4);
  return out;
}

/** A client binary message, framed and masked (zero key): ready to `send`, reusable. */
export function frameBinary(payload: Uint8Array): Buffer {
  return frame(OP_BINARY, payload);
}

/** Bytes a framed client message adds before the payload (for patching offsets). */
export function frameHeaderLength(payloadLength: number): number {
  return (payloadLength < 126 ? 2 : payloadLength < 65_536 ? 4 : 10) + 4;
}
