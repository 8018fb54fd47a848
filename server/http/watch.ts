import { LeasewireError } from '../../shared/errors.js';
import type { LeaseEvent } from '../../shared/frames.js';
import { checkName, parseRevision } from './fields.js';
import type { HttpContext } from './http-context.js';
import { leaseJson } from './json-views.js';
import type { HttpCall } from './router.js';
import { eventText, SseWatch, sseMessage } from './sse-watch.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  connection: 'keep-alive',
  // nginx and similar proxies would otherwise buffer the stream.
  'x-accel-buffering': 'no',
};

/**
 * GET /v1/watch?prefix=&fromRevision= as Server-Sent Events. Without a revision the stream
 * opens with `event: snapshot` ({revision, leases}); with `fromRevision` or a `Last-Event-ID`
 * header (which wins: EventSource sends it on reconnect) it replays the events after it and
 * then sends `event: watching` ({revision}). Lease events follow as plain messages whose id is
 * their revision. A revision older than the history answers 410 COMPACTED before the stream
 * starts: watch again without one to get a fresh snapshot.
 */
export async function watchLeases(call: HttpCall, ctx: HttpContext): Promise<void> {
  const { req, res, query } = call;
  const prefix = checkName(query.get('prefix') ?? '', true);
  const lastEventId = req.headers['last-event-id'];
  let from: number | undefined;
  if (typeof lastEventId === 'string' && lastEventId !== '')
    from = parseRevision(lastEventId, 'Last-Event-ID');
  else {
    const raw = query.get('fromRevision');
    if (raw !== undefined) from = parseRevision(raw, 'fromRevision');
  }
  if (req.method === 'HEAD') {
    res.writeHead(200, SSE_HEADERS);
    res.end();
    return;
  }
  if (ctx.streams.size >= ctx.options.maxHttpWatches) {
    throw new LeasewireError('LIMIT_EXCEEDED', `at most ${ctx.options.maxHttpWatches} SSE watch streams`, {
      limit: 'maxHttpWatches',
      max: ctx.options.maxHttpWatches,
    });
  }

  // W3: subscribe first (events are held), then read the snapshot or history, then go live.
  const stream = new SseWatch(res, ctx.hub, prefix, ctx.options.maxBufferedBytes, (w) =>
    ctx.streams.delete(w),
  );
  ctx.streams.add(stream);
  let opening: string;
  let revision: number;
  try {
    if (from === undefined) {
      const snap = await ctx.store.list(prefix);
      revision = snap.revision;
      opening = sseMessage('snapshot', revision, { revision, leases: snap.leases.map(leaseJson) });
    } else {
      revision = ctx.store.revision;
      const { events, oldestRevision } = await ctx.store.eventsSince(from);
      if (!events) {
        throw new LeasewireError('COMPACTED', `revision ${from} is no longer in the history`, {
          oldestRevision,
        });
      }
      opening = replay(events, prefix, revision) + sseMessage('watching', revision, { revision });
    }
  } catch (err) {
    stream.close();
    throw err;
  }
  if (stream.isClosed) return;
  res.writeHead(200, SSE_HEADERS);
  stream.start(opening, revision);
}

function replay(events: readonly LeaseEvent[], prefix: string, upTo: number): string {
  let text = '';
  for (const e of events) {
    if (e.revision <= upTo && e.name.startsWith(prefix)) text += eventText(e);
  }
  return text;
}
