import { describe, expect, it, vi } from 'vitest';
import { AsyncQueue } from '../../client/async-queue.js';

describe('AsyncQueue', () => {
  it('hands items to a waiting reader and buffers the rest in order', async () => {
    const q = new AsyncQueue<number>(10);
    const first = q.next();
    q.push(1);
    q.push(2);
    q.push(3);
    expect(await first).toEqual({ value: 1, done: false });
    expect(await q.next()).toEqual({ value: 2, done: false });
    expect(await q.next()).toEqual({ value: 3, done: false });
  });

  it('refuses items past its limit', () => {
    const q = new AsyncQueue<number>(2);
    expect(q.push(1)).toBe(true);
    expect(q.push(2)).toBe(true);
    expect(q.push(3)).toBe(false);
    expect(q.size).toBe(2);
  });

  it('yields buffered items after end, then finishes', async () => {
    const q = new AsyncQueue<number>(5);
    q.push(1);
    q.end();
    const seen: number[] = [];
    for await (const v of q) seen.push(v);
    expect(seen).toEqual([1]);
  });

  it('throws the end error to the reader', async () => {
    const q = new AsyncQueue<number>(5);
    const next = q.next();
    q.end(new Error('boom'));
    await expect(next).rejects.toThrow('boom');
  });

  it('calls onReturn once when the reader breaks out', async () => {
    const onReturn = vi.fn();
    const q = new AsyncQueue<number>(5, onReturn);
    q.push(1);
    q.push(2);
    for await (const _ of q) break;
    expect(onReturn).toHaveBeenCalledTimes(1);
    expect(q.push(3)).toBe(false);
  });
});
