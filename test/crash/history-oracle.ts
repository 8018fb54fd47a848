/**
 * The crash test's judge. It holds the broker's verified history (every event from revision 1,
 * as read back after each restart with `watch fromRevision`), the lease state that history implies,
 * and every grant a client was told of and may still hold; after each restart it checks what the
 * broker recovered against all of it, and collects every breach as a readable line.
 */
import type { LeaseEvent, LeaseInfo, WelcomeReply } from '../../shared/frames.js';
import type { RecoveryLine } from '../helpers/broker-process.js';
import type { AckedChange, ConnectionFacts, InFlight } from './load-client.js';

interface Holder {
  token: number;
  sessionId: string;
}

type State = Map<string, Holder>;

/** What one restart let the test read back. */
export interface RecoveredView {
  round: number;
  recovery: RecoveryLine;
  /** `watch '' fromRevision = checkpoint`: every event after the checkpoint, up to `eventsUpTo`. */
  events: LeaseEvent[];
  eventsUpTo: number;
  /** `list('')` and its revision (read before the events, so listRevision <= eventsUpTo). */
  list: LeaseInfo[];
  listRevision: number;
}

export interface ClientRound {
  label: string;
  sessionId: string;
  /** Facts of the connection that died with the broker. */
  facts: ConnectionFacts;
  /** name → token the client believed it held when the broker died. */
  believed: ReadonlyMap<string, number>;
  /** The welcome of the resume after the restart. */
  welcome: WelcomeReply;
}

function applyTo(state: State, e: LeaseEvent): void {
  if (e.kind === 'acquired') state.set(e.name, { token: e.token, sessionId: e.sessionId });
  else if (e.kind !== 'updated') state.delete(e.name);
}

function sameLeases(state: State, sessionId: string, got: ReadonlyMap<string, number>): boolean {
  let count = 0;
  for (const [name, h] of state) {
    if (h.sessionId !== sessionId) continue;
    count++;
    if (got.get(name) !== h.token) return false;
  }
  return count === got.size;
}

function describe(e: LeaseEvent | undefined): string {
  if (!e) return 'nothing';
  return `${e.kind} ${e.name} token ${e.token} session ${e.sessionId} at ${e.revision}${e.reason ? ` (${e.reason})` : ''}`;
}

export class HistoryOracle {
  /** Every event, index = revision - 1. */
  readonly events: LeaseEvent[] = [];
  readonly violations: string[] = [];
  /** Lease state after the last verified event. */
  private state: State = new Map();
  /** Grants a client was told of whose end is not yet in the verified history. */
  private liveGrants = new Map<string, AckedChange>();
  /** Highest token in any event or reply seen so far. */
  maxToken = 0;
  /** Highest token seen before the latest restart: every later grant must be above it. */
  private tokenFloor = 0;
  private lastAcquiredToken = 0;

  get checkpoint(): number {
    return this.events.length;
  }

  private fail(round: number, msg: string): void {
    if (this.violations.length < 200) this.violations.push(`round ${round}: ${msg}`);
  }

  eventAt(revision: number): LeaseEvent | undefined {
    return this.events[revision - 1];
  }

  /** Applies one event to a state, reporting anything the lease rules forbid (L1, L4, L5). */
  private apply(round: number, state: State, e: LeaseEvent): void {
    const cur = state.get(e.name);
    if (e.kind === 'acquired') {
      if (cur) this.fail(round, `${describe(e)} while ${e.name} is held with token ${cur.token} (L1)`);
      if (e.token <= this.lastAcquiredToken)
        this.fail(
          round,
          `${describe(e)}: token not above the previous grant's ${this.lastAcquiredToken} (L5)`,
        );
      this.lastAcquiredToken = Math.max(this.lastAcquiredToken, e.token);
    } else if (!cur || cur.token !== e.token || cur.sessionId !== e.sessionId) {
      this.fail(round, `${describe(e)} but the holder was ${cur ? `token ${cur.token}` : 'nobody'}`);
    }
    applyTo(state, e);
  }

