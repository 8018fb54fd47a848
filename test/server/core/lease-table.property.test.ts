import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaseTable } from '../../../server/core/lease-table.js';
import type {
  AcquireParams,
  AcquireResult,
  ChangeRecord,
  LeaseTableOptions,
  Now,
  Output,
} from '../../../server/core/types.js';
import { type ErrorCode, LeasewireError } from '../../../shared/errors.js';
import type { EndReason, HolderInfo, LeaseEvent, LeaseInfo } from '../../../shared/frames.js';
import { FakeClock, sessionRecord } from './table-harness.js';

/*
 * Random operation sequences against the lease table, with a model rebuilt only from the table's
 * outputs. The model checks every output as it arrives (one holder per name, FIFO hand-over with
 * previous+reason, strictly increasing tokens, contiguous revisions, expiries only at reached
 * deadlines, clean ends only from the matching call) and predicts each call's answer when no
 * deadline is due. After every step the table's list(), sessions, counters and history must
 * match the model; the second property also rebuilds the table by snapshot→restore and by
 * replaying the durable outputs, and compares.
 */

// ---- commands ----

const SESSIONS = ['s1', 's2', 's3'] as const;
const NAMES = ['a', 'b', '__proto__'] as const;
const MIN_LEASE_TTL_MS = 500;
const MAX_LEASE_TTL_MS = 5_000;

type TokenPick = 'current' | 'previous' | 'next' | 'zero' | 'last';

type Cmd =
  | { op: 'open'; sid: string; ttlMs: number }
  | { op: 'close'; sid: string }
  | { op: 'touch'; sid: string }
  | { op: 'cancelWaits'; sid: string }
  | {
      op: 'acquire';
      sid: string;
      name: string;
      wait: boolean;
      waitTimeoutMs: number | undefined;
      ttlMs: number | undefined;
      meta: number | undefined;
      reuseWaitId: boolean;
      actor: boolean;
    }
  | { op: 'release' | 'renew'; sid: string; name: string; token: TokenPick; actor: boolean }
  | { op: 'setMeta'; sid: string; name: string; token: TokenPick; meta: number | null; actor: boolean }
  | { op: 'cancel'; sid: string; name: string; actor: boolean }
  | { op: 'advance' };

/**
 * One generated step: the clock moves by elapseMs, deadlines are optionally processed on their
 * own (otherwise the call's own advance meets them), then the command runs.
 */
interface Step {
  elapseMs: number;
  advanceFirst: boolean;
  cmd: Cmd;
}

const sid = fc.constantFrom(...SESSIONS);
// Most traffic on one name, so that holders, waiters and hand-overs meet often.
const name = fc.oneof({ weight: 3, arbitrary: fc.constant(NAMES[0]) }, fc.constantFrom(...NAMES));
const token = fc.constantFrom<TokenPick>('current', 'current', 'current', 'previous', 'next', 'zero', 'last');
const sessionTtlMs = fc.constantFrom(2_000, 10_000, 60_000);
/** For holder and waiter calls: mostly the session that actually holds or waits for the name. */
const actor = fc.integer({ min: 0, max: 3 }).map((n) => n > 0);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('open' as const),
      sid,
      ttlMs: fc.constantFrom(1_000, 3_000, 10_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), sid }) },
  { weight: 12, arbitrary: fc.record({ op: fc.constant('touch' as const), sid }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancelWaits' as const), sid }) },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('acquire' as const),
      sid,
      name,
      wait: fc.integer({ min: 0, max: 2 }).map((n) => n > 0),
      waitTimeoutMs: maybe(fc.constantFrom(0, 1, 300, 2_000)),
      ttlMs: maybe(fc.constantFrom(1, 800, 2_000, 100_000)),
      meta: maybe(fc.integer({ min: 0, max: 255 })),
      reuseWaitId: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      actor,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constantFrom('release' as const, 'renew' as const),
      sid,
      name,
      token,
      actor,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('setMeta' as const),
      sid,
      name,
      token,
      meta: fc.option(fc.integer({ min: 0, max: 255 }), { nil: null }),
      actor,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), sid, name, actor }) },
  { weight: 1, arbitrary: fc.constant({ op: 'advance' as const }) },
);

