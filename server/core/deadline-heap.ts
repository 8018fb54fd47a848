/**
 * A binary min-heap of deadlines. The expiry scheduler arms a single timer for the top entry
 * instead of one timer per lease or session. Entries are never removed from the middle:
 * when a deadline moves (a heartbeat, a renew), a new entry is pushed and the stale one is
 * skipped when it surfaces (the owner checks it against the live state), which keeps a
 * heartbeat O(1).
 */
export interface HeapEntry<K> {
  at: number;
  key: K;
}

export class DeadlineHeap<K> {
  private readonly items: HeapEntry<K>[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): HeapEntry<K> | undefined {
    return this.items[0];
  }

  push(at: number, key: K): void {
    const items = this.items;
    items.push({ at, key });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as HeapEntry<K>;
      const c = items[i] as HeapEntry<K>;
      if (p.at <= c.at) break;
      items[parent] = c;
      items[i] = p;
      i = parent;
    }
  }

  pop(): HeapEntry<K> | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    let i = 0;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && (items[l] as HeapEntry<K>).at < (items[m] as HeapEntry<K>).at) m = l;
      if (r < n && (items[r] as HeapEntry<K>).at < (items[m] as HeapEntry<K>).at) m = r;
      if (m === i) break;
      const tmp = items[i] as HeapEntry<K>;
      items[i] = items[m] as HeapEntry<K>;
      items[m] = tmp;
      i = m;
    }
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }
}
