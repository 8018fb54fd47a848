import { describe, expect, it } from 'vitest';
import { LeaseTable } from '../../../server/core/lease-table.js';
import type { AcquireParams, ChangeRecord, Output } from '../../../server/core/types.js';
import type { LeaseEvent, LeaseInfo } from '../../../shared/frames.js';
import {
  describeOutputs,
  eventsOf,
  expectRejected,
  FakeClock,
  sessionRecord,
  tableWith,
} from './table-harness.js';

const SESSION_TTL_MS = 10_000;

let waitIds = 0;
/** Acquire params with a fresh waitId (the broker hands out unique ones). */
function params(extra: Omit<Partial<AcquireParams>, 'waitId'> = {}): AcquireParams {
  waitIds += 1;
  return { waitId: waitIds, ...extra };
}

function grantedLease(r: ReturnType<LeaseTable['acquire']>): LeaseInfo {
  if (r.kind !== 'granted') throw new Error(`expected a grant, got ${JSON.stringify(r)}`);
  return r.lease;
}

function expectContiguous(events: LeaseEvent[], from: number): void {
  events.forEach((e, i) => {
    expect(e.revision, `event ${i} (${e.kind} ${e.name})`).toBe(from + i);
  });
}

describe('LeaseTable acquire', () => {
  it('grants a free name with the next token and one acquired event', () => {
    const { table, clock } = tableWith(['a']);
    const meta = new Uint8Array([1, 2, 3]);
    const token = table.lastIssuedToken + 1;
    const revision = table.currentRevision + 1;
    const r = table.acquire(clock.now(), 'a', 'jobs/x', params({ meta }));
    expect(r).toEqual({
      kind: 'granted',
      lease: {
        name: 'jobs/x',
        token,
        owner: 'owner-a',
        sessionId: 'a',
        acquiredAt: clock.wall,
        sessionTtlMs: SESSION_TTL_MS,
        expiresInMs: SESSION_TTL_MS,
        waiters: 0,
        revision,
        meta,
      },
    });
    expect(table.drain()).toEqual([
      {
        type: 'event',
        event: {
          kind: 'acquired',
          revision,
          name: 'jobs/x',
          owner: 'owner-a',
          sessionId: 'a',
          token,
          at: clock.wall,
          meta,
        },
      },
    ]);
    expect(table.lastIssuedToken).toBe(token);
    expect(table.currentRevision).toBe(revision);
  });

  it.each([
    { label: 'plain', extra: {} },
    { label: 'with wait', extra: { wait: true } },
    { label: 'with wait and a timeout', extra: { wait: true, waitTimeoutMs: 5 } },
    { label: 'with other meta', extra: { meta: new Uint8Array([9]) } },
    { label: 'with a lease ttl', extra: { ttlMs: 1_000 } },
  ])('answers the holder re-acquiring ($label) with the same grant and no new event', ({ extra }) => {
    const { table, clock } = tableWith(['a']);
    const first = grantedLease(table.acquire(clock.now(), 'a', 'x', params({ meta: new Uint8Array([1]) })));
    table.drain();
    const now = clock.step(250);
    const again = grantedLease(table.acquire(now, 'a', 'x', params(extra)));
    expect(again).toEqual({ ...first, expiresInMs: first.expiresInMs - 250 });
    expect(table.drain()).toEqual([]);
    expect(table.waiterCount).toBe(0);
    expect(table.lastIssuedToken).toBe(first.token);
    expect(table.currentRevision).toBe(first.revision);
  });

  it('tells a non-waiting acquirer who holds the name, and changes nothing', () => {
    const { table, clock } = tableWith(['a', 'b']);
    const lease = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    table.drain();
    const r = table.acquire(clock.now(), 'b', 'x', params());
    expect(r).toEqual({ kind: 'held', holder: { owner: 'owner-a', sessionId: 'a', token: lease.token } });
    expect(table.drain()).toEqual([]);
    expect(table.waiterCount).toBe(0);
    expect(table.get(clock.now(), 'x')?.waiters).toBe(0);
  });

  it('queues waiters in FIFO order and hands the lease to each in turn on release', () => {
    const { table, clock } = tableWith(['a', 'b', 'c', 'd']);
    let holder = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    const waiters = ['b', 'c', 'd'].map((sid, i) => {
      const p = params({ wait: true });
      const r = table.acquire(clock.now(), sid, 'x', p);
      expect(r).toEqual({ kind: 'queued', position: i + 1 });
      return { sid, waitId: p.waitId };
    });
    expect(table.get(clock.now(), 'x')?.waiters).toBe(3);
    expect(table.waiterCount).toBe(3);
    table.drain();
    for (const [i, w] of waiters.entries()) {
      const now = clock.step(10);
      table.release(now, holder.sessionId, 'x', holder.token);
      const out = table.drain();
      const events = eventsOf(out);
      expect(events.map((e) => [e.kind, e.sessionId])).toEqual([
        ['released', holder.sessionId],
        ['acquired', w.sid],
      ]);
      const [released, acquired] = events as [LeaseEvent, LeaseEvent];
      expect(released.reason).toBe('release');
      expect(acquired.revision).toBe(released.revision + 1);
      expect(acquired.token).toBeGreaterThan(holder.token);
      expect(acquired.previous).toEqual({
        owner: holder.owner,
        sessionId: holder.sessionId,
        token: holder.token,
      });
      expect(acquired.reason).toBe('release');
      const granted = out.find((o) => o.type === 'waitGranted');
      expect(granted).toMatchObject({ sessionId: w.sid, waitId: w.waitId, lease: { token: acquired.token } });
      const info = table.get(now, 'x');
      expect(info).toMatchObject({
        sessionId: w.sid,
        token: acquired.token,
        waiters: waiters.length - i - 1,
      });
      holder = info as LeaseInfo;
    }
    expect(table.waiterCount).toBe(0);
  });

  it('refuses a second wait on the same name from one session with ALREADY_WAITING', () => {
    const { table, clock } = tableWith(['a', 'b']);
    table.acquire(clock.now(), 'a', 'x', params());
    table.acquire(clock.now(), 'b', 'x', params({ wait: true }));
    expectRejected(
      table,
      clock.now(),
      () => table.acquire(clock.now(), 'b', 'x', params({ wait: true })),
      'ALREADY_WAITING',
    );
    // A non-waiting probe from the same session is still answered.
    expect(table.acquire(clock.now(), 'b', 'x', params()).kind).toBe('held');
  });

  it('refuses a waitId that is already in use, changing nothing', () => {
    const { table, clock } = tableWith(['a', 'b', 'c']);
    table.acquire(clock.now(), 'a', 'x', params());
    const p = params({ wait: true });
    table.acquire(clock.now(), 'b', 'x', p);
    expectRejected(
      table,
      clock.now(),
      () => table.acquire(clock.now(), 'c', 'x', { wait: true, waitId: p.waitId }),
      'BAD_REQUEST',
    );
  });

  it('fails a waiting acquire with waitTimeoutMs 0 on a held name at once, changing nothing', () => {
    const { table, clock } = tableWith(['a', 'b']);
    table.acquire(clock.now(), 'a', 'x', params());
    expectRejected(
      table,
      clock.now(),
      () => table.acquire(clock.now(), 'b', 'x', params({ wait: true, waitTimeoutMs: 0 })),
      'WAIT_TIMEOUT',
    );
  });

  it('grants a free name to a waiting acquire with waitTimeoutMs 0', () => {
    const { table, clock } = tableWith(['a']);
    expect(table.acquire(clock.now(), 'a', 'x', params({ wait: true, waitTimeoutMs: 0 })).kind).toBe(
      'granted',
    );
  });

  it('refuses every call from an unknown session with SESSION_EXPIRED', () => {
    const { table, clock } = tableWith(['a']);
    const now = clock.now();
    expectRejected(table, now, () => table.acquire(now, 'ghost', 'x', params()), 'SESSION_EXPIRED');
    expectRejected(table, now, () => table.closeSession(now, 'ghost'), 'SESSION_EXPIRED');
    expectRejected(table, now, () => table.cancelWait(now, 'ghost', 'x'), 'SESSION_EXPIRED');
  });
});