const elapseMs = fc.oneof(
  { weight: 10, arbitrary: fc.constant(0) },
  { weight: 6, arbitrary: fc.constantFrom(1, 7, 100, 299, 300, 499, 500, 699, 700, 999, 1_000) },
  { weight: 1, arbitrary: fc.constantFrom(2_500, 5_000, 10_000) },
);

/** Every run starts with all sessions open, then runs 1..60 random steps. */
const stepsArb: fc.Arbitrary<Step[]> = fc
  .tuple(
    fc.tuple(...SESSIONS.map(() => sessionTtlMs)),
    fc.array(fc.record({ elapseMs, advanceFirst: fc.boolean(), cmd: cmdArb }), {
      minLength: 1,
      maxLength: 60,
      size: 'max',
    }),
  )
  .map(([ttls, steps]) => [
    ...SESSIONS.map((id, i) => ({
      elapseMs: 0,
      advanceFirst: false,
      cmd: { op: 'open' as const, sid: id, ttlMs: ttls[i] ?? 1_000 },
    })),
    ...steps,
  ]);

const optionsArb: fc.Arbitrary<Partial<LeaseTableOptions>> = fc.record({
  lockDelayMs: fc.constantFrom(0, 700),
  historyLimit: fc.constantFrom(4, 1_000),
  maxLeasesPerSession: fc.constantFrom(2, 100),
  maxWaitsPerSession: fc.constantFrom(1, 100),
  minLeaseTtlMs: fc.constant(MIN_LEASE_TTL_MS),
  maxLeaseTtlMs: fc.constant(MAX_LEASE_TTL_MS),
});

// ---- the model: rebuilt from the outputs alone, and checked against them as they arrive ----

interface ModelWait {
  sid: string;
  waitId: number;
  deadline?: number;
}

interface ModelLease {
  sid: string;
  token: number;
  revision: number;
  meta?: Uint8Array;
  ttlMs?: number;
  /** Monotonic: granted or last renewed + ttlMs. */
  leaseDeadline?: number;
}

interface ModelSession {
  owner: string;
  ttlMs: number;
  /** Monotonic: opened or last touched + ttlMs. */
  deadline: number;
}

class Model {
  readonly sessions = new Map<string, ModelSession>();
  readonly holders = new Map<string, ModelLease>();
  readonly queues = new Map<string, ModelWait[]>();
  /** Names in lock-delay, until this monotonic time. */
  readonly delays = new Map<string, number>();
  /** How the last grant of each name ended: the acquired event of a waiter must say so. */
  readonly lastEnd = new Map<string, { previous: HolderInfo; reason: EndReason }>();
  readonly events: LeaseEvent[] = [];
  readonly durable: ChangeRecord[] = [];
  lastRevision = 0;
  lastToken = 0;

  constructor(readonly options: LeaseTableOptions) {}

  queue(name: string): ModelWait[] {
    return this.queues.get(name) ?? [];
  }

  waitsOf(sid: string): { name: string; wait: ModelWait }[] {
    const out: { name: string; wait: ModelWait }[] = [];
    for (const [name, q] of this.queues) for (const w of q) if (w.sid === sid) out.push({ name, wait: w });
    return out;
  }

  leasesOf(sid: string): string[] {
    return [...this.holders].filter(([, l]) => l.sid === sid).map(([n]) => n);
  }

  delayed(name: string, now: Now): boolean {
    return (this.delays.get(name) ?? Number.NEGATIVE_INFINITY) > now.mono;
  }

  waitIdInUse(waitId: number): boolean {
    for (const q of this.queues.values()) if (q.some((w) => w.waitId === waitId)) return true;
    return false;
  }

  private removeWait(waitId: number): { name: string; wait: ModelWait } {
    for (const [name, q] of this.queues) {
      const i = q.findIndex((w) => w.waitId === waitId);
      if (i < 0) continue;
      const [wait] = q.splice(i, 1);
      if (q.length === 0) this.queues.delete(name);
      return { name, wait: wait as ModelWait };
    }
    throw new Error(`wait ${waitId} ended but the model has no such wait`);
  }

