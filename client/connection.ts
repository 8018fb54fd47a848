import { CloseCodes } from '../shared/close-codes.js';
import { decodeFrame, encodeFrame } from '../shared/codec.js';
import type { Request, ServerFrame } from '../shared/frames.js';
import { SERVER_FRAME_SCAN_LIMITS } from '../shared/msgpack-scan.js';
import { asServerFrame, serverFrameProblem } from './server-frame.js';
import type { WebSocketConstructor, WebSocketLike } from './websocket.js';

/** How a connection ended. `local` is true when this side gave up on it (dead, bad frame, close()). */
export interface CloseInfo {
  code: number;
  reason: string;
  local: boolean;
  error?: Error;
}

const OPEN = 1;

/**
 * One WebSocket: binary msgpack frames in and out, decoded and shape-checked. Reports its end
 * exactly once through `onClose`, whether the peer closed, the network failed, or this side
 * dropped it (`terminate`). Knows nothing about sessions or requests.
 */
export class Connection {
  /** Called for each decoded frame. */
  onFrame: (frame: ServerFrame) => void = () => {};
  /** Called once when the connection is over. */
  onClose: (info: CloseInfo) => void = () => {};
  private ended = false;

  private constructor(private readonly ws: WebSocketLike) {
    ws.addEventListener('message', (event) => this.receive(event.data));
    ws.addEventListener('close', (event) =>
      this.finish({ code: event.code, reason: event.reason, local: false }),
    );
  }

  /** Opens a socket to `url`; rejects if it is not open within `timeoutMs`. */
  static open(url: string, WebSocket: WebSocketConstructor, timeoutMs: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new WebSocket(url);
      } catch (cause) {
        reject(new Error(`cannot open a WebSocket to ${url}`, { cause }));
        return;
      }
      ws.binaryType = 'arraybuffer';
      let settled = false;
      let lastError: unknown;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        dropSocket(ws);
        reject(new Error(`no WebSocket connection to ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.addEventListener('error', (event) => {
        lastError = (event as { error?: unknown }).error ?? event;
      });
      ws.addEventListener('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(new Connection(ws));
      });
      ws.addEventListener('close', (event) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(
          new Error(`WebSocket to ${url} closed before opening (code ${event.code})`, { cause: lastError }),
        );
      });
    });
  }

  get isOpen(): boolean {
    return !this.ended && this.ws.readyState === OPEN;
  }

  /** Sends one frame; false if the socket is not open (the frame is then lost). */
  send(frame: Request): boolean {
    if (!this.isOpen) return false;
    try {
      this.ws.send(encodeFrame(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Starts a clean close; `onClose` fires when the peer answers or the socket dies. */
  close(code: number = CloseCodes.NORMAL, reason = ''): void {
    try {
      this.ws.close(appCloseCode(code), reason);
    } catch {
      dropSocket(this.ws);
    }
  }

  /** Gives up on the connection now (dead peer, bad frame): `onClose` fires synchronously. */
  terminate(info: { code: number; reason: string; error?: Error }): void {
    if (this.ended) return;
    dropSocket(this.ws, info.code, info.reason);
    this.finish({ ...info, local: true });
  }

  private receive(data: unknown): void {
    if (this.ended) return;
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.terminate({ code: CloseCodes.UNSUPPORTED_DATA, reason: 'expected a binary frame' });
      return;
    }
    let value: unknown;
    try {
      value = decodeFrame(bytes, SERVER_FRAME_SCAN_LIMITS);
    } catch (error) {
      this.terminate({ code: CloseCodes.BAD_FRAME, reason: 'undecodable frame', error: error as Error });
      return;
    }
    const problem = serverFrameProblem(value);
    if (problem) {
      this.terminate({ code: CloseCodes.BAD_FRAME, reason: 'malformed frame', error: new Error(problem) });
      return;
    }
    this.onFrame(asServerFrame(value));
  }

  private finish(info: CloseInfo): void {
    if (this.ended) return;
    this.ended = true;
    this.onClose(info);
  }
}

function dropSocket(ws: WebSocketLike, code: number = CloseCodes.NORMAL, reason = ''): void {
  try {
    if (ws.terminate) ws.terminate();
    else ws.close(appCloseCode(code), reason);
  } catch {
    // Already closed or closing: nothing left to drop.
  }
}

/** Browsers accept only 1000 and 3000-4999 from applications; anything else becomes 1000. */
function appCloseCode(code: number): number {
  return code === CloseCodes.NORMAL || (code >= 3000 && code <= 4999) ? code : CloseCodes.NORMAL;
}