describe('LeaseTable wait timeouts and cancellation', () => {
  it('ends a wait with WAIT_TIMEOUT exactly at its timeout and keeps later waiters in order', () => {
    const { table, clock } = tableWith(['a', 'b', 'c']);
    const holder = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    const pb = params({ wait: true, waitTimeoutMs: 500 });
    table.acquire(clock.now(), 'b', 'x', pb);
    const pc = params({ wait: true });
    expect(table.acquire(clock.now(), 'c', 'x', pc)).toEqual({ kind: 'queued', position: 2 });
    table.drain();

    table.advance(clock.step(499));
    expect(table.drain()).toEqual([]);
    expect(table.get(clock.now(), 'x')?.waiters).toBe(2);

    table.advance(clock.step(1));
    expect(table.drain()).toEqual([
      { type: 'waitEnded', sessionId: 'b', waitId: pb.waitId, code: 'WAIT_TIMEOUT' },
    ]);
    expect(table.get(clock.now(), 'x')?.waiters).toBe(1);

    table.release(clock.now(), 'a', 'x', holder.token);
    expect(describeOutputs(table.drain()).slice(1)).toEqual([
      `acquired x c#${holder.token + 1} (release)`,
      `waitGranted c wait ${pc.waitId} #${holder.token + 1}`,
    ]);
  });

  it('does not time out a wait that was granted before its timeout', () => {
    const { table, clock } = tableWith(['a', 'b']);
    const holder = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    table.acquire(clock.now(), 'b', 'x', params({ wait: true, waitTimeoutMs: 500 }));
    table.release(clock.step(100), 'a', 'x', holder.token);
    table.drain();
    table.advance(clock.step(1_000));
    expect(table.drain()).toEqual([]);
    expect(table.get(clock.now(), 'x')?.sessionId).toBe('b');
  });

  it('cancels one wait with CANCELLED and skips it when the lease is released', () => {
    const { table, clock } = tableWith(['a', 'b', 'c']);
    const holder = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    const pb = params({ wait: true });
    table.acquire(clock.now(), 'b', 'x', pb);
    table.acquire(clock.now(), 'c', 'x', params({ wait: true }));
    table.drain();
    table.cancelWait(clock.now(), 'b', 'x');
    expect(table.drain()).toEqual([
      { type: 'waitEnded', sessionId: 'b', waitId: pb.waitId, code: 'CANCELLED' },
    ]);
    expect(table.get(clock.now(), 'x')?.waiters).toBe(1);
    table.release(clock.now(), 'a', 'x', holder.token);
    expect(table.get(clock.now(), 'x')?.sessionId).toBe('c');
  });

  it('answers NOT_FOUND when cancelling a wait the session does not have', () => {
    const { table, clock } = tableWith(['a', 'b']);
    table.acquire(clock.now(), 'a', 'x', params());
    const now = clock.now();
    expectRejected(table, now, () => table.cancelWait(now, 'b', 'x'), 'NOT_FOUND');
    // Holding the lease is not waiting for it.
    expectRejected(table, now, () => table.cancelWait(now, 'a', 'x'), 'NOT_FOUND');
  });

  it('lets a session wait again for a name after its wait ended', () => {
    const { table, clock } = tableWith(['a', 'b']);
    table.acquire(clock.now(), 'a', 'x', params());
    table.acquire(clock.now(), 'b', 'x', params({ wait: true, waitTimeoutMs: 10 }));
    table.advance(clock.step(10));
    expect(table.acquire(clock.now(), 'b', 'x', params({ wait: true }))).toEqual({
      kind: 'queued',
      position: 1,
    });
  });

  it('detaching (cancelWaits) ends only the waits of that session and keeps its leases', () => {
    const { table, clock } = tableWith(['a', 'b', 'c']);
    const ax = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    table.acquire(clock.now(), 'c', 'y', params());
    table.acquire(clock.now(), 'c', 'z', params());
    const p1 = params({ wait: true });
    const p2 = params({ wait: true });
    table.acquire(clock.now(), 'a', 'y', p1);
    table.acquire(clock.now(), 'a', 'z', p2);
    const pb = params({ wait: true });
    table.acquire(clock.now(), 'b', 'y', pb);
    table.drain();

    table.cancelWaits(clock.now(), 'a');
    const out = table.drain();
    expect(out).toHaveLength(2);
    expect(out).toEqual(
      expect.arrayContaining([
        { type: 'waitEnded', sessionId: 'a', waitId: p1.waitId, code: 'CANCELLED' },
        { type: 'waitEnded', sessionId: 'a', waitId: p2.waitId, code: 'CANCELLED' },
      ]),
    );
    expect(table.get(clock.now(), 'x')?.token).toBe(ax.token);
    expect(table.get(clock.now(), 'y')?.waiters).toBe(1);
    expect(table.get(clock.now(), 'z')?.waiters).toBe(0);
    expect(table.sessionDeadline('a')).toBeDefined();
    // Unknown sessions are a no-op, not an error.
    table.cancelWaits(clock.now(), 'ghost');
    expect(table.drain()).toEqual([]);
  });
});

