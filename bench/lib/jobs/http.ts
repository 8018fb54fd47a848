import autocannon, { type Client, type Options, type Request } from 'autocannon';

/**
 * HTTP load with autocannon, from a load process: leasewire's HTTP API (GET a lease, acquire +
 * release with pre-made sessions, session keepalive, opening sessions) and etcd's JSON gateway
 * (range, lease grant). Sessions are opened before the run; autocannon gives each connection
 * one of them through `setupClient`.
 */
export type HttpTarget =
  | 'lw-get'
  | 'lw-acquire-release'
  | 'lw-keepalive'
  | 'lw-session-open'
  | 'etcd-range'
  | 'etcd-grant';

export interface HttpArgs {
  base: string;
  target: HttpTarget;
  connections: number;
  durationMs: number;
  warmupMs: number;
}

export interface HttpResult {
  target: HttpTarget;
  requestsPerSec: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  latency: { meanMs: number; p50Ms: number; p99Ms: number; maxMs: number };
  loadCpuPct: number;
  seconds: number;
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const SECRET_HEADER = 'leasewire-session-secret';

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

interface HttpSession {
  id: string;
  secret: string;
}

async function openSessions(base: string, n: number): Promise<HttpSession[]> {
  const out: HttpSession[] = [];
  for (let i = 0; i < n; i++) {
    const s = await post(`${base}/v1/sessions`, { ttlMs: 120_000, owner: `http-bench-${i}` });
    out.push({ id: s.id as string, secret: s.secret as string });
  }
  return out;
}

/**
 * Gives each autocannon connection its own session, kept across autocannon's context resets.
 * The warm-up's connections and the run's are different clients, and the warm-up's may still
 * finish a request after the run starts: they get sessions of their own (values holds both sets).
 */
function perConnection(values: Record<string, unknown>[]): (client: Client) => void {
  let next = 0;
  return (client) => {
    const it = client.requestIterator;
    it.initialContext = values[next++ % values.length]!;
    it.resetContext();
    it.setRequests(it.requests); // rebuild the first request with this connection's context
  };
}

function requestsFor(args: HttpArgs, sessions: HttpSession[]): { opts: Partial<Options> } {
  const enc = (s: string) => encodeURIComponent(s);
  switch (args.target) {
    case 'lw-get':
      return { opts: { method: 'GET', url: `${args.base}/v1/leases/${enc('http-bench/held')}` } };
    case 'lw-session-open':
      return {
        opts: {
          method: 'POST',
          headers: JSON_HEADERS,
          body: JSON.stringify({ ttlMs: 5_000 }),
          url: `${args.base}/v1/sessions`,
        },
      };
    case 'lw-keepalive':
      return {
        opts: {
          setupClient: perConnection(sessions.map((s) => ({ ...s }))),
          requests: [
            {
              method: 'POST',
              setupRequest: (req, ctx) => {
                if (!ctx.id) return { ...req, method: 'GET', path: '/healthz' };
                return {
                  ...req,
                  path: `/v1/sessions/${ctx.id as string}/keepalive`,
                  headers: { [SECRET_HEADER]: ctx.secret as string },
                };
              },
            },
          ],
        },
      };
    case 'lw-acquire-release':
      return {
        opts: {
          setupClient: perConnection(sessions.map((s, i) => ({ ...s, name: enc(`http-bench/ar/${i}`) }))),
          requests: [
            {
              method: 'POST',
              setupRequest: (req, ctx) => {
                if (!ctx.id) return { ...req, method: 'GET', path: '/healthz' };
                return {
                  ...req,
                  path: `/v1/leases/${ctx.name as string}/acquire`,
                  headers: { ...JSON_HEADERS, [SECRET_HEADER]: ctx.secret as string },
                  body: JSON.stringify({ session: ctx.id }),
                };
              },
              onResponse: (status, body, ctx) => {
                if (status === 200)
                  ctx.token = (JSON.parse(body) as { lease: { token: number } }).lease.token;
              },
            },
            {
              method: 'POST',
              setupRequest: (req, ctx) => {
                if (ctx.token === undefined) return undefined; // the acquire failed: start over
                return {
                  ...req,
                  path: `/v1/leases/${ctx.name as string}/release`,
                  headers: { ...JSON_HEADERS, [SECRET_HEADER]: ctx.secret as string },
                  body: JSON.stringify({ session: ctx.id, token: ctx.token }),
                };
              },
            },
          ],
        },
      };
    case 'etcd-range':
      return {
        opts: {
          method: 'POST',
          url: `${args.base}/v3/kv/range`,
          headers: JSON_HEADERS,
          body: JSON.stringify({ key: Buffer.from('http-bench/held').toString('base64') }),
        },
      };
    case 'etcd-grant':
      return {
        opts: {
          method: 'POST',
          url: `${args.base}/v3/lease/grant`,
          headers: JSON_HEADERS,
          body: JSON.stringify({ TTL: 60 }),
        },
      };
  }
}

export async function runHttp(args: HttpArgs): Promise<HttpResult> {
  let sessions: HttpSession[] = [];
  if (args.target === 'lw-get') {
    const [holder] = await openSessions(args.base, 1);
    await post(
      `${args.base}/v1/leases/${encodeURIComponent('http-bench/held')}/acquire`,
      { session: holder!.id },
      { [SECRET_HEADER]: holder!.secret },
    );
  } else if (args.target === 'lw-acquire-release' || args.target === 'lw-keepalive') {
    sessions = await openSessions(args.base, args.warmupMs > 0 ? 2 * args.connections : args.connections);
  } else if (args.target === 'etcd-range') {
    await post(`${args.base}/v3/kv/put`, {
      key: Buffer.from('http-bench/held').toString('base64'),
      value: Buffer.from('holder').toString('base64'),
    });
  }
  const { opts } = requestsFor(args, sessions);
  const cpu0 = process.cpuUsage();
  const result = await autocannon({
    url: args.base,
    connections: args.connections,
    duration: args.durationMs / 1000,
    warmup: args.warmupMs > 0 ? { connections: args.connections, duration: args.warmupMs / 1000 } : undefined,
    timeout: 10,
    ...opts,
  });
  const cpu = process.cpuUsage(cpu0);
  const statusCodes: Record<string, number> = {};
  for (const [k, v] of Object.entries(result.statusCodeStats ?? {})) statusCodes[k] = v.count;
  const seconds = result.duration;
  return {
    target: args.target,
    requestsPerSec: result['2xx'] / seconds,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    latency: {
      meanMs: result.latency.mean,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      maxMs: result.latency.max,
    },
    loadCpuPct: ((cpu.user + cpu.system) / 1000 / (args.durationMs + args.warmupMs || 1)) * 100,
    seconds,
  };
}

export type { Request };
