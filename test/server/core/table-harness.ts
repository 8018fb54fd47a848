import { expect } from 'vitest';
import { LeaseTable } from '../../../server/core/lease-table.js';
import type { LeaseTableOptions, Now, Output, SessionRecord } from '../../../server/core/types.js';
import { type ErrorCode, LeasewireError } from '../../../shared/errors.js';
import type { LeaseEvent } from '../../../shared/frames.js';

/** A fake clock: monotonic and wall readings move together, only when told. */
export class FakeClock {
  mono = 1_000;
  wall = 1_700_000_000_000;

  now(): Now {
    return { mono: this.mono, wall: this.wall };
  }

  step(ms: number): Now {
    this.mono += ms;
    this.wall += ms;
    return this.now();
  }
}

export function sessionRecord(id: string, ttlMs = 10_000, owner = `owner-${id}`): SessionRecord {
  return { id, secretHash: `hash-${id}`, owner, ttlMs, createdAt: 1_700_000_000_000 };
}

export function eventsOf(outputs: readonly Output[]): LeaseEvent[] {
  const out: LeaseEvent[] = [];
  for (const o of outputs) if (o.type === 'event') out.push(o.event);
  return out;
}

/** Outputs reduced to a compact, readable form for order assertions. */
export function describeOutputs(outputs: readonly Output[]): string[] {
  return outputs.map((o) => {
    switch (o.type) {
      case 'event': {
        const e = o.event;
        return `${e.kind} ${e.name} ${e.sessionId}#${e.token}${e.reason ? ` (${e.reason})` : ''}`;
      }
      case 'sessionOpened':
        return `sessionOpened ${o.session.id}`;
      case 'sessionEnded':
        return `sessionEnded ${o.sessionId} (${o.reason})`;
      case 'waitGranted':
        return `waitGranted ${o.sessionId} wait ${o.waitId} #${o.lease.token}`;
      case 'waitEnded':
        return `waitEnded ${o.sessionId} wait ${o.waitId} (${o.code})`;
      case 'leaseLost':
        return `leaseLost ${o.name} ${o.sessionId}#${o.token} (${o.reason})`;
      default:
        return `unknown output ${JSON.stringify(o satisfies never)}`;
    }
  });
}

/** A table plus a fake clock, with the sessions opened and the outbox drained. */
export function tableWith(
  sessionIds: string[],
  options: Partial<LeaseTableOptions> = {},
  sessionTtlMs = 10_000,
): { table: LeaseTable; clock: FakeClock } {
  const table = new LeaseTable(options);
  const clock = new FakeClock();
  for (const id of sessionIds) table.openSession(clock.now(), sessionRecord(id, sessionTtlMs));
  table.drain();
  return { table, clock };
}

/**
 * Runs a call that must fail with `code` and checks it changed nothing: same durable state,
 * same counts, no outputs. Deadlines due at `now` are processed first so only the call is judged.
 */
export function expectRejected(
  table: LeaseTable,
  now: Now,
  call: () => unknown,
  code: ErrorCode,
): LeasewireError {
  table.advance(now);
  table.drain();
  const before = {
    snapshot: table.snapshot(),
    list: table.list(now, ''),
    counts: [table.sessionCount, table.leaseCount, table.waiterCount],
    nextDeadline: table.nextDeadline(),
  };
  let caught: unknown;
  try {
    call();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(LeasewireError);
  const err = caught as LeasewireError;
  expect(err.code).toBe(code);
  expect(table.drain()).toEqual([]);
  expect({
    snapshot: table.snapshot(),
    list: table.list(now, ''),
    counts: [table.sessionCount, table.leaseCount, table.waiterCount],
    nextDeadline: table.nextDeadline(),
  }).toEqual(before);
  return err;
}
