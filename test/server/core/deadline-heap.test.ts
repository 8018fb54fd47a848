import { describe, expect, it } from 'vitest';
import { DeadlineHeap } from '../../../server/core/deadline-heap.js';

function popAll<K>(heap: DeadlineHeap<K>): { at: number; key: K }[] {
  const out: { at: number; key: K }[] = [];
  for (let e = heap.pop(); e; e = heap.pop()) out.push(e);
  return out;
}

/** A small deterministic generator so the shuffled cases are reproducible. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

describe('DeadlineHeap', () => {
  it('is empty when new', () => {
    const heap = new DeadlineHeap<string>();
    expect(heap.size).toBe(0);
    expect(heap.peek()).toBeUndefined();
    expect(heap.pop()).toBeUndefined();
  });

  it.each([
    { label: 'ascending input', ats: [1, 2, 3, 4, 5] },
    { label: 'descending input', ats: [5, 4, 3, 2, 1] },
    { label: 'one entry', ats: [42] },
    { label: 'duplicates', ats: [3, 1, 3, 1, 2, 2] },
    { label: 'negative and fractional deadlines', ats: [0.5, -3, 10, -3.25, 0] },
    { label: 'large values', ats: [Number.MAX_SAFE_INTEGER, 0, 2 ** 40] },
  ])('pops entries in deadline order ($label)', ({ ats }) => {
    const heap = new DeadlineHeap<number>();
    ats.forEach((at, i) => {
      heap.push(at, i);
    });
    expect(heap.size).toBe(ats.length);
    const popped = popAll(heap);
    expect(popped.map((e) => e.at)).toEqual([...ats].sort((a, b) => a - b));
    // Every key comes back exactly once, with the deadline it was pushed with.
    expect(popped.map((e) => e.key).sort((a, b) => a - b)).toEqual(ats.map((_, i) => i));
    for (const e of popped) expect(e.at).toBe(ats[e.key]);
    expect(heap.size).toBe(0);
  });

  it.each([1, 2, 7, 100, 1000])('orders %i shuffled entries, pushes interleaved with pops', (n) => {
    const rand = lcg(n);
    const heap = new DeadlineHeap<number>();
    const live: number[] = [];
    for (let i = 0; i < n; i++) {
      const at = Math.floor(rand() * 50);
      heap.push(at, i);
      live.push(at);
      if (rand() < 0.3) {
        const min = Math.min(...live);
        expect(heap.peek()?.at).toBe(min);
        expect(heap.pop()?.at).toBe(min);
        live.splice(live.indexOf(min), 1);
      }
      expect(heap.size).toBe(live.length);
    }
    expect(popAll(heap).map((e) => e.at)).toEqual(live.sort((a, b) => a - b));
  });

  it('peek shows the earliest entry without removing it', () => {
    const heap = new DeadlineHeap<string>();
    heap.push(20, 'b');
    heap.push(10, 'a');
    heap.push(30, 'c');
    expect(heap.peek()).toEqual({ at: 10, key: 'a' });
    expect(heap.peek()).toEqual({ at: 10, key: 'a' });
    expect(heap.size).toBe(3);
  });

  it('keeps stale entries for a moved deadline: both surface, the owner skips the old one', () => {
    // The table's pattern: a heartbeat moves a deadline by pushing a new entry for the same key.
    const heap = new DeadlineHeap<string>();
    const live = new Map<string, number>([['session', 100]]);
    heap.push(100, 'session');
    live.set('session', 250);
    heap.push(250, 'session');
    heap.push(200, 'other');
    live.set('other', 200);
    const fired: string[] = [];
    for (let e = heap.pop(); e; e = heap.pop()) if (live.get(e.key) === e.at) fired.push(`${e.key}@${e.at}`);
    expect(fired).toEqual(['other@200', 'session@250']);
  });

  it('clear drops every entry', () => {
    const heap = new DeadlineHeap<string>();
    heap.push(1, 'a');
    heap.push(2, 'b');
    heap.clear();
    expect(heap.size).toBe(0);
    expect(heap.peek()).toBeUndefined();
    heap.push(3, 'c');
    expect(popAll(heap)).toEqual([{ at: 3, key: 'c' }]);
  });
});