  /**
   * Checks one restart: the history read back continues the verified one without a gap, and
   * together with the recovered list it holds every change acknowledged before the kill.
   */
  verifyRestart(view: RecoveredView, clients: ClientRound[], watched: LeaseEvent[]): void {
    const { round, recovery } = view;
    const base = this.checkpoint;
    // The read-back history continues ours without a gap (revisions are contiguous, L10).
    view.events.forEach((e, i) => {
      if (e.revision !== base + 1 + i)
        this.fail(round, `history read back has revision ${e.revision} at position ${base + 1 + i}`);
    });
    if (base + view.events.length !== view.eventsUpTo) {
      this.fail(
        round,
        `history read back ends at ${base + view.events.length}, the watch said ${view.eventsUpTo}`,
      );
    }
    // R3: the counters the broker recovered cover everything anyone was told of before the kill.
    const toldBefore = Math.max(this.maxToken, ...clients.flatMap((c) => c.facts.acked.map((a) => a.token)));
    if (recovery.lastToken < toldBefore)
      this.fail(round, `recovered lastToken ${recovery.lastToken} is below issued token ${toldBefore} (R3)`);
    const ackedRevisions = clients.flatMap((c) => c.facts.acked.map((a) => a.revision));
    const maxAckedRevision = Math.max(this.checkpoint, ...ackedRevisions);
    if (recovery.revision < maxAckedRevision)
      this.fail(round, `recovered revision ${recovery.revision} is below acknowledged ${maxAckedRevision}`);

    // Replay the read-back history over the verified state; compare with list('') at its revision.
    const state: State = new Map(this.state);
    let listState: State | undefined = view.listRevision <= base ? new Map(state) : undefined;
    let recoveredState: State | undefined = recovery.revision <= base ? new Map(state) : undefined;
    const floor = this.tokenFloor;
    for (const e of view.events) {
      this.apply(round, state, e);
      this.events.push(e);
      if (e.kind === 'acquired' && e.token <= floor) {
        this.fail(round, `${describe(e)}: not above token ${floor}, issued before the previous restart (R3)`);
      }
      if (e.revision > recovery.revision && e.kind !== 'expired') {
        // Between recovery and the end of this check no client changed anything; only timers ran.
        this.fail(round, `${describe(e)} happened after recovery, before any client was back`);
      }
      if (e.revision === view.listRevision) listState = new Map(state);
      if (e.revision === recovery.revision) recoveredState = new Map(state);
    }
    this.state = state;
    if (!listState) this.fail(round, `list revision ${view.listRevision} is outside the history read back`);
    else this.compareList(round, listState, view.list);
    if (recovery.revision < base) {
      this.fail(round, `recovered revision ${recovery.revision} is below ${base}, verified before the kill`);
    }

    // Every acknowledged change is in the history exactly as acknowledged (D1: nothing acknowledged is lost).
    for (const c of clients) {
      for (const a of c.facts.acked) {
        const e = this.eventAt(a.revision);
        if (
          !e ||
          e.kind !== a.kind ||
          e.name !== a.name ||
          e.token !== a.token ||
          e.sessionId !== a.sessionId
        ) {
          this.fail(
            round,
            `${a.client} was told ${a.kind} ${a.name} token ${a.token} at ${a.revision}; history has ${describe(e)}`,
          );
        }
        if (a.kind === 'acquired') this.liveGrants.set(`${a.name}#${a.token}`, a);
      }
      for (const l of c.facts.lost) {
        if (!this.endOf(l.name, l.token, 0, 'expired'))
          this.fail(
            round,
            `${c.label} was told ${l.name} token ${l.token} was lost; the history has no expiry`,
          );
      }
    }
    for (const e of watched) {
      const h = this.eventAt(e.revision);
      if (!h || describe(h) !== describe(e))
        this.fail(round, `a watcher saw ${describe(e)}; history has ${describe(h)}`);
    }

    // Every acknowledged grant is still held by its session with its token, unless the history
    // records its end (a release or an expiry, acknowledged or not).
    for (const [key, g] of this.liveGrants) {
      const ended = this.endOf(g.name, g.token, g.revision);
      if (ended && ended.revision <= view.listRevision) {
        this.liveGrants.delete(key);
        continue;
      }
      const held = view.list.find((l) => l.name === g.name);
      if (!held || held.token !== g.token || held.sessionId !== g.sessionId) {
        this.fail(
          round,
          `${g.client}'s acknowledged grant of ${g.name} token ${g.token} is gone after the restart ` +
            `(list has ${held ? `token ${held.token}` : 'nothing'}; no release or expiry recorded)`,
        );
        this.liveGrants.delete(key);
      }
    }

    // Sessions resume with their leases and tokens.
    if (recoveredState)
      for (const c of clients) this.checkResume(round, c, recovery.revision, recoveredState);

    for (const e of view.events) this.maxToken = Math.max(this.maxToken, e.token);
    this.maxToken = Math.max(this.maxToken, toldBefore);
    this.tokenFloor = this.maxToken;
  }