describe('LeaseTable holder checks', () => {
  type Op = 'release' | 'renew' | 'setMeta';
  const ops: Op[] = ['release', 'renew', 'setMeta'];

  /** a held x twice (old token, then current), b holds y; nobody holds z. */
  function setup() {
    const { table, clock } = tableWith(['a', 'b']);
    const old = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    table.release(clock.now(), 'a', 'x', old.token);
    const cur = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    table.acquire(clock.now(), 'b', 'y', params());
    table.drain();
    return { table, clock, old, cur };
  }

  function call(table: LeaseTable, clock: FakeClock, op: Op, sid: string, name: string, token: number) {
    const now = clock.now();
    switch (op) {
      case 'release':
        return table.release(now, sid, name, token);
      case 'renew':
        return table.renew(now, sid, name, token);
      case 'setMeta':
        return table.setMeta(now, sid, name, token, new Uint8Array([7]));
    }
  }

  const cases = [
    { label: 'another session', sid: 'b', token: (t: number) => t, code: 'NOT_HOLDER' },
    { label: 'a session that holds nothing of that name', sid: 'b', token: () => 1, code: 'NOT_HOLDER' },
    { label: 'the holder with an older token', sid: 'a', token: (t: number) => t - 1, code: 'STALE_TOKEN' },
    {
      label: 'the holder with a token from the future',
      sid: 'a',
      token: (t: number) => t + 1,
      code: 'STALE_TOKEN',
    },
    { label: 'an unknown session', sid: 'ghost', token: (t: number) => t, code: 'SESSION_EXPIRED' },
  ] as const;

  for (const op of ops) {
    it.each(cases)(`${op} by $label fails with $code and changes nothing`, ({ sid, token, code }) => {
      const { table, clock, cur } = setup();
      expectRejected(table, clock.now(), () => call(table, clock, op, sid, 'x', token(cur.token)), code);
    });

    it(`${op} of a name nobody holds fails with NOT_HOLDER`, () => {
      const { table, clock, cur } = setup();
      expectRejected(table, clock.now(), () => call(table, clock, op, 'a', 'z', cur.token), 'NOT_HOLDER');
    });
  }

  it('releases with the current token: a released event with reason release, the name is free', () => {
    const { table, clock, cur } = setup();
    table.release(clock.now(), 'a', 'x', cur.token);
    const events = eventsOf(table.drain());
    expect(events).toEqual([
      {
        kind: 'released',
        revision: cur.revision + 2, // y was acquired after x
        name: 'x',
        owner: 'owner-a',
        sessionId: 'a',
        token: cur.token,
        at: clock.wall,
        reason: 'release',
      },
    ]);
    expect(table.get(clock.now(), 'x')).toBeNull();
    expect(table.heldBy('a')).toEqual([]);
  });

  it('renews with the current token without an event', () => {
    const { table, clock, cur } = setup();
    const info = table.renew(clock.step(100), 'a', 'x', cur.token);
    expect(info).toMatchObject({ token: cur.token, revision: cur.revision });
    expect(info.ttlMs).toBeUndefined();
    expect(table.drain()).toEqual([]);
  });

  it('sets and clears meta with an updated event and a new revision each time, same token', () => {
    const { table, clock, cur } = setup();
    const meta = new Uint8Array([4, 2]);
    const rev0 = table.currentRevision;
    const set = table.setMeta(clock.now(), 'a', 'x', cur.token, meta);
    expect(set).toMatchObject({ token: cur.token, revision: rev0 + 1, meta });
    const cleared = table.setMeta(clock.now(), 'a', 'x', cur.token, null);
    expect(cleared.revision).toBe(rev0 + 2);
    expect(cleared.meta).toBeUndefined();
    const events = eventsOf(table.drain());
    expect(events.map((e) => [e.kind, e.revision, e.token, e.meta])).toEqual([
      ['updated', rev0 + 1, cur.token, meta],
      ['updated', rev0 + 2, cur.token, undefined],
    ]);
    expect(table.lastIssuedToken).toBe(table.get(clock.now(), 'y')?.token);
  });
});

