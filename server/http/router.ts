import type { IncomingMessage, ServerResponse } from 'node:http';
import { LeasewireError } from '../../shared/errors.js';
import type { HttpHandler } from '../listener.js';
import { decodeComponent, parseQuery } from './fields.js';
import type { HttpContext } from './http-context.js';
import { errorReply, HttpProblem, writeError } from './http-error.js';
import type { HttpMetrics } from './http-metrics.js';

/** Longer request targets get 414 (a 512-byte name percent-encoded is at most 1.5 KiB). */
export const MAX_URL_LENGTH = 4096;

export interface HttpCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Path parameters, percent-decoded strictly, in pattern order. */
  readonly params: string[];
  readonly query: Map<string, string>;
}

export type RouteHandler = (call: HttpCall, ctx: HttpContext) => Promise<void>;

export type Method = 'GET' | 'POST' | 'DELETE';

export interface Route {
  /** `/v1/leases/:name/acquire`: literal segments, or `:x` for one percent-encoded segment. */
  path: string;
  /** Fixed label for metrics and logs. */
  name: string;
  methods: Partial<Record<Method, RouteHandler>>;
  /** Served while closing (health checks); everything else answers 503 then. */
  duringShutdown?: boolean;
  /** A stream: its duration is not a request latency. */
  streaming?: boolean;
}

interface CompiledRoute extends Route {
  segments: (string | null)[];
  allow: string;
}

/**
 * Matches a request to a route and runs it. Requests for paths no route knows fall through
 * (return false) to the listener's 404. Every failure, thrown or rejected, becomes a JSON error
 * reply here, so no input can surface as an unhandled rejection.
 */
export function createRouter(routes: Route[], ctx: HttpContext, metrics: HttpMetrics): HttpHandler {
  const compiled: CompiledRoute[] = routes.map((r) => {
    const methods = Object.keys(r.methods);
    if (methods.includes('GET')) methods.push('HEAD');
    return {
      ...r,
      segments: r.path
        .split('/')
        .slice(1)
        .map((s) => (s.startsWith(':') ? null : s)),
      allow: methods.join(', '),
    };
  });

  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const segments = path.split('/').slice(1);
    const route = compiled.find((r) => matches(r.segments, segments));
    if (!route) {
      if (url.length > MAX_URL_LENGTH && path.startsWith('/v1/')) {
        respondError(res, new HttpProblem(414, 'BAD_REQUEST', `the URL is longer than ${MAX_URL_LENGTH}`));
        return true;
      }
      return false;
    }
    const started = performance.now();
    res.once('close', () => {
      metrics.requestDone(
        route.name,
        res.statusCode,
        route.streaming ? undefined : performance.now() - started,
      );
    });
    return run(route, req, res, url, q, segments).then(
      () => true,
      (err: unknown) => {
        const reply = errorReply(err);
        if (reply.code === 'INTERNAL') {
          ctx.log.error('http request failed', { route: route.name, error: String(err) });
        }
        // While closing, a kept-alive connection would hold the listener's close until its drain timeout.
        if (ctx.closing) reply.closeConnection = true;
        metrics.errorOut(reply.code);
        writeError(res, reply);
        return true;
      },
    );
  };

  async function run(
    route: CompiledRoute,
    req: IncomingMessage,
    res: ServerResponse,
    url: string,
    q: number,
    segments: string[],
  ): Promise<void> {
    if (url.length > MAX_URL_LENGTH) {
      throw new HttpProblem(414, 'BAD_REQUEST', `the URL is longer than ${MAX_URL_LENGTH}`);
    }
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const handler = route.methods[method as Method];
    if (!handler) {
      throw new HttpProblem(405, 'BAD_REQUEST', `${req.method} is not allowed on ${route.path}`, {
        allow: route.allow,
      });
    }
    if (ctx.closing && !route.duringShutdown) {
      throw new LeasewireError('SHUTTING_DOWN', 'the broker is shutting down');
    }
    const params: string[] = [];
    route.segments.forEach((literal, i) => {
      if (literal === null) params.push(decodeComponent(segments[i] ?? '', 'the path'));
    });
    const query = parseQuery(q < 0 ? '' : url.slice(q + 1));
    await handler({ req, res, params, query }, ctx);
  }

  function respondError(res: ServerResponse, err: unknown): void {
    const reply = errorReply(err);
    metrics.errorOut(reply.code);
    writeError(res, reply);
  }
}

function matches(pattern: (string | null)[], segments: string[]): boolean {
  if (pattern.length !== segments.length) return false;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p !== null && p !== segments[i]) return false;
  }
  return true;
}