  /** The session's deadline has been reached: it may (and must) expire now. */
  private sessionDue(sid: string, now: Now): boolean {
    return (this.sessions.get(sid)?.deadline ?? Number.POSITIVE_INFINITY) <= now.mono;
  }

  /**
   * Checks and applies the outputs of one call, in order. `cmd` is the call that produced them
   * (absent for a bare advance): clean ends (release, close, cancel) must come from the matching call,
   * expiries only from a deadline that has been reached.
   */
  observe(outputs: readonly Output[], now: Now, cmd?: Cmd): void {
    let pendingWaitGrant: { name: string; sid: string; token: number } | undefined;
    let expectExpiredAfterLost: { name: string; token: number } | undefined;
    let previousOutput: Output | undefined;
    for (const o of outputs) {
      const lostJustBefore = previousOutput?.type === 'leaseLost';
      previousOutput = o;
      if (expectExpiredAfterLost) {
        expect(o).toMatchObject({
          type: 'event',
          event: { kind: 'expired', reason: 'lease-ttl', ...expectExpiredAfterLost },
        });
        expectExpiredAfterLost = undefined;
      }
      if (pendingWaitGrant && o.type !== 'waitGranted')
        throw new Error('a waiter was granted without waitGranted');
      switch (o.type) {
        case 'sessionOpened':
          expect(this.sessions.has(o.session.id)).toBe(false);
          expect(cmd).toMatchObject({ op: 'open', sid: o.session.id });
          this.sessions.set(o.session.id, {
            owner: o.session.owner,
            ttlMs: o.session.ttlMs,
            deadline: now.mono + o.session.ttlMs,
          });
          this.durable.push(o);
          break;
        case 'sessionEnded':
          expect(this.sessions.has(o.sessionId)).toBe(true);
          // Its leases ended and its waits were ended before the session itself.
          expect(this.leasesOf(o.sessionId)).toEqual([]);
          expect(this.waitsOf(o.sessionId)).toEqual([]);
          if (o.reason === 'expired') expect(this.sessionDue(o.sessionId, now), 'expired early').toBe(true);
          else expect(cmd).toMatchObject({ op: 'close', sid: o.sessionId });
          this.sessions.delete(o.sessionId);
          this.durable.push(o);
          break;
        case 'waitEnded': {
          const { name, wait } = this.removeWait(o.waitId);
          expect(wait.sid).toBe(o.sessionId);
          if (o.code === 'WAIT_TIMEOUT') expect(wait.deadline).toBeLessThanOrEqual(now.mono);
          if (o.code === 'SESSION_EXPIRED') expect(this.sessionDue(o.sessionId, now)).toBe(true);
          if (o.code === 'CANCELLED') {
            expect(cmd?.op).toBeOneOf(['cancel', 'cancelWaits', 'close']);
            expect(cmd).toMatchObject(
              cmd?.op === 'cancel' ? { sid: o.sessionId, name } : { sid: o.sessionId },
            );
          }
          break;
        }
        case 'waitGranted': {
          expect(pendingWaitGrant).toBeDefined();
          const g = pendingWaitGrant as { name: string; sid: string; token: number };
          const head = this.queue(g.name)[0];
          expect(head, 'waitGranted for a name nobody waits for').toBeDefined();
          expect({ sid: o.sessionId, waitId: o.waitId }).toEqual({ sid: head?.sid, waitId: head?.waitId });
          expect(o.lease).toMatchObject({ name: g.name, sessionId: g.sid, token: g.token });
          this.removeWait(o.waitId);
          pendingWaitGrant = undefined;
          break;
        }
        case 'leaseLost': {
          const l = this.holders.get(o.name);
          expect(l).toMatchObject({ sid: o.sessionId, token: o.token });
          expect(o.reason).toBe('lease-ttl');
          expectExpiredAfterLost = { name: o.name, token: o.token };
          break;
        }
        case 'event':
          if (o.event.kind === 'expired' && o.event.reason === 'lease-ttl')
            expect(lostJustBefore, 'lease-ttl expiry without leaseLost').toBe(true);
          pendingWaitGrant = this.observeEvent(o.event, now, cmd);
          this.durable.push(o);
          break;
      }
    }
    expect(pendingWaitGrant, 'a waiter was granted without waitGranted').toBeUndefined();
    expect(expectExpiredAfterLost, 'leaseLost without an expired event').toBeUndefined();
  }