describe('LeaseTable sessions', () => {
  it('expires a session exactly at last heard + ttlMs, not a millisecond before', () => {
    const { table, clock } = tableWith(['a']);
    const opened = clock.mono;
    expect(table.sessionDeadline('a')).toBe(opened + SESSION_TTL_MS);
    table.advance(clock.step(SESSION_TTL_MS - 1));
    expect(table.drain()).toEqual([]);
    expect(table.session('a')).toBeDefined();
    table.advance(clock.step(1));
    expect(table.drain()).toEqual([{ type: 'sessionEnded', sessionId: 'a', reason: 'expired' }]);
    expect(table.session('a')).toBeUndefined();
    expect(table.touch(clock.now(), 'a')).toBe(false);
  });

  it('touch moves the deadline to now + ttlMs', () => {
    const { table, clock } = tableWith(['a']);
    expect(table.touch(clock.step(6_000), 'a')).toBe(true);
    expect(table.sessionDeadline('a')).toBe(clock.mono + SESSION_TTL_MS);
    table.advance(clock.step(SESSION_TTL_MS - 1));
    expect(table.session('a')).toBeDefined();
    table.advance(clock.step(1));
    expect(table.session('a')).toBeUndefined();
  });

  it('expires a session that is touched too late, at its old deadline', () => {
    const { table, clock } = tableWith(['a']);
    expect(table.touch(clock.step(SESSION_TTL_MS), 'a')).toBe(false);
    expect(table.drain()).toEqual([{ type: 'sessionEnded', sessionId: 'a', reason: 'expired' }]);
  });

  it('refuses to open a session id that is in use, changing nothing', () => {
    const { table, clock } = tableWith(['a']);
    const now = clock.now();
    expectRejected(table, now, () => table.openSession(now, sessionRecord('a', 99)), 'BAD_REQUEST');
  });

  it('announces an opened session as a durable output', () => {
    const table = new LeaseTable();
    const clock = new FakeClock();
    const rec = sessionRecord('a');
    table.openSession(clock.now(), rec);
    expect(table.drain()).toEqual([{ type: 'sessionOpened', session: rec }]);
    expect(table.session('a')).toEqual(rec);
    expect(table.sessionCount).toBe(1);
  });

  it('on expiry ends waits, expires each lease, hands it to the next waiter, then ends the session', () => {
    const table = new LeaseTable();
    const clock = new FakeClock();
    table.openSession(clock.now(), sessionRecord('a', 5_000));
    table.openSession(clock.now(), sessionRecord('b', 60_000));
    table.openSession(clock.now(), sessionRecord('c', 60_000));
    const ax = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    const ay = grantedLease(table.acquire(clock.now(), 'a', 'y', params()));
    table.acquire(clock.now(), 'c', 'z', params());
    const az = params({ wait: true });
    table.acquire(clock.now(), 'a', 'z', az);
    const bx = params({ wait: true });
    table.acquire(clock.now(), 'b', 'x', bx);
    table.drain();
    const rev0 = table.currentRevision;

    table.advance(clock.step(5_000));
    const out = table.drain();
    const lines = describeOutputs(out);
    expect(lines[0]).toBe(`waitEnded a wait ${az.waitId} (SESSION_EXPIRED)`);
    expect(lines.at(-1)).toBe('sessionEnded a (expired)');
    const newToken = table.lastIssuedToken;
    expect(new Set(lines.slice(1, -1))).toEqual(
      new Set([
        `expired x a#${ax.token} (session-expired)`,
        `acquired x b#${newToken} (session-expired)`,
        `waitGranted b wait ${bx.waitId} #${newToken}`,
        `expired y a#${ay.token} (session-expired)`,
      ]),
    );
    const events = eventsOf(out);
    expectContiguous(events, rev0 + 1);
    const xi = events.findIndex((e) => e.name === 'x' && e.kind === 'expired');
    const acquired = events[xi + 1];
    expect(acquired).toMatchObject({
      kind: 'acquired',
      name: 'x',
      sessionId: 'b',
      owner: 'owner-b',
      previous: { owner: 'owner-a', sessionId: 'a', token: ax.token },
      reason: 'session-expired',
    });
    expect(table.list(clock.now(), '').map((l) => [l.name, l.sessionId])).toEqual([
      ['x', 'b'],
      ['z', 'c'],
    ]);
    expect(table.get(clock.now(), 'z')?.waiters).toBe(0);
  });

  it('closing a session releases its leases with reason session-closed and hands them on at once', () => {
    const { table, clock } = tableWith(['a', 'b'], { lockDelayMs: 5_000 });
    const ax = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    const ay = grantedLease(table.acquire(clock.now(), 'a', 'y', params()));
    table.acquire(clock.now(), 'b', 'q', params());
    const aq = params({ wait: true });
    table.acquire(clock.now(), 'a', 'q', aq);
    const bx = params({ wait: true });
    table.acquire(clock.now(), 'b', 'x', bx);
    table.drain();
    const rev0 = table.currentRevision;

    table.closeSession(clock.now(), 'a');
    const out = table.drain();
    const lines = describeOutputs(out);
    const newToken = table.lastIssuedToken;
    expect(lines[0]).toBe(`waitEnded a wait ${aq.waitId} (CANCELLED)`);
    expect(lines.at(-1)).toBe('sessionEnded a (closed)');
    expect(new Set(lines.slice(1, -1))).toEqual(
      new Set([
        `released x a#${ax.token} (session-closed)`,
        `acquired x b#${newToken} (session-closed)`,
        `waitGranted b wait ${bx.waitId} #${newToken}`,
        `released y a#${ay.token} (session-closed)`,
      ]),
    );
    expectContiguous(eventsOf(out), rev0 + 1);
    // A clean close is not an expiry: no lock-delay on y.
    expect(table.acquire(clock.now(), 'b', 'y', params()).kind).toBe('granted');
    expect(table.session('a')).toBeUndefined();
    const now = clock.now();
    expectRejected(table, now, () => table.closeSession(now, 'a'), 'SESSION_EXPIRED');
  });

  it('processes a deadline that passed before the call before serving the call', () => {
    const { table, clock } = tableWith(['a', 'b']);
    table.acquire(clock.now(), 'a', 'x', params());
    table.touch(clock.step(5_000), 'b');
    table.drain();
    // a's deadline has passed: b's acquire must see the name free, not held by a dead session.
    const r = table.acquire(clock.step(5_000), 'b', 'x', params());
    expect(r.kind).toBe('granted');
    expect(describeOutputs(table.drain()).slice(0, 2)).toEqual([
      'expired x a#1 (session-expired)',
      'sessionEnded a (expired)',
    ]);
  });
});

