import type { LeaseEvent } from '../../shared/frames.js';
import { EncodedEvent } from './encoded-event.js';

/** Where the hub delivers: a connection's outgoing event queue. */
export interface EventSink {
  enqueueEvent(event: EncodedEvent): void;
}

export interface WatchSubscription {
  readonly prefix: string;
  readonly sink: EventSink;
}

/**
 * Matches each lease event to the watches whose prefix it starts with. Watches are indexed by
 * prefix length, then by prefix, so one event costs one map lookup per distinct prefix length
 * in use (a handful), not one per watch. Each event is encoded once (W2); a connection with
 * several matching watches gets it once and its client dispatches it to each (W5).
 */
export class WatchHub {
  private readonly byLength = new Map<number, Map<string, Set<WatchSubscription>>>();
  private lengths: number[] = [];
  private count = 0;
  /** Events fanned out (deliveries to connections), for metrics. */
  deliveries = 0;

  get size(): number {
    return this.count;
  }

  add(prefix: string, sink: EventSink): WatchSubscription {
    const sub: WatchSubscription = { prefix, sink };
    let byPrefix = this.byLength.get(prefix.length);
    if (!byPrefix) {
      byPrefix = new Map();
      this.byLength.set(prefix.length, byPrefix);
      this.lengths = [...this.byLength.keys()].sort((a, b) => a - b);
    }
    let subs = byPrefix.get(prefix);
    if (!subs) {
      subs = new Set();
      byPrefix.set(prefix, subs);
    }
    subs.add(sub);
    this.count++;
    return sub;
  }

  remove(sub: WatchSubscription): void {
    const byPrefix = this.byLength.get(sub.prefix.length);
    const subs = byPrefix?.get(sub.prefix);
    if (!byPrefix || !subs?.delete(sub)) return;
    this.count--;
    if (subs.size === 0) byPrefix.delete(sub.prefix);
    if (byPrefix.size === 0) {
      this.byLength.delete(sub.prefix.length);
      this.lengths = [...this.byLength.keys()].sort((a, b) => a - b);
    }
  }

  publish(events: readonly LeaseEvent[]): void {
    if (this.count === 0) return;
    for (const event of events) {
      let encoded: EncodedEvent | undefined;
      const name = event.name;
      for (const len of this.lengths) {
        if (len > name.length) break;
        const subs = this.byLength.get(len)?.get(len === name.length ? name : name.slice(0, len));
        if (!subs) continue;
        if (!encoded) encoded = new EncodedEvent(event);
        for (const sub of subs) {
          sub.sink.enqueueEvent(encoded);
          this.deliveries++;
        }
      }
    }
  }
}