  private observeEvent(
    ev: LeaseEvent,
    now: Now,
    cmd: Cmd | undefined,
  ): { name: string; sid: string; token: number } | undefined {
    // Revisions: one per event, contiguous, strictly increasing.
    expect(ev.revision).toBe(this.lastRevision + 1);
    this.lastRevision = ev.revision;
    this.events.push(ev);
    expect(ev.at).toBe(now.wall);
    switch (ev.kind) {
      case 'acquired': {
        // The previous grant of this name ended before this one (at most one holder per name).
        expect(this.holders.get(ev.name), `${ev.name} acquired while held`).toBeUndefined();
        expect(this.delayed(ev.name, now), `${ev.name} granted during its lock-delay`).toBe(false);
        expect(ev.token).toBeGreaterThan(this.lastToken);
        this.lastToken = ev.token;
        const owner = this.sessions.get(ev.sessionId);
        expect(owner, 'granted to a session that is not open').toBeDefined();
        expect(ev.owner).toBe(owner?.owner);
        if (ev.ttlMs !== undefined) {
          expect(ev.ttlMs).toBeGreaterThanOrEqual(MIN_LEASE_TTL_MS);
          expect(ev.ttlMs).toBeLessThanOrEqual(MAX_LEASE_TTL_MS);
        }
        const l: ModelLease = { sid: ev.sessionId, token: ev.token, revision: ev.revision };
        if (ev.meta) l.meta = ev.meta;
        if (ev.ttlMs !== undefined) {
          l.ttlMs = ev.ttlMs;
          l.leaseDeadline = now.mono + ev.ttlMs;
        }
        this.holders.set(ev.name, l);
        this.delays.delete(ev.name);
        expect(this.leasesOf(ev.sessionId).length).toBeLessThanOrEqual(this.options.maxLeasesPerSession);
        const head = this.queue(ev.name)[0];
        const ended = this.lastEnd.get(ev.name);
        if (head) {
          // Nobody jumps the queue: with waiters, only the longest waiter is granted.
          expect(ev.sessionId, `${ev.name} granted past its waiters`).toBe(head.sid);
          expect({ previous: ev.previous, reason: ev.reason }).toEqual(ended);
          return { name: ev.name, sid: ev.sessionId, token: ev.token };
        }
        expect(ev.previous).toBeUndefined();
        expect(ev.reason).toBeUndefined();
        return undefined;
      }
      case 'released':
      case 'expired': {
        const l = this.holders.get(ev.name);
        expect(l, `${ev.kind} ${ev.name} but nobody holds it`).toBeDefined();
        expect({ sid: ev.sessionId, token: ev.token }).toEqual({ sid: l?.sid, token: l?.token });
        switch (ev.reason) {
          case 'release':
            expect(ev.kind).toBe('released');
            expect(cmd).toMatchObject({ op: 'release', sid: ev.sessionId, name: ev.name });
            break;
          case 'session-closed':
            expect(ev.kind).toBe('released');
            expect(cmd).toMatchObject({ op: 'close', sid: ev.sessionId });
            break;
          case 'session-expired':
            expect(ev.kind).toBe('expired');
            expect(this.sessionDue(ev.sessionId, now), 'session expired early').toBe(true);
            break;
          case 'lease-ttl':
            expect(ev.kind).toBe('expired');
            expect(l?.leaseDeadline, 'lease expired early').toBeLessThanOrEqual(now.mono);
            break;
          default:
            throw new Error(`${ev.kind} without a reason`);
        }
        this.holders.delete(ev.name);
        const previous = {
          owner: this.sessions.get(ev.sessionId)?.owner ?? '',
          sessionId: ev.sessionId,
          token: ev.token,
        };
        this.lastEnd.set(ev.name, { previous, reason: ev.reason as EndReason });
        if (ev.kind === 'expired' && this.options.lockDelayMs > 0)
          this.delays.set(ev.name, now.mono + this.options.lockDelayMs);
        return undefined;
      }
      case 'updated': {
        const l = this.holders.get(ev.name);
        expect({ sid: ev.sessionId, token: ev.token }).toEqual({ sid: l?.sid, token: l?.token });
        if (l) {
          l.revision = ev.revision;
          if (ev.meta) l.meta = ev.meta;
          else delete l.meta;
        }
        return undefined;
      }
    }
  }
}