describe('LeaseTable lease TTL', () => {
  const bounds = { minLeaseTtlMs: 500, maxLeaseTtlMs: 60_000 };

  it.each([
    { requested: 1, expected: 500 },
    { requested: 499, expected: 500 },
    { requested: 500, expected: 500 },
    { requested: 2_000, expected: 2_000 },
    { requested: 60_000, expected: 60_000 },
    { requested: 10_000_000, expected: 60_000 },
  ])('clamps a requested ttlMs of $requested to $expected', ({ requested, expected }) => {
    const { table, clock } = tableWith(['a'], bounds, 120_000);
    const lease = grantedLease(table.acquire(clock.now(), 'a', 'x', params({ ttlMs: requested })));
    expect(lease.ttlMs).toBe(expected);
    expect(lease.expiresInMs).toBe(expected);
    expect(eventsOf(table.drain())[0]?.ttlMs).toBe(expected);
  });

  it('expires a lease whose holder stops renewing, while the session lives on', () => {
    const { table, clock } = tableWith(['a'], bounds);
    const lease = grantedLease(table.acquire(clock.now(), 'a', 'x', params({ ttlMs: 2_000 })));
    table.drain();
    // Heartbeats keep the session alive but do not renew the lease.
    table.touch(clock.step(1_999), 'a');
    expect(table.drain()).toEqual([]);
    expect(table.get(clock.now(), 'x')?.expiresInMs).toBe(1);
    table.touch(clock.step(1), 'a');
    expect(describeOutputs(table.drain())).toEqual([
      `leaseLost x a#${lease.token} (lease-ttl)`,
      `expired x a#${lease.token} (lease-ttl)`,
    ]);
    expect(table.get(clock.now(), 'x')).toBeNull();
    expect(table.session('a')).toBeDefined();
    expect(table.heldBy('a')).toEqual([]);
  });

  it('renew restarts the lease TTL from now', () => {
    const { table, clock } = tableWith(['a'], bounds);
    const lease = grantedLease(table.acquire(clock.now(), 'a', 'x', params({ ttlMs: 2_000 })));
    const renewed = table.renew(clock.step(1_500), 'a', 'x', lease.token);
    expect(renewed).toMatchObject({ token: lease.token, ttlMs: 2_000, expiresInMs: 2_000 });
    table.advance(clock.step(1_999));
    expect(table.get(clock.now(), 'x')?.token).toBe(lease.token);
    table.advance(clock.step(1));
    expect(table.get(clock.now(), 'x')).toBeNull();
  });

  it.each([
    { label: 'the lease TTL when it is shorter', ttlMs: 3_000, expected: 3_000 },
    { label: 'the session deadline when it is sooner', ttlMs: 30_000, expected: SESSION_TTL_MS },
  ])('reports expiresInMs as $label', ({ ttlMs, expected }) => {
    const { table, clock } = tableWith(['a'], bounds);
    table.acquire(clock.now(), 'a', 'x', params({ ttlMs }));
    expect(table.get(clock.now(), 'x')?.expiresInMs).toBe(expected);
    expect(table.get(clock.step(700), 'x')?.expiresInMs).toBe(expected - 700);
  });

  it('gives a waiter its requested TTL counted from the moment it is granted', () => {
    const { table, clock } = tableWith(['a', 'b'], bounds);
    const holder = grantedLease(table.acquire(clock.now(), 'a', 'x', params()));
    table.acquire(clock.now(), 'b', 'x', params({ wait: true, ttlMs: 1_000 }));
    table.release(clock.step(5_000), 'a', 'x', holder.token);
    const granted = table.drain().find((o) => o.type === 'waitGranted');
    expect(granted).toMatchObject({ sessionId: 'b', lease: { ttlMs: 1_000, expiresInMs: 1_000 } });
    table.advance(clock.step(999));
    expect(table.get(clock.now(), 'x')?.sessionId).toBe('b');
    table.advance(clock.step(1));
    expect(table.get(clock.now(), 'x')).toBeNull();
  });

  it('hands an expired TTL lease to the next waiter with reason lease-ttl', () => {
    const { table, clock } = tableWith(['a', 'b'], bounds);
    const holder = grantedLease(table.acquire(clock.now(), 'a', 'x', params({ ttlMs: 1_000 })));
    table.acquire(clock.now(), 'b', 'x', params({ wait: true }));
    table.drain();
    table.advance(clock.step(1_000));
    const events = eventsOf(table.drain());
    expect(events.map((e) => [e.kind, e.sessionId, e.reason])).toEqual([
      ['expired', 'a', 'lease-ttl'],
      ['acquired', 'b', 'lease-ttl'],
    ]);
    expect(events[1]?.previous).toEqual({ owner: 'owner-a', sessionId: 'a', token: holder.token });
    expect(events[1]?.revision).toBe((events[0]?.revision ?? 0) + 1);
  });
});

