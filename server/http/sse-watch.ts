import type { ServerResponse } from 'node:http';
import type { LeaseEvent } from '../../shared/frames.js';
import type { EncodedEvent } from '../gateway/encoded-event.js';
import type { EventSink, WatchHub, WatchSubscription } from '../gateway/watch-hub.js';
import { eventJson } from './json-views.js';

/**
 * The SSE id of a point in the history: `<revision>:<epoch>`. The epoch names the store's
 * history (a memory broker starts a new one on each start), so a Last-Event-ID from another
 * history is recognised instead of being replayed against unrelated revisions.
 * `parseInt(id)` still reads the revision.
 */
export function sseId(revision: number, epoch: string): string {
  return `${revision}:${epoch}`;
}

/** One SSE message; JSON never holds a raw line break, so `data` is always one line. */
export function sseMessage(event: string | undefined, id: string, data: unknown): string {
  return `${event ? `event: ${event}\n` : ''}id: ${id}\ndata: ${JSON.stringify(data)}\n\n`;
}

// Each lease event is turned into text once, however many streams receive it (like W2). An
// EncodedEvent belongs to one broker's hub, hence to one epoch.
const texts = new WeakMap<EncodedEvent, string>();

export function eventMessage(e: EncodedEvent, epoch: string): string {
  let text = texts.get(e);
  if (text === undefined) {
    text = eventText(e.event, epoch);
    texts.set(e, text);
  }
  return text;
}

export function eventText(event: LeaseEvent, epoch: string): string {
  return sseMessage(undefined, sseId(event.revision, epoch), eventJson(event));
}

/**
 * One Server-Sent Events watch stream: the hub's sink for one prefix. While the snapshot or
 * replay is read, live events are held (W3); afterwards each event goes out once, in revision
 * order, deduplicated by revision, its revision as the SSE id. Output is coalesced per
 * event-loop turn; a reader that falls more than maxBufferedBytes behind is disconnected (W6)
 * and resumes with Last-Event-ID.
 */
export class SseWatch implements EventSink {
  private held: EncodedEvent[] | undefined = [];
  private heldBytes = 0;
  private lastId = -1;
  private out = '';
  private flushScheduled = false;
  private closed = false;
  private sub: WatchSubscription | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly hub: WatchHub,
    prefix: string,
    private readonly maxBufferedBytes: number,
    private readonly epoch: string,
    private readonly onClosed: (w: SseWatch) => void,
  ) {
    this.sub = hub.add(prefix, this);
    res.once('close', () => this.close());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  enqueueEvent(e: EncodedEvent): void {
    if (this.closed) return;
    if (this.held) {
      this.held.push(e);
      this.heldBytes += e.bytes.length;
      if (this.heldBytes > this.maxBufferedBytes) this.drop();
      return;
    }
    if (e.revision <= this.lastId) return;
    this.lastId = e.revision;
    this.queue(eventMessage(e, this.epoch));
  }

  /** Sends the opening (snapshot, or replayed events) that covers everything up to `revision`, then the held events after it. */
  start(opening: string, revision: number): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.heldBytes = 0;
    if (this.closed) return;
    this.lastId = revision;
    this.queue(opening);
    for (const e of held) this.enqueueEvent(e);
  }

  /** A comment line: keeps proxies and idle timeouts from closing a quiet stream. */
  heartbeat(): void {
    if (!this.held) this.queue(': keepalive\n\n');
  }

  /** Ends the stream and its connection (broker closing: an idle kept-alive socket would delay it). */
  end(): void {
    if (this.closed) return;
    this.flush();
    const socket = this.res.socket;
    this.res.end();
    socket?.end();
    this.close();
  }

  private queue(text: string): void {
    if (this.closed) return;
    this.out += text;
    if (this.out.length + this.res.writableLength > this.maxBufferedBytes) {
      this.drop();
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed || this.out === '') return;
    const text = this.out;
    this.out = '';
    this.res.write(text);
    if (this.res.writableLength > this.maxBufferedBytes) this.drop();
  }

  /** A slow reader: no error can be sent mid-stream, so the connection is dropped. */
  private drop(): void {
    this.res.destroy();
    this.close();
  }

  /** Unsubscribes without touching the response (set-up failed; the caller answers with an error). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.held = undefined;
    this.out = '';
    if (this.sub) this.hub.remove(this.sub);
    this.sub = undefined;
    this.onClosed(this);
  }
}