// ---- running a sequence ----

type Expectation = { code: ErrorCode } | { ok: (r: unknown) => void };

function durableView(l: LeaseInfo) {
  return {
    name: l.name,
    sessionId: l.sessionId,
    owner: l.owner,
    token: l.token,
    revision: l.revision,
    ttlMs: l.ttlMs,
    meta: l.meta,
  };
}

function pickToken(model: Model, name: string, pick: TokenPick): number {
  const current = model.holders.get(name)?.token ?? model.lastToken;
  switch (pick) {
    case 'current':
      return current;
    case 'previous':
      return current - 1;
    case 'next':
      return current + 1;
    case 'zero':
      return 0;
    case 'last':
      return model.lastToken;
  }
}

/** What a holder-only call must answer, from the model. */
function holderCheck(model: Model, sid: string, name: string, token: number): ErrorCode | undefined {
  if (!model.sessions.has(sid)) return 'SESSION_EXPIRED';
  const l = model.holders.get(name);
  if (!l || l.sid !== sid) return 'NOT_HOLDER';
  if (l.token !== token) return 'STALE_TOKEN';
  return undefined;
}

/** The answer the model expects for an acquire (mirrors the order in which the table checks). */
function expectAcquire(
  model: Model,
  now: Now,
  c: Extract<Cmd, { op: 'acquire' }>,
  p: AcquireParams,
): Expectation {
  const o = model.options;
  if (!model.sessions.has(c.sid)) return { code: 'SESSION_EXPIRED' };
  const held = model.holders.get(c.name);
  if (held?.sid === c.sid) {
    return {
      ok: (r) => expect(r).toMatchObject({ kind: 'granted', lease: { token: held.token, sessionId: c.sid } }),
    };
  }
  const delayed = model.delayed(c.name, now);
  const load = model.leasesOf(c.sid).length + model.waitsOf(c.sid).length;
  if (!held && !delayed) {
    if (load >= o.maxLeasesPerSession) return { code: 'LIMIT_EXCEEDED' };
    return {
      ok: (r) =>
        expect(r).toMatchObject({ kind: 'granted', lease: { token: model.lastToken + 1, sessionId: c.sid } }),
    };
  }
  if (!c.wait) {
    if (held) {
      return {
        ok: (r) =>
          expect(r).toEqual({
            kind: 'held',
            holder: { owner: model.sessions.get(held.sid)?.owner, sessionId: held.sid, token: held.token },
          }),
      };
    }
    const retryAfterMs = (model.delays.get(c.name) as number) - now.mono;
    return { ok: (r) => expect(r).toEqual({ kind: 'lockDelay', retryAfterMs }) };
  }
  if (model.waitsOf(c.sid).some((w) => w.name === c.name)) return { code: 'ALREADY_WAITING' };
  if (model.waitsOf(c.sid).length >= o.maxWaitsPerSession) return { code: 'LIMIT_EXCEEDED' };
  if (load >= o.maxLeasesPerSession) return { code: 'LIMIT_EXCEEDED' };
  if (model.waitIdInUse(p.waitId)) return { code: 'BAD_REQUEST' };
  if (c.waitTimeoutMs === 0) return { code: 'WAIT_TIMEOUT' };
  const position = model.queue(c.name).length + 1;
  return { ok: (r) => expect(r).toEqual({ kind: 'queued', position }) };
}