describe('LeaseTable lock-delay', () => {
  const LOCK_DELAY_MS = 1_000;
  const expiries = [
    {
      cause: 'a session expiry',
      reason: 'session-expired',
      setup: (table: LeaseTable, clock: FakeClock) => {
        table.acquire(clock.now(), 'a', 'x', params());
        return SESSION_TTL_MS;
      },
    },
    {
      cause: 'a lease TTL expiry',
      reason: 'lease-ttl',
      setup: (table: LeaseTable, clock: FakeClock) => {
        table.acquire(clock.now(), 'a', 'x', params({ ttlMs: 2_000 }));
        return 2_000;
      },
    },
  ] as const;

  function start(setup: (table: LeaseTable, clock: FakeClock) => number) {
    const table = new LeaseTable({ lockDelayMs: LOCK_DELAY_MS, minLeaseTtlMs: 100 });
    const clock = new FakeClock();
    table.openSession(clock.now(), sessionRecord('a'));
    table.openSession(clock.now(), sessionRecord('b', 60_000));
    table.openSession(clock.now(), sessionRecord('c', 60_000));
    const expiresAfter = setup(table, clock);
    table.drain();
    return { table, clock, expiresAfter };
  }

  it.each(expiries)(
    'after $cause, answers a non-waiting acquire with lockDelay until the delay ends',
    ({ setup }) => {
      const { table, clock, expiresAfter } = start(setup);
      table.advance(clock.step(expiresAfter));
      expect(table.get(clock.now(), 'x')).toBeNull();
      table.drain();
      expect(table.acquire(clock.now(), 'b', 'x', params())).toEqual({
        kind: 'lockDelay',
        retryAfterMs: LOCK_DELAY_MS,
      });
      expect(table.acquire(clock.step(400), 'b', 'x', params())).toEqual({
        kind: 'lockDelay',
        retryAfterMs: LOCK_DELAY_MS - 400,
      });
      expect(table.acquire(clock.step(599), 'b', 'x', params())).toEqual({
        kind: 'lockDelay',
        retryAfterMs: 1,
      });
      expect(table.drain()).toEqual([]);
      expect(table.acquire(clock.step(1), 'b', 'x', params()).kind).toBe('granted');
    },
  );

  it.each(expiries)(
    'after $cause, grants queued waiters in order only when the delay ends',
    ({ setup, reason }) => {
      const { table, clock, expiresAfter } = start(setup);
      const token = table.lastIssuedToken;
      // b queues before the expiry, c during the lock-delay.
      const pb = params({ wait: true });
      expect(table.acquire(clock.now(), 'b', 'x', pb)).toEqual({ kind: 'queued', position: 1 });
      table.advance(clock.step(expiresAfter));
      expect(table.acquire(clock.now(), 'c', 'x', params({ wait: true }))).toEqual({
        kind: 'queued',
        position: 2,
      });
      expect(eventsOf(table.drain()).map((e) => e.kind)).toEqual(['expired']);
      table.advance(clock.step(LOCK_DELAY_MS - 1));
      expect(table.drain()).toEqual([]);
      table.advance(clock.step(1));
      const out = table.drain();
      expect(describeOutputs(out)).toEqual([
        `acquired x b#${token + 1} (${reason})`,
        `waitGranted b wait ${pb.waitId} #${token + 1}`,
      ]);
      expect(eventsOf(out)[0]?.previous).toEqual({ owner: 'owner-a', sessionId: 'a', token });
      expect(table.get(clock.now(), 'x')?.waiters).toBe(1);
    },
  );

  it.each([
    {
      label: 'a release',
      end: (table: LeaseTable, clock: FakeClock, token: number) =>
        table.release(clock.now(), 'a', 'x', token),
    },
    {
      label: 'a session close',
      end: (table: LeaseTable, clock: FakeClock) => table.closeSession(clock.now(), 'a'),
    },
  ])('does not apply after $label: the next acquire is granted at once', ({ end }) => {
    const { table, clock } = start((t, c) => {
      t.acquire(c.now(), 'a', 'x', params());
      return 0;
    });
    end(table, clock, table.lastIssuedToken);
    expect(table.acquire(clock.now(), 'b', 'x', params()).kind).toBe('granted');
  });

  it('hands an expired lease on at once when lockDelayMs is 0', () => {
    const { table, clock } = tableWith(['a', 'b']);
    table.acquire(clock.now(), 'a', 'x', params());
    table.touch(clock.step(1), 'b');
    table.advance(clock.step(SESSION_TTL_MS - 1));
    expect(table.get(clock.now(), 'x')).toBeNull();
    expect(table.acquire(clock.now(), 'b', 'x', params()).kind).toBe('granted');
  });
});

describe('LeaseTable limits', () => {
  it('refuses a lease beyond maxLeasesPerSession with LIMIT_EXCEEDED and changes nothing', () => {
    const { table, clock } = tableWith(['a'], { maxLeasesPerSession: 2 });
    table.acquire(clock.now(), 'a', 'x', params());
    table.acquire(clock.now(), 'a', 'y', params());
    const now = clock.now();
    const err = expectRejected(table, now, () => table.acquire(now, 'a', 'z', params()), 'LIMIT_EXCEEDED');
    expect(err.details).toEqual({ limit: 'maxLeasesPerSession', max: 2 });
    // Re-acquiring a held lease is not a new lease.
    expect(table.acquire(now, 'a', 'x', params()).kind).toBe('granted');
    table.release(now, 'a', 'y', table.get(now, 'y')?.token ?? -1);
    expect(table.acquire(now, 'a', 'z', params()).kind).toBe('granted');
  });

  it('refuses a wait beyond maxWaitsPerSession with LIMIT_EXCEEDED and changes nothing', () => {
    const { table, clock } = tableWith(['a', 'b'], { maxWaitsPerSession: 2 });
    for (const n of ['x', 'y', 'z']) table.acquire(clock.now(), 'a', n, params());
    table.acquire(clock.now(), 'b', 'x', params({ wait: true }));
    table.acquire(clock.now(), 'b', 'y', params({ wait: true }));
    const now = clock.now();
    const err = expectRejected(
      table,
      now,
      () => table.acquire(now, 'b', 'z', params({ wait: true })),
      'LIMIT_EXCEEDED',
    );
    expect(err.details).toEqual({ limit: 'maxWaitsPerSession', max: 2 });
    // The limit is on waits, not on probes.
    expect(table.acquire(now, 'b', 'z', params()).kind).toBe('held');
  });

  it('never lets a session hold more than maxLeasesPerSession leases, even through granted waits', () => {
    const { table, clock } = tableWith(['a', 'b'], { maxLeasesPerSession: 2, maxWaitsPerSession: 5 });
    const bx = grantedLease(table.acquire(clock.now(), 'b', 'x', params()));
    table.acquire(clock.now(), 'b', 'w', params());
    table.acquire(clock.now(), 'a', 'y', params());
    expect(table.acquire(clock.now(), 'a', 'x', params({ wait: true })).kind).toBe('queued');
    // One held plus one queued fill the quota: neither another lease nor another wait fits.
    const now = clock.now();
    expectRejected(table, now, () => table.acquire(now, 'a', 'z', params()), 'LIMIT_EXCEEDED');
    expectRejected(table, now, () => table.acquire(now, 'a', 'w', params({ wait: true })), 'LIMIT_EXCEEDED');
    table.release(now, 'b', 'x', bx.token);
    expect(table.heldBy('a').map((l) => l.name)).toEqual(['y', 'x']);
  });
});

