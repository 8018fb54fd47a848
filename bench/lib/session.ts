import { decode, encodeRequest, newPeeked, type Peeked, peek, ReplyType } from './wire.js';
import { RawWs } from './ws-raw.js';

/**
 * One leasewire session over a {@link RawWs}: hello/welcome, then every reply goes to the
 * current `onReply` (set by the job that drives the session). Replies are peeked, not decoded.
 */
export type ReplyHandler = (reply: Peeked, buf: Buffer, start: number, end: number) => void;

export interface SessionOptions {
  url: string;
  localAddress?: string;
  ttlMs?: number;
  owner?: string;
  timeoutMs?: number;
}

export class Session {
  sessionId = '';
  heartbeatIntervalMs = 0;
  onReply: ReplyHandler = () => {};
  onClose: (why: string) => void = () => {};
  closedWhy: string | undefined;
  private readonly peeked = newPeeked();

  private constructor(readonly ws: RawWs) {}

  static async open(opts: SessionOptions): Promise<Session> {
    const ws = await RawWs.open(opts.url, { localAddress: opts.localAddress, timeoutMs: opts.timeoutMs });
    const s = new Session(ws);
    const hello: Record<string, unknown> = { type: 'hello', ref: 0, version: 1 };
    if (opts.ttlMs !== undefined) hello.ttlMs = opts.ttlMs;
    if (opts.owner !== undefined) hello.owner = opts.owner;
    const welcome = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.kill();
        reject(new Error('no welcome within the timeout'));
      }, opts.timeoutMs ?? 10_000);
      ws.setHandler({
        onMessage: (buf, start, end) => {
          clearTimeout(timer);
          const m = decode(buf, start, end);
          if (m.type !== 'welcome') reject(new Error(`hello refused: ${JSON.stringify(m)}`));
          else resolve(m);
        },
        onClose: (why) => {
          clearTimeout(timer);
          reject(new Error(`closed during hello: ${why}`));
        },
      });
      ws.send(encodeRequest(hello));
    });
    s.sessionId = welcome.sessionId as string;
    s.heartbeatIntervalMs = welcome.heartbeatIntervalMs as number;
    ws.setHandler({
      onMessage: (buf, start, end) => {
        const r = peek(buf, start, end, s.peeked);
        s.onReply(r, buf, start, end);
      },
      onClose: (why) => {
        s.closedWhy = why;
        s.onClose(why);
      },
    });
    return s;
  }

  get closed(): boolean {
    return this.ws.closed;
  }

  send(frame: Uint8Array): void {
    this.ws.send(frame);
  }
}

/** The error code of an `error` reply (decoded in full: errors are off the hot path). */
export function errorCode(buf: Buffer, start: number, end: number): string {
  const m = decode(buf, start, end);
  return String(m.code ?? 'UNKNOWN');
}

export { ReplyType };