function expectation(model: Model, now: Now, cmd: Cmd, p: AcquireParams): Expectation {
  switch (cmd.op) {
    case 'open':
      return model.sessions.has(cmd.sid) ? { code: 'BAD_REQUEST' } : { ok: () => {} };
    case 'close':
    case 'cancel':
      if (!model.sessions.has(cmd.sid)) return { code: 'SESSION_EXPIRED' };
      if (cmd.op === 'cancel' && !model.waitsOf(cmd.sid).some((w) => w.name === cmd.name))
        return { code: 'NOT_FOUND' };
      return { ok: () => {} };
    case 'touch': {
      const open = model.sessions.has(cmd.sid);
      return { ok: (r) => expect(r).toBe(open) };
    }
    case 'cancelWaits':
    case 'advance':
      return { ok: () => {} };
    case 'acquire':
      return expectAcquire(model, now, cmd, p);
    case 'release':
    case 'renew':
    case 'setMeta': {
      const code = holderCheck(model, cmd.sid, cmd.name, pickToken(model, cmd.name, cmd.token));
      return code ? { code } : { ok: () => {} };
    }
  }
}

interface Runner {
  table: LeaseTable;
  model: Model;
  clock: FakeClock;
  nextWaitId: number;
  usedWaitIds: number[];
}

function execute(run: Runner, cmd: Cmd, p: AcquireParams): unknown {
  const { table, model, clock } = run;
  const now = clock.now();
  switch (cmd.op) {
    case 'open':
      return table.openSession(now, sessionRecord(cmd.sid, cmd.ttlMs));
    case 'close':
      return table.closeSession(now, cmd.sid);
    case 'touch':
      return table.touch(now, cmd.sid);
    case 'cancelWaits':
      return table.cancelWaits(now, cmd.sid);
    case 'cancel':
      return table.cancelWait(now, cmd.sid, cmd.name);
    case 'acquire':
      return table.acquire(now, cmd.sid, cmd.name, p);
    case 'release':
      return table.release(now, cmd.sid, cmd.name, pickToken(model, cmd.name, cmd.token));
    case 'renew':
      return table.renew(now, cmd.sid, cmd.name, pickToken(model, cmd.name, cmd.token));
    case 'setMeta': {
      const meta = cmd.meta === null ? null : new Uint8Array([cmd.meta]);
      return table.setMeta(now, cmd.sid, cmd.name, pickToken(model, cmd.name, cmd.token), meta);
    }
    case 'advance':
      return table.advance(now);
  }
}

/**
 * Mostly points a call at a session for which it can succeed: a holder call at the holder, a
 * cancel at a waiter, an acquire at an open session (else the generator wastes most calls).
 */
function withActor(model: Model, cmd: Cmd): Cmd {
  if (!('actor' in cmd) || !cmd.actor) return cmd;
  let actual: string | undefined;
  if (cmd.op === 'cancel') actual = model.queue(cmd.name).at(-1)?.sid;
  else if (cmd.op === 'acquire') {
    const i = SESSIONS.indexOf(cmd.sid as (typeof SESSIONS)[number]);
    actual = [...SESSIONS.slice(i), ...SESSIONS.slice(0, i)].find((id) => model.sessions.has(id));
  } else actual = model.holders.get(cmd.name)?.sid;
  return actual === undefined ? cmd : { ...cmd, sid: actual };
}

function acquireParams(run: Runner, cmd: Cmd): AcquireParams {
  const reuse = cmd.op === 'acquire' && cmd.reuseWaitId && run.usedWaitIds.length > 0;
  const waitId = reuse ? (run.usedWaitIds.at(-1) as number) : run.nextWaitId++;
  if (cmd.op !== 'acquire') return { waitId };
  const p: AcquireParams = { waitId, wait: cmd.wait };
  if (cmd.waitTimeoutMs !== undefined) p.waitTimeoutMs = cmd.waitTimeoutMs;
  if (cmd.ttlMs !== undefined) p.ttlMs = cmd.ttlMs;
  if (cmd.meta !== undefined) p.meta = new Uint8Array([cmd.meta]);
  return p;
}