describe('LeaseTable tokens, revisions and history', () => {
  it('issues strictly increasing tokens and contiguous revisions across grants, hand-overs and updates', () => {
    const { table, clock } = tableWith(['a', 'b', 'c']);
    let t = grantedLease(table.acquire(clock.now(), 'a', 'x', params())).token;
    table.acquire(clock.now(), 'b', 'x', params({ wait: true }));
    table.acquire(clock.now(), 'c', 'x', params({ wait: true }));
    table.setMeta(clock.now(), 'a', 'x', t, new Uint8Array([1]));
    table.release(clock.now(), 'a', 'x', t);
    t = table.get(clock.now(), 'x')?.token ?? -1;
    table.release(clock.now(), 'b', 'x', t);
    t = table.get(clock.now(), 'x')?.token ?? -1;
    table.release(clock.now(), 'c', 'x', t);
    t = grantedLease(table.acquire(clock.now(), 'c', 'x', params())).token;
    table.acquire(clock.now(), 'a', 'y', params());
    const events = eventsOf(table.drain());
    expectContiguous(events, 1);
    expect(table.currentRevision).toBe(events.length);
    const tokens = events.filter((e) => e.kind === 'acquired').map((e) => e.token);
    expect(tokens).toHaveLength(5);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
    expect(table.lastIssuedToken).toBe(tokens.at(-1));
  });

  it('replays revisions r+1..current from the history, [] at current, COMPACTED beyond either end', () => {
    const limit = 5;
    const { table, clock } = tableWith(['a'], { historyLimit: limit });
    const seen: LeaseEvent[] = [];
    for (let i = 0; i < 6; i++) {
      const lease = grantedLease(table.acquire(clock.now(), 'a', `n${i}`, params()));
      table.release(clock.now(), 'a', `n${i}`, lease.token);
      seen.push(...eventsOf(table.drain()));
    }
    const current = table.currentRevision;
    expect(current).toBe(seen.length);
    const oldest = current - limit + 1;
    expect(table.oldestHistoryRevision).toBe(oldest);
    for (let r = oldest - 1; r <= current; r++) expect(table.eventsSince(r)).toEqual(seen.slice(r));
    expect(table.eventsSince(current)).toEqual([]);
    expect(table.eventsSince(oldest - 2)).toBeNull();
    expect(table.eventsSince(0)).toBeNull();
    expect(table.eventsSince(current + 1)).toBeNull();
  });

  it('replays everything from revision 0 while the history is not full', () => {
    const { table, clock } = tableWith(['a']);
    table.acquire(clock.now(), 'a', 'x', params());
    table.acquire(clock.now(), 'a', 'y', params());
    expect(table.eventsSince(0)).toEqual(eventsOf(table.drain()));
  });
});

describe('LeaseTable get and list', () => {
  it('lists held leases sorted by name, filtered by prefix, with waiters, TTLs and meta', () => {
    const { table, clock } = tableWith(['a', 'b', 'c'], { minLeaseTtlMs: 100 });
    const meta = new Uint8Array([5]);
    table.acquire(clock.now(), 'a', 'jobs/b', params({ ttlMs: 3_000, meta }));
    table.acquire(clock.now(), 'b', 'jobs/a', params());
    table.acquire(clock.now(), 'c', 'other', params());
    table.acquire(clock.now(), 'b', 'jobs/b', params({ wait: true }));
    table.acquire(clock.now(), 'c', 'jobs/b', params({ wait: true }));
    const grantedAt = clock.wall;
    const now = clock.step(1_000);
    const all = table.list(now, '');
    expect(all.map((l) => l.name)).toEqual(['jobs/a', 'jobs/b', 'other']);
    expect(table.list(now, 'jobs/').map((l) => l.name)).toEqual(['jobs/a', 'jobs/b']);
    expect(table.list(now, 'nothing')).toEqual([]);
    expect(table.get(now, 'jobs/b')).toEqual({
      name: 'jobs/b',
      token: 1,
      owner: 'owner-a',
      sessionId: 'a',
      acquiredAt: grantedAt,
      ttlMs: 3_000,
      sessionTtlMs: SESSION_TTL_MS,
      expiresInMs: 2_000,
      meta,
      waiters: 2,
      revision: 1,
    });
    expect(all[1]).toEqual(table.get(now, 'jobs/b'));
    expect(table.get(now, 'jobs/a')).toMatchObject({ waiters: 0, expiresInMs: SESSION_TTL_MS - 1_000 });
    expect(table.get(now, 'jobs/a')?.ttlMs).toBeUndefined();
    expect(table.get(now, 'jobs')).toBeNull();
  });

  it('does not report a lease whose holder is past its deadline', () => {
    const { table, clock } = tableWith(['a']);
    table.acquire(clock.now(), 'a', 'x', params());
    table.drain();
    const late = clock.step(SESSION_TTL_MS);
    expect(table.get(late, 'x')).toBeNull();
    expect(table.list(late, '')).toEqual([]);
    // The expiry was processed, not hidden: its outputs are in the outbox.
    expect(describeOutputs(table.drain())).toEqual([
      'expired x a#1 (session-expired)',
      'sessionEnded a (expired)',
    ]);
  });
});

describe('LeaseTable names are just names', () => {
  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', 'valueOf'])(
    'handles %s as a lease name and a session id',
    (name) => {
      const { table, clock } = tableWith([name, 'b']);
      const lease = grantedLease(table.acquire(clock.now(), name, name, params()));
      expect(lease).toMatchObject({ name, sessionId: name });
      expect(table.acquire(clock.now(), 'b', name, params({ wait: true }))).toEqual({
        kind: 'queued',
        position: 1,
      });
      expect(table.get(clock.now(), name)).toMatchObject({ name, sessionId: name, waiters: 1 });
      expect(table.get(clock.now(), 'b')).toBeNull();
      expect(table.list(clock.now(), '').map((l) => l.name)).toEqual([name]);
      const snap = table.snapshot();
      const restored = new LeaseTable();
      restored.restore(clock.now(), snap);
      expect(restored.get(clock.now(), name)).toMatchObject({ name, sessionId: name, token: lease.token });
      table.release(clock.now(), name, name, lease.token);
      expect(table.get(clock.now(), name)?.sessionId).toBe('b');
      table.closeSession(clock.now(), name);
      expect(table.session(name)).toBeUndefined();
    },
  );

  it('does not mistake a name for an inherited property when nothing holds it', () => {
    const { table, clock } = tableWith(['a']);
    for (const n of ['__proto__', 'constructor', 'toString']) {
      expect(table.get(clock.now(), n)).toBeNull();
      expect(table.acquire(clock.now(), 'a', n, params()).kind).toBe('granted');
    }
    expect(table.session('constructor')).toBeUndefined();
    expect(table.touch(clock.now(), '__proto__')).toBe(false);
  });
});

