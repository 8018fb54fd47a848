import { describe, expect, it } from 'vitest';
import { EventHistory } from '../../../server/core/event-history.js';
import type { LeaseEvent } from '../../../shared/frames.js';

function ev(revision: number): LeaseEvent {
  return {
    kind: 'acquired',
    revision,
    name: `n${revision}`,
    owner: 'o',
    sessionId: 's',
    token: revision,
    at: 0,
  };
}

/** A history holding revisions from..to, pushed in order. */
function filled(limit: number, from: number, to: number): EventHistory {
  const h = new EventHistory(limit);
  for (let r = from; r <= to; r++) h.push(ev(r));
  return h;
}

function revisions(events: LeaseEvent[] | null): number[] | null {
  return events === null ? null : events.map((e) => e.revision);
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let r = from; r <= to; r++) out.push(r);
  return out;
}

describe('EventHistory', () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects historyLimit %s', (limit) => {
    expect(() => new EventHistory(limit)).toThrow(RangeError);
  });

  it('is empty when new: only the current revision 0 replays (as nothing)', () => {
    const h = new EventHistory(4);
    expect(h.size).toBe(0);
    expect(h.oldestRevision).toBe(0);
    expect(h.all()).toEqual([]);
    expect(h.since(0, 0)).toEqual([]);
  });

  it.each([
    // limit, pushed revisions, expected oldest
    { limit: 4, from: 1, to: 3, oldest: 1, size: 3 },
    { limit: 4, from: 1, to: 4, oldest: 1, size: 4 },
    { limit: 4, from: 1, to: 5, oldest: 2, size: 4 },
    { limit: 4, from: 1, to: 11, oldest: 8, size: 4 },
    { limit: 1, from: 1, to: 6, oldest: 6, size: 1 },
    { limit: 3, from: 10, to: 20, oldest: 18, size: 3 },
  ])(
    'keeps the last $limit events across ring wrap (pushed $from..$to)',
    ({ limit, from, to, oldest, size }) => {
      const h = filled(limit, from, to);
      expect(h.size).toBe(size);
      expect(h.oldestRevision).toBe(oldest);
      expect(revisions(h.all())).toEqual(range(oldest, to));
    },
  );

  it.each([
    // History holds 8..11 (limit 4, pushed 1..11), current is 11.
    { label: 'the current revision', from: 11, expected: [] },
    { label: 'one behind', from: 10, expected: [11] },
    { label: 'the compaction boundary (oldest - 1)', from: 7, expected: [8, 9, 10, 11] },
    { label: 'the oldest kept revision', from: 8, expected: [9, 10, 11] },
    { label: 'just past the boundary (oldest - 2)', from: 6, expected: null },
    { label: 'revision 0', from: 0, expected: null },
    { label: 'a negative revision', from: -1, expected: null },
    { label: 'ahead of current', from: 12, expected: null },
    { label: 'far ahead of current', from: 1_000, expected: null },
  ])('since $label', ({ from, expected }) => {
    const h = filled(4, 1, 11);
    expect(revisions(h.since(from, 11))).toEqual(expected);
  });

  it('replays everything from 0 while nothing was compacted', () => {
    const h = filled(10, 1, 6);
    expect(revisions(h.since(0, 6))).toEqual(range(1, 6));
  });

  it('returns the same event objects in revision order across the wrap point', () => {
    const h = new EventHistory(3);
    const pushed = range(1, 7).map(ev);
    for (const e of pushed) h.push(e);
    const got = h.since(4, 7);
    expect(got).toHaveLength(3);
    got?.forEach((e, i) => {
      expect(e).toBe(pushed[4 + i]);
    });
  });

  it('answers COMPACTED for everything before a gap and replays after it', () => {
    // A restored snapshot whose history was cut: 1..3, then 10..12.
    const h = filled(10, 1, 3);
    for (let r = 10; r <= 12; r++) h.push(ev(r));
    expect(h.oldestRevision).toBe(10);
    expect(h.size).toBe(3);
    expect(revisions(h.since(9, 12))).toEqual([10, 11, 12]);
    expect(h.since(3, 12)).toBeNull();
    expect(h.since(0, 12)).toBeNull();
  });

  it('answers COMPACTED for an empty history behind a non-zero current revision', () => {
    const h = new EventHistory(4);
    expect(h.since(4, 5)).toBeNull();
    expect(h.since(5, 5)).toEqual([]);
  });
});