/** Runs one step: the call, the model update from its result and outputs, and the invariants. */
function runStep(run: Runner, step: Step): void {
  const { table, model, clock } = run;
  const now = clock.step(step.elapseMs);
  if (step.advanceFirst) {
    table.advance(now);
    model.observe(table.drain(), now);
  }
  const cmd = withActor(model, step.cmd);
  // The model can predict the answer when no deadline is due, i.e. the call's own advance is a no-op.
  const quiet = (table.nextDeadline() ?? Number.POSITIVE_INFINITY) > now.mono;
  const p = acquireParams(run, cmd);
  const predicted = quiet ? expectation(model, now, cmd, p) : undefined;
  const before = quiet ? { snap: table.snapshot(), list: table.list(now, '') } : undefined;

  let result: unknown;
  let error: unknown;
  try {
    result = execute(run, cmd, p);
  } catch (e) {
    error = e;
  }
  const outputs = table.drain();
  if (error !== undefined) {
    if (!(error instanceof LeasewireError)) throw error;
    if (predicted)
      expect({ code: error.code }).toEqual({ code: 'code' in predicted ? predicted.code : 'no error' });
    // A thrown LeasewireError means the call changed nothing.
    if (before) {
      expect(outputs).toEqual([]);
      expect({ snap: table.snapshot(), list: table.list(now, '') }).toEqual(before);
    }
  } else if (predicted) {
    expect('code' in predicted ? predicted.code : 'ok', `${cmd.op} succeeded`).toBe('ok');
    if ('ok' in predicted) predicted.ok(result);
  }
  model.observe(outputs, now, cmd);

  // What the model learns from results rather than outputs.
  if (cmd.op === 'touch' && result === true) {
    const s = model.sessions.get(cmd.sid) as ModelSession;
    s.deadline = Math.max(s.deadline, now.mono + s.ttlMs);
  }
  if (cmd.op === 'renew' && error === undefined) {
    const l = model.holders.get(cmd.name) as ModelLease;
    if (l.ttlMs !== undefined) l.leaseDeadline = now.mono + l.ttlMs;
  }
  if (cmd.op === 'acquire' && error === undefined) {
    run.usedWaitIds.push(p.waitId);
    const r = result as AcquireResult;
    if (r.kind === 'queued') {
      const w: ModelWait = { sid: cmd.sid, waitId: p.waitId };
      if (p.waitTimeoutMs !== undefined) w.deadline = now.mono + p.waitTimeoutMs;
      const q = model.queues.get(cmd.name) ?? [];
      q.push(w);
      model.queues.set(cmd.name, q);
      expect(r.position).toBe(q.length);
    }
  }

  checkInvariants(run, now);
}

