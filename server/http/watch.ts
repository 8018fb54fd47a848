import { LeasewireError } from '../../shared/errors.js';
import type { LeaseEvent } from '../../shared/frames.js';
import { checkName, parseRevision } from './fields.js';
import type { HttpContext } from './http-context.js';
import { badRequest } from './http-error.js';
import { leaseJson } from './json-views.js';
import type { HttpCall } from './router.js';
import { eventText, SseWatch, sseId, sseMessage } from './sse-watch.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  connection: 'keep-alive',
  // nginx and similar proxies would otherwise buffer the stream.
  'x-accel-buffering': 'no',
};

/**
 * GET /v1/watch?prefix=&fromRevision= as Server-Sent Events. Without a revision the stream
 * opens with `event: snapshot` ({revision, epoch, leases}); with `fromRevision` or a
 * `Last-Event-ID` header (which wins: EventSource sends it on reconnect) it replays the events
 * after it and then sends `event: watching` ({revision, epoch}). Lease events follow as plain
 * messages whose id is `<revision>:<epoch>`. A revision the history no longer holds, one from
 * the future, or one from another epoch answers 410 COMPACTED before the stream starts: watch
 * again without one to get a fresh snapshot.
 */
export async function watchLeases(call: HttpCall, ctx: HttpContext): Promise<void> {
  const { req, res, query } = call;
  const prefix = checkName(query.get('prefix') ?? '', true);
  const lastEventId = req.headers['last-event-id'];
  const epoch = ctx.store.epoch;
  let cursor: WatchCursor | undefined;
  if (typeof lastEventId === 'string' && lastEventId !== '')
    cursor = parseCursor(lastEventId, 'Last-Event-ID');
  else {
    const raw = query.get('fromRevision');
    if (raw !== undefined) cursor = parseCursor(raw, 'fromRevision');
  }
  if (cursor?.epoch !== undefined && cursor.epoch !== epoch) {
    throw new LeasewireError(
      'COMPACTED',
      `revision ${cursor.revision} belongs to another history (epoch ${cursor.epoch}; this broker's is ${epoch})`,
    );
  }
  const from = cursor?.revision;
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
  const stream = new SseWatch(res, ctx.hub, prefix, ctx.options.maxBufferedBytes, epoch, (w) =>
    ctx.streams.delete(w),
  );
  ctx.streams.add(stream);
  let opening: string;
  let revision: number;
  try {
    if (from === undefined) {
      const snap = await ctx.store.list(prefix);
      revision = snap.revision;
      opening = sseMessage('snapshot', sseId(revision, epoch), {
        revision,
        epoch,
        leases: snap.leases.map(leaseJson),
      });
    } else {
      revision = ctx.store.revision;
      const { events, oldestRevision } = await ctx.store.eventsSince(from);
      if (!events) {
        throw new LeasewireError('COMPACTED', `revision ${from} is no longer in the history`, {
          oldestRevision,
        });
      }
      opening =
        replay(events, prefix, revision, epoch) +
        sseMessage('watching', sseId(revision, epoch), { revision, epoch });
    }
  } catch (err) {
    stream.close();
    throw err;
  }
  if (stream.isClosed) return;
  res.writeHead(200, SSE_HEADERS);
  stream.start(opening, revision);
}

function replay(events: readonly LeaseEvent[], prefix: string, upTo: number, epoch: string): string {
  let text = '';
  for (const e of events) {
    if (e.revision <= upTo && e.name.startsWith(prefix)) text += eventText(e, epoch);
  }
  return text;
}

interface WatchCursor {
  revision: number;
  epoch?: string;
}

/** `<revision>` or `<revision>:<epoch>` (the ids this stream sends). */
function parseCursor(raw: string, what: string): WatchCursor {
  const colon = raw.indexOf(':');
  if (colon < 0) return { revision: parseRevision(raw, what) };
  const epoch = raw.slice(colon + 1);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(epoch))
    throw badRequest(`${what} must be <revision> or <revision>:<epoch>`);
  return { revision: parseRevision(raw.slice(0, colon), what), epoch };
}