describe('LeaseTable snapshot, restore and replay', () => {
  /** a (TTL 4s) holds x (meta updated, b waits) and z; b holds y with a lease TTL; "gone" came and went. */
  function busyTable() {
    const table = new LeaseTable({ lockDelayMs: 500, minLeaseTtlMs: 100 });
    const clock = new FakeClock();
    const durable: ChangeRecord[] = [];
    const keep = (out: readonly Output[]) => {
      for (const o of out) {
        if (o.type === 'event' || o.type === 'sessionOpened' || o.type === 'sessionEnded') durable.push(o);
      }
    };
    table.openSession(clock.now(), sessionRecord('a', 4_000));
    table.openSession(clock.now(), sessionRecord('b', 60_000));
    const x = grantedLease(table.acquire(clock.now(), 'a', 'x', params({ meta: new Uint8Array([1]) })));
    table.acquire(clock.now(), 'b', 'y', params({ ttlMs: 30_000 }));
    table.acquire(clock.now(), 'b', 'x', params({ wait: true }));
    table.setMeta(clock.now(), 'a', 'x', x.token, new Uint8Array([2]));
    table.acquire(clock.now(), 'a', 'gone', params());
    table.release(clock.now(), 'a', 'gone', table.lastIssuedToken);
    table.acquire(clock.now(), 'a', 'z', params());
    keep(table.drain());
    return { table, clock, durable, keep };
  }

  const durableView = (l: LeaseInfo) => [l.name, l.sessionId, l.owner, l.token, l.revision, l.ttlMs, l.meta];

  it('restores leases, tokens, revision and history, giving every session now + its TTL', () => {
    const { table, clock } = busyTable();
    const snap = table.snapshot();
    const later = clock.step(3_000);
    const restored = new LeaseTable(table.options);
    restored.restore(later, snap);
    expect(restored.list(later, '').map(durableView)).toEqual(table.list(later, '').map(durableView));
    expect(restored.currentRevision).toBe(table.currentRevision);
    expect(restored.lastIssuedToken).toBe(table.lastIssuedToken);
    expect(restored.eventsSince(0)).toEqual(table.eventsSince(0));
    expect(restored.sessionDeadline('a')).toBe(later.mono + 4_000);
    expect(restored.sessionDeadline('b')).toBe(later.mono + 60_000);
    // The lease TTL restarts too.
    expect(restored.get(later, 'y')?.expiresInMs).toBe(30_000);
    expect(restored.drain()).toEqual([]);
    // The next grant continues the token sequence.
    const next = grantedLease(restored.acquire(later, 'b', 'new', params()));
    expect(next.token).toBe(table.lastIssuedToken + 1);
  });

  it('replays the durable outputs with apply into the same state, with fresh deadlines', () => {
    const { table, clock, durable, keep } = busyTable();
    // Expire a: x goes to the waiter b after the lock-delay, z expires into a lock-delay.
    table.touch(clock.step(4_000), 'b');
    table.advance(clock.step(500));
    keep(table.drain());
    expect(table.get(clock.now(), 'x')?.sessionId).toBe('b');
    const replayed = new LeaseTable(table.options);
    const at = clock.step(100);
    for (const rec of durable) replayed.apply(at, rec);
    expect(replayed.drain()).toEqual([]);
    expect(replayed.list(at, '').map(durableView)).toEqual(table.list(at, '').map(durableView));
    expect(replayed.currentRevision).toBe(table.currentRevision);
    expect(replayed.lastIssuedToken).toBe(table.lastIssuedToken);
    expect(replayed.eventsSince(0)).toEqual(table.eventsSince(0));
    expect(replayed.session('a')).toBeUndefined();
    expect(replayed.sessionDeadline('b')).toBe(at.mono + 60_000);
  });

  it('replay holds back a name whose last event is an expiry for a full lock-delay from recovery', () => {
    // The journal does not record when a lock-delay ended, so replay restarts it (the safe side),
    // even though the live table had already let it lapse.
    const { table, clock, durable, keep } = busyTable();
    table.touch(clock.step(2_000), 'b');
    table.advance(clock.step(2_000)); // a expires: z into lock-delay, x to b after the delay
    table.advance(clock.step(5_000));
    keep(table.drain());
    expect(table.acquire(clock.now(), 'b', 'z', params()).kind).toBe('granted');
    const replayed = new LeaseTable(table.options);
    for (const rec of durable) replayed.apply(clock.now(), rec);
    expect(replayed.acquire(clock.now(), 'b', 'z', params())).toEqual({
      kind: 'lockDelay',
      retryAfterMs: 500,
    });
    expect(replayed.acquire(clock.step(500), 'b', 'z', params()).kind).toBe('granted');
  });

  it('keeps a name that was in lock-delay at snapshot time delayed for a full lock-delay after restore', () => {
    const { table, clock } = busyTable();
    table.touch(clock.step(2_000), 'b');
    table.advance(clock.step(2_000)); // a expires; z enters lock-delay
    expect(table.acquire(clock.now(), 'b', 'z', params())).toMatchObject({ kind: 'lockDelay' });
    const snap = table.snapshot();
    const restored = new LeaseTable(table.options);
    const later = clock.step(10_000);
    restored.restore(later, snap);
    expect(restored.acquire(later, 'b', 'z', params())).toEqual({ kind: 'lockDelay', retryAfterMs: 500 });
    expect(restored.acquire(clock.step(500), 'b', 'z', params()).kind).toBe('granted');
  });

  it('refuses to restore into a table that has state', () => {
    const { table, clock } = busyTable();
    expect(() => table.restore(clock.now(), table.snapshot())).toThrow(/empty table/);
  });
});