  /** The event that ended grant `token` of `name` after `afterRevision`, if the history has one. */
  private endOf(
    name: string,
    token: number,
    afterRevision: number,
    kind?: 'expired',
  ): LeaseEvent | undefined {
    for (let i = afterRevision; i < this.events.length; i++) {
      const e = this.events[i] as LeaseEvent;
      if (e.name !== name || e.token !== token) continue;
      if (e.kind === 'released' || e.kind === 'expired') return kind && e.kind !== kind ? undefined : e;
    }
    return undefined;
  }

  private compareList(round: number, expected: State, list: LeaseInfo[]): void {
    const got = new Map(list.map((l) => [l.name, { token: l.token, sessionId: l.sessionId }]));
    for (const [name, h] of expected) {
      const g = got.get(name);
      if (!g || g.token !== h.token || g.sessionId !== h.sessionId) {
        this.fail(
          round,
          `the history says ${name} is held with token ${h.token}; list has ${g ? `token ${g.token}` : 'nothing'}`,
        );
      }
    }
    for (const [name, g] of got) {
      if (!expected.has(name))
        this.fail(round, `list has ${name} token ${g.token}, which the history says is free`);
    }
  }

  /**
   * On resume, `welcome.leases` is what the recovered state gives the session (at some revision
   * between the end of recovery and the welcome: in between, only expiries happen), and it differs
   * from what the client believed it held only where a request was in flight or a lease TTL ran out.
   */
  private checkResume(round: number, c: ClientRound, recoveredRevision: number, recovered: State): void {
    const { welcome } = c;
    if (!welcome.resumed || welcome.sessionId !== c.sessionId) {
      this.fail(round, `${c.label} did not resume its session (resumed ${welcome.resumed})`);
      return;
    }
    const got = new Map(welcome.leases.map((l) => [l.name, l.token]));
    const state: State = new Map(recovered);
    let matched = sameLeases(state, c.sessionId, got);
    for (let r = recoveredRevision + 1; !matched && r <= welcome.revision; r++) {
      const e = this.eventAt(r);
      if (!e) break;
      applyTo(state, e);
      matched = sameLeases(state, c.sessionId, got);
    }
    if (!matched) {
      const expected = [...recovered]
        .filter(([, h]) => h.sessionId === c.sessionId)
        .map(([n, h]) => `${n}#${h.token}`);
      this.fail(
        round,
        `${c.label} resumed with [${[...got].map(([n, t]) => `${n}#${t}`).join(', ')}]; the recovered state gives [${expected.join(', ')}]`,
      );
    }
    const inFlight = new Map<string, InFlight>(c.facts.inFlight.map((r) => [r.name, r]));
    for (const [name, token] of c.believed) {
      if (got.get(name) === token) continue;
      const ended = this.endOf(name, token, 0);
      const flying = inFlight.get(name);
      if (ended?.kind === 'expired') continue;
      if (ended?.kind === 'released' && flying?.op === 'release' && flying.token === token) continue;
      this.fail(
        round,
        `${c.label} held ${name} token ${token} before the kill and lost it (history: ${describe(ended)})`,
      );
    }
    for (const [name, token] of got) {
      if (c.believed.get(name) === token) continue;
      if (inFlight.get(name)?.op === 'acquire') continue;
      this.fail(
        round,
        `${c.label} resumed holding ${name} token ${token} without a grant it knew of or asked for`,
      );
    }
  }

  /** Every grant after the latest restart carries a token above every token issued before it. */
  checkTokensAfterRestart(round: number, acked: readonly AckedChange[]): void {
    for (const a of acked) {
      if (a.kind === 'acquired' && a.token <= this.tokenFloor) {
        this.fail(
          round,
          `${a.client} got token ${a.token} for ${a.name} after the restart, not above ${this.tokenFloor} issued before`,
        );
      }
    }
  }

  /** A watcher's deliveries equal the verified history under its prefix, without gap or repeat. */
  checkWatcher(label: string, prefix: string, from: number, upTo: number, delivered: LeaseEvent[]): void {
    const expected = this.events.filter(
      (e) => e.revision > from && e.revision <= upTo && e.name.startsWith(prefix),
    );
    const got = delivered.filter((e) => e.revision <= upTo);
    const n = Math.max(expected.length, got.length);
    for (let i = 0; i < n; i++) {
      if (describe(expected[i]) !== describe(got[i])) {
        this.fail(
          -1,
          `${label} (prefix '${prefix}') event #${i + 1}: expected ${describe(expected[i])}, got ${describe(got[i])} ` +
            `(${got.length} delivered, ${expected.length} in the history up to ${upTo})`,
        );
        return;
      }
    }
  }
}