function checkInvariants(run: Runner, now: Now): void {
  const { table, model } = run;
  // list() agrees with the state replayed from the event stream.
  const listed = table.list(now, '');
  expect(table.drain(), 'list() at the same instant has nothing left to process').toEqual([]);
  const expected = [...model.holders.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, l]) => ({
      name,
      sessionId: l.sid,
      owner: model.sessions.get(l.sid)?.owner,
      token: l.token,
      revision: l.revision,
      ttlMs: l.ttlMs,
      meta: l.meta,
      waiters: model.queue(name).length,
    }));
  expect(listed.map((l) => ({ ...durableView(l), waiters: l.waiters }))).toEqual(expected);
  // Nothing listed is past its deadline; expiresInMs is the sooner of the session's and the lease's.
  for (const l of listed) {
    const m = model.holders.get(l.name) as ModelLease;
    const deadline = Math.min(
      model.sessions.get(l.sessionId)?.deadline ?? Number.NaN,
      m.leaseDeadline ?? Number.POSITIVE_INFINITY,
    );
    expect(l.expiresInMs, `${l.name} expiresInMs`).toBe(deadline - now.mono);
    expect(l.expiresInMs, `${l.name} is past its deadline`).toBeGreaterThan(0);
  }

  // Sessions: the open ones are the model's, each holds exactly its leases, none outlives its deadline.
  expect(table.sessionCount).toBe(model.sessions.size);
  for (const id of SESSIONS) {
    const open = model.sessions.has(id);
    expect(table.session(id) !== undefined, `session ${id} open`).toBe(open);
    expect(new Set(table.heldBy(id).map((l) => l.name))).toEqual(new Set(model.leasesOf(id)));
    if (open) {
      expect(table.sessionDeadline(id)).toBe(model.sessions.get(id)?.deadline);
      expect(table.sessionDeadline(id), `session ${id} outlived its deadline`).toBeGreaterThan(now.mono);
    }
  }

  // Counters.
  expect(table.currentRevision).toBe(model.lastRevision);
  expect(table.lastIssuedToken).toBe(model.lastToken);
  expect(table.leaseCount).toBe(model.holders.size);
  let waits = 0;
  for (const [name, q] of model.queues) {
    waits += q.length;
    // A waiter waits only behind a holder or a lock-delay: a release hands over at once.
    expect(model.holders.has(name) || model.delayed(name, now), `${name} is free but has waiters`).toBe(true);
    for (const w of q) if (w.deadline !== undefined) expect(w.deadline).toBeGreaterThan(now.mono);
  }
  expect(table.waiterCount).toBe(waits);

  // History: replays the tail of the event stream exactly; COMPACTED before it and ahead of current.
  const current = table.currentRevision;
  const oldest = table.oldestHistoryRevision;
  expect(table.eventsSince(current)).toEqual([]);
  expect(table.eventsSince(current + 1)).toBeNull();
  if (current > 0) {
    expect(oldest).toBe(Math.max(1, current - (model.options.historyLimit - 1)));
    expect(table.eventsSince(oldest - 1)).toEqual(model.events.slice(oldest - 1));
    if (oldest > 1) expect(table.eventsSince(oldest - 2)).toBeNull();
  }
}

function recoveredViews(table: LeaseTable, now: Now) {
  return {
    leases: table.list(now, '').map(durableView),
    revision: table.currentRevision,
    lastToken: table.lastIssuedToken,
    sessions: SESSIONS.map((id) => table.session(id)),
    history: table.eventsSince(table.oldestHistoryRevision - 1),
  };
}

/** Snapshot→restore and journal replay into fresh tables rebuild what the live table has. */
function checkRecovery(run: Runner): void {
  const { table, model, clock } = run;
  const now = clock.now();
  const live = recoveredViews(table, now);

  const snap = table.snapshot();
  const restored = new LeaseTable(table.options);
  restored.restore(now, snap);
  expect(recoveredViews(restored, now)).toEqual(live);
  expect(restored.drain()).toEqual([]);
  expect(restored.snapshot()).toEqual(snap);

  const replayed = new LeaseTable(table.options);
  for (const rec of model.durable) replayed.apply(now, rec);
  expect(replayed.drain()).toEqual([]);
  expect(recoveredViews(replayed, now)).toEqual(live);

  // Recovery gives every session a fresh deadline of now + its TTL.
  for (const [id, s] of model.sessions) {
    expect(restored.sessionDeadline(id)).toBe(now.mono + s.ttlMs);
    expect(replayed.sessionDeadline(id)).toBe(now.mono + s.ttlMs);
  }
}

function newRunner(options: Partial<LeaseTableOptions>): Runner {
  const table = new LeaseTable(options);
  return { table, model: new Model(table.options), clock: new FakeClock(), nextWaitId: 1, usedWaitIds: [] };
}

const RUNS = { numRuns: 200 };

describe('LeaseTable properties', () => {
  it('keeps its invariants over random operation sequences', () => {
    fc.assert(
      fc.property(optionsArb, stepsArb, (options, steps) => {
        const run = newRunner(options);
        for (const s of steps) runStep(run, s);
      }),
      RUNS,
    );
  });

  it('rebuilds the same durable state from snapshot→restore and from replaying its outputs', () => {
    fc.assert(
      fc.property(optionsArb, stepsArb, (options, steps) => {
        const run = newRunner(options);
        // Every few steps and at the end: a full replay per step would make the run quadratic.
        steps.forEach((s, i) => {
          runStep(run, s);
          if (i % 4 === 3 || i === steps.length - 1) checkRecovery(run);
        });
      }),
      RUNS,
    );
  });
});
