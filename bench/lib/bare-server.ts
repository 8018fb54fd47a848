import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Packr } from 'msgpackr';
import { WebSocketServer } from 'ws';

/**
 * The ceiling for the end-to-end numbers: a bare `ws` server with msgpackr and a Map of names,
 * answering the same frames as the broker (hello, acquire, release, keepalive, get) with replies
 * of the same shape and size. No sessions, deadlines, timers, validation, events or limits.
 */
export interface BareServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface Held {
  token: number;
  sessionId: string;
  acquiredAt: number;
  revision: number;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, variableMapSize: true });

export async function startBareServer(host = '127.0.0.1'): Promise<BareServer> {
  const leases = new Map<string, Held>();
  let revision = 0;
  let token = 0;
  let sessions = 0;
  const http = createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const wss = new WebSocketServer({
    server: http,
    path: '/v1',
    perMessageDeflate: false,
    clientTracking: false,
  });
  wss.on('connection', (ws) => {
    let sessionId = '';
    ws.on('message', (data) => {
      const req = packr.unpack(data as Buffer) as Record<string, unknown>;
      const ref = req.ref as number;
      switch (req.type) {
        case 'hello':
          sessionId = `bare-session-${String(++sessions).padStart(8, '0')}`;
          ws.send(
            packr.pack({
              type: 'welcome',
              ref,
              version: 1,
              sessionId,
              secret: 'bare-secret-bare-secret-bare-sec',
              ttlMs: 10_000,
              heartbeatIntervalMs: 3_333,
              revision,
              resumed: false,
              leases: [],
              serverTime: Date.now(),
            }),
          );
          return;
        case 'acquire': {
          const name = req.name as string;
          const held = leases.get(name);
          if (held && held.sessionId !== sessionId) {
            ws.send(packr.pack({ type: 'error', ref, code: 'LEASE_HELD', message: `${name} is held` }));
            return;
          }
          const h = held ?? { token: ++token, sessionId, acquiredAt: Date.now(), revision: ++revision };
          leases.set(name, h);
          ws.send(packr.pack({ type: 'granted', ref, lease: info(name, h) }));
          return;
        }
        case 'release': {
          const name = req.name as string;
          const held = leases.get(name);
          if (!held || held.sessionId !== sessionId || held.token !== req.token) {
            ws.send(packr.pack({ type: 'error', ref, code: 'NOT_HOLDER', message: `${name} is not held` }));
            return;
          }
          leases.delete(name);
          ws.send(packr.pack({ type: 'ok', ref, revision: ++revision }));
          return;
        }
        case 'get': {
          const h = leases.get(req.name as string);
          ws.send(
            packr.pack({ type: 'lease', ref, lease: h ? info(req.name as string, h) : null, revision }),
          );
          return;
        }
        default:
          ws.send(packr.pack({ type: 'ok', ref, revision }));
      }
    });
  });
  function info(name: string, h: Held) {
    return {
      name,
      token: h.token,
      owner: '',
      sessionId: h.sessionId,
      acquiredAt: h.acquiredAt,
      sessionTtlMs: 10_000,
      expiresInMs: 10_000,
      waiters: 0,
      revision: h.revision,
    };
  }
  await new Promise<void>((resolve) => http.listen(0, host, resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `ws://${host}:${port}/v1`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        wss.close();
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
