import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { WS_PATH } from '../shared/version.js';
import type { BrokerOptions } from './config.js';
import type { Broker } from './gateway/broker.js';
import type { Logger } from './log.js';

/** Handles plain HTTP requests on the same port (health now; the HTTP API plugs in here). */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/**
 * Owns the HTTP server and the WebSocket upgrade. Tight header timeouts keep slowloris
 * connections short; the upgrade is refused unless it targets the protocol path (and, when
 * configured, comes from an allowed Origin).
 */
export class Listener {
  readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<Duplex>();

  constructor(
    private readonly broker: Broker,
    private readonly options: BrokerOptions,
    private readonly log: Logger,
    private readonly http: HttpHandler[] = [],
  ) {
    this.server = createServer({
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.headersTimeoutMs * 6,
      // Node checks the timeouts above on this interval; its default (30 s) lets a slowloris
      // connection live far longer than headersTimeout.
      connectionsCheckingInterval: 500,
      maxHeaderSize: 16 * 1024,
      keepAliveTimeout: 5_000,
    });
    this.server.maxHeadersCount = 100;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: false,
    });
    this.wss.on('error', (err) => log.error('websocket server error', { error: err.message }));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('clientError', (err, socket) => {
      log.debug('http client error', { error: err.message });
      const code = (err as NodeJS.ErrnoException).code;
      const status =
        code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? '408 Request Timeout'
            : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    });
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server.on('request', (req, res) => {
      this.onRequest(req, res).catch((err: unknown) => {
        log.error('http handler failed', { error: String(err) });
        if (!res.headersSent) sendJson(res, 500, { code: 'INTERNAL', message: 'internal error' });
        else res.destroy();
      });
    });
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.log.error('http server error', { error: err.message }));
        const addr = this.server.address();
        if (!addr || typeof addr === 'string') return reject(new Error('server has no TCP address'));
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    // RFC 6455 4.1/4.2.1: the opening handshake is an HTTP/1.1 (or later) GET. `ws` does not
    // check the version and would switch an HTTP/1.0 request to WebSocket.
    if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) {
      refuse(socket, 505, 'HTTP Version Not Supported');
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    if (path !== WS_PATH) {
      refuse(socket, 404, 'Not Found');
      return;
    }
    const origin = req.headers.origin;
    if (
      this.options.allowedOrigins.length > 0 &&
      (origin === undefined || !this.options.allowedOrigins.includes(origin))
    ) {
      // Browsers send Origin; a page from another site must not open sessions here.
      refuse(socket, 403, 'Forbidden');
      return;
    }
    try {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.broker.handleConnection(ws, req));
    } catch (err) {
      this.log.debug('upgrade failed', { error: String(err) });
      socket.destroy();
    }
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const h of this.http) if (await h(req, res)) return;
    const path = (req.url ?? '').split('?')[0];
    if (path === WS_PATH) {
      res.setHeader('Upgrade', 'websocket');
      sendJson(res, 426, { code: 'BAD_REQUEST', message: `${WS_PATH} is a WebSocket endpoint` });
      return;
    }
    sendJson(res, 404, { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}` });
  }

  /** Stops accepting, then closes every remaining socket after drainTimeoutMs. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
      this.server.closeAllConnections();
    }, this.options.drainTimeoutMs);
    deadline.unref();
    await closed;
    clearTimeout(deadline);
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  if (socket.writable)
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.destroy();
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
