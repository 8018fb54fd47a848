import type { LeaseEvent } from '../../shared/frames.js';

/**
 * The last `limit` lease events, by revision. Revisions are contiguous (every change takes the
 * next one), so an event's slot is found by arithmetic. Watchers that reconnect replay from
 * here; older revisions answer COMPACTED.
 */
export class EventHistory {
  private ring: (LeaseEvent | undefined)[];
  private first = 0; // revision of the oldest event held (0 when empty)
  private count = 0;

  constructor(private readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new RangeError('historyLimit must be a positive integer');
    this.ring = new Array(limit);
  }

  get oldestRevision(): number {
    return this.first;
  }

  get size(): number {
    return this.count;
  }

  push(event: LeaseEvent): void {
    if (this.count > 0 && event.revision !== this.first + this.count) {
      // A gap (e.g. after restoring a snapshot whose history was cut): restart the window.
      this.count = 0;
    }
    if (this.count === 0) this.first = event.revision;
    if (this.count === this.limit) {
      this.first++;
      this.count--;
    }
    this.ring[(event.revision - 0) % this.limit] = event;
    this.count++;
  }

  /**
   * Events with revision > fromRevision, oldest first, or null when the history no longer
   * reaches back that far (COMPACTED).
   */
  since(fromRevision: number, currentRevision: number): LeaseEvent[] | null {
    if (fromRevision > currentRevision) return null;
    if (fromRevision === currentRevision) return [];
    if (this.count === 0 || fromRevision + 1 < this.first) return null;
    const out: LeaseEvent[] = [];
    const last = this.first + this.count - 1;
    for (let r = fromRevision + 1; r <= last; r++) out.push(this.ring[r % this.limit] as LeaseEvent);
    return out;
  }

  all(): LeaseEvent[] {
    const out: LeaseEvent[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.ring[(this.first + i) % this.limit] as LeaseEvent);
    return out;
  }
}
