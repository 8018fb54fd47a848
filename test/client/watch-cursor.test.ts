import { describe, expect, it } from 'vitest';
import { WatchCursor } from '../../client/watch-cursor.js';
import type { LeaseEvent } from '../../shared/frames.js';

function ev(revision: number, name = 'rooms/1', kind: LeaseEvent['kind'] = 'acquired'): LeaseEvent {
  return { kind, revision, name, owner: 'o', sessionId: 's', token: revision, at: 0 };
}

const revs = (events: LeaseEvent[]) => events.map((e) => e.revision);

describe('WatchCursor', () => {
  it('delivers nothing while detached', () => {
    const c = new WatchCursor('rooms/');
    expect(c.offer(ev(1))).toEqual([]);
  });

  it('asks for a snapshot first, then resumes from the last revision seen', () => {
    const c = new WatchCursor('rooms/');
    expect(c.attach()).toEqual({ prefix: 'rooms/' });
    c.attached(10, true);
    c.offer(ev(12));
    c.detach();
    expect(c.attach()).toEqual({ prefix: 'rooms/', fromRevision: 12 });
  });

  it('starts from fromRevision when given one', () => {
    expect(new WatchCursor('a', 7).attach()).toEqual({ prefix: 'a', fromRevision: 7 });
  });

  it('matches names by plain string prefix', () => {
    const c = new WatchCursor('rooms/');
    c.attach();
    c.attached(0, true);
    expect(revs(c.offer(ev(1, 'rooms/7')))).toEqual([1]);
    expect(revs(c.offer(ev(2, 'rooms')))).toEqual([]);
    expect(revs(c.offer(ev(3, 'jobs/1')))).toEqual([]);
    expect(revs(c.offer(ev(4, 'rooms/')))).toEqual([4]);
  });

  it('drops events a snapshot already covers and duplicates of delivered revisions', () => {
    const c = new WatchCursor('');
    c.attach();
    c.attached(5, true);
    expect(revs(c.offer(ev(4)))).toEqual([]);
    expect(revs(c.offer(ev(5)))).toEqual([]);
    expect(revs(c.offer(ev(6)))).toEqual([6]);
    expect(revs(c.offer(ev(6)))).toEqual([]);
    expect(c.lastRevision).toBe(6);
  });

  it('holds events that arrive before the snapshot reply and delivers the newer ones after it', () => {
    const c = new WatchCursor('');
    c.attach();
    expect(c.offer(ev(4))).toEqual([]);
    expect(c.offer(ev(6))).toEqual([]);
    expect(revs(c.attached(5, true))).toEqual([6]);
    expect(revs(c.offer(ev(7)))).toEqual([7]);
  });

  it('delivers an inline replay after a reconnect without gaps or duplicates', () => {
    const c = new WatchCursor('');
    c.attach();
    c.attached(5, true);
    c.offer(ev(6));
    c.detach();
    expect(c.offer(ev(7))).toEqual([]); // lost with the connection
    c.attach();
    // The replay overlaps what was already delivered (6) and covers what was missed (7, 8).
    expect(revs(c.attached(8, false, [ev(6), ev(7), ev(8)]))).toEqual([7, 8]);
    expect(revs(c.offer(ev(8)))).toEqual([]);
    expect(revs(c.offer(ev(9)))).toEqual([9]);
  });

  it('keeps revision order when live events were held during an inline replay', () => {
    const c = new WatchCursor('', 3);
    c.attach();
    c.offer(ev(9)); // a live event that raced the reply
    expect(revs(c.attached(8, false, [ev(5), ev(4), ev(8)]))).toEqual([4, 5, 8, 9]);
  });

  it('waits for a replay sent in events frames before releasing held live events', () => {
    const c = new WatchCursor('', 3);
    c.attach();
    c.offer(ev(9));
    expect(c.attached(8, false)).toEqual([]);
    expect(c.state).toBe('replaying');
    expect(revs(c.offer(ev(4)))).toEqual([4]);
    expect(revs(c.offer(ev(8)))).toEqual([8]);
    expect(revs(c.offer(ev(10)))).toEqual([9, 10]);
    expect(c.state).toBe('live');
  });

  it('ends a replay at the next non-events frame', () => {
    const c = new WatchCursor('', 3);
    c.attach();
    c.offer(ev(9));
    c.attached(8, false);
    expect(revs(c.settle())).toEqual([9]);
    expect(c.settle()).toEqual([]);
  });

  it('goes live at once after a replay reply when nothing was held', () => {
    const c = new WatchCursor('', 3);
    c.attach();
    c.attached(8, false);
    expect(c.state).toBe('live');
    expect(revs(c.offer(ev(5)))).toEqual([5]);
  });

  it('asks for a fresh snapshot after forgetting its position', () => {
    const c = new WatchCursor('x', 3);
    c.forgetPosition();
    expect(c.attach()).toEqual({ prefix: 'x' });
  });
});
