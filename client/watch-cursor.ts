import type { LeaseEvent } from '../shared/frames.js';

/**
 * Where one watch stands in the broker-wide revision sequence, and which events it still has to
 * deliver. Pure: no sockets or timers, so the ordering rules below are unit-tested on their own.
 *
 * Rules (the broker pushes `events` once per connection, not per watch):
 * - An event goes to a watch when its name starts with the watch's prefix and its revision is
 *   greater than the last revision the watch has seen. This drops replayed events the watch
 *   already has and events already covered by a snapshot.
 * - While a `watch` request is in flight, matching events are held back. When the reply comes:
 *   - with a snapshot at revision R: held events above R are delivered after the snapshot;
 *   - as a replay (`fromRevision`): the missed events (revision ≤ R) come inside the reply
 *     (`watching.events`, rule W4) and are delivered first, then held events above R. A broker
 *     that sends the replay in `events` frames after the reply instead is handled too: held
 *     events above R then wait until the replay is over, at the first event above R or the
 *     first frame that is not an `events` push.
 */
export type CursorState = 'detached' | 'attaching' | 'replaying' | 'live';

/** The fields of a `watch` request for this cursor's next attach. */
export interface AttachFields {
  prefix: string;
  fromRevision?: number;
}

export class WatchCursor {
  private currentState: CursorState = 'detached';
  private held: LeaseEvent[] = [];
  private attachRevision = 0;
  private last: number | undefined;

  constructor(
    readonly prefix: string,
    fromRevision?: number,
  ) {
    this.last = fromRevision;
  }

  get state(): CursorState {
    return this.currentState;
  }

  /** The last revision this watch has seen (delivered or covered by a snapshot). */
  get lastRevision(): number | undefined {
    return this.last;
  }

  matches(name: string): boolean {
    return name.startsWith(this.prefix);
  }

  /** A `watch` request is about to be sent; returns its fields. Resumes from the last revision seen. */
  attach(): AttachFields {
    this.currentState = 'attaching';
    this.held = [];
    return this.last === undefined
      ? { prefix: this.prefix }
      : { prefix: this.prefix, fromRevision: this.last };
  }

  /**
   * The `watching` reply arrived. With a snapshot, the cursor jumps to `revision` and returns the
   * held-back events to deliver right after the snapshot. With an inline replay, returns the
   * replay then the held-back events. Without either, the replay is still to come.
   */
  attached(revision: number, withSnapshot: boolean, replay?: readonly LeaseEvent[]): LeaseEvent[] {
    const held = this.held.filter((e) => e.revision > revision).sort(byRevision);
    this.held = [];
    if (withSnapshot) {
      this.last = revision;
      this.currentState = 'live';
      return held.filter((e) => this.take(e));
    }
    if (replay) {
      this.currentState = 'live';
      const inline = [...replay].sort(byRevision).filter((e) => e.revision <= revision && this.take(e));
      return inline.concat(held.filter((e) => this.take(e)));
    }
    this.attachRevision = revision;
    this.held = held;
    this.currentState = held.length > 0 ? 'replaying' : 'live';
    return [];
  }

  /** An event from an `events` push; returns the events to deliver now, in order. */
  offer(event: LeaseEvent): LeaseEvent[] {
    switch (this.currentState) {
      case 'detached':
        return [];
      case 'attaching':
        if (this.matches(event.name)) this.held.push(event);
        return [];
      case 'replaying':
        if (event.revision > this.attachRevision) {
          const out = this.settle();
          if (this.take(event)) out.push(event);
          return out;
        }
        return this.take(event) ? [event] : [];
      case 'live':
        return this.take(event) ? [event] : [];
    }
  }

  /** A frame other than an `events` push arrived: any replay is over. */
  settle(): LeaseEvent[] {
    if (this.currentState !== 'replaying') return [];
    this.currentState = 'live';
    const held = this.held;
    this.held = [];
    return held.filter((e) => this.take(e));
  }

  /** The connection dropped: nothing is delivered until the next attach. */
  detach(): void {
    this.currentState = 'detached';
    this.held = [];
  }

  /** Forgets the position, so that the next attach asks for a fresh snapshot (after COMPACTED or an overflow). */
  forgetPosition(): void {
    this.last = undefined;
  }

  private take(event: LeaseEvent): boolean {
    if (!this.matches(event.name)) return false;
    if (this.last !== undefined && event.revision <= this.last) return false;
    this.last = event.revision;
    return true;
  }
}

function byRevision(a: LeaseEvent, b: LeaseEvent): number {
  return a.revision - b.revision;
}
