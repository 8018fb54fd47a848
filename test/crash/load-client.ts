/**
 * Clients of the crash test. A {@link LoadClient} is one session that acquires and releases leases
 * from a shared pool as fast as the broker answers, with several requests in flight, until its
 * connection dies; a {@link WatchClient} is one session with one watch that it re-attaches after
 * every restart with `fromRevision`. Both keep every frame of every connection, and turn them into
 * facts afterwards: what the broker acknowledged, and what was still in flight when it died.
 */
import type { LeaseEvent, WelcomeReply } from '../../shared/frames.js';
import { RawClient } from '../helpers/raw-client.js';

/** Generous: a loaded CI machine with a broker that fsyncs can be slow, but never this slow. */
const REPLY_TIMEOUT_MS = 30_000;

/** A change the broker acknowledged to a client: the reply carried its revision. */
export interface AckedChange {
  kind: 'acquired' | 'released';
  name: string;
  token: number;
  revision: number;
  sessionId: string;
  client: string;
}

/** A request that had no reply when the connection died: it may or may not have taken effect. */
export interface InFlight {
  op: 'acquire' | 'release';
  name: string;
  token?: number;
}

export interface ConnectionFacts {
  acked: AckedChange[];
  lost: { name: string; token: number; reason: string }[];
  inFlight: InFlight[];
  /** Replies that were neither success nor an expected refusal. */
  unexpected: string[];
  /** Replies received (successes and refusals alike). */
  replies: number;
}

/** A small seeded PRNG (mulberry32), so that a failing run can be replayed with its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Refusals that are part of the game: the name is someone else's, or our lease ran out (lease TTL).
const EXPECTED_REFUSALS = new Set(['LEASE_HELD', 'NOT_HOLDER', 'STALE_TOKEN']);

interface Sent {
  op: 'acquire' | 'release';
  name: string;
  token?: number;
}

export interface LoadOptions {
  names: readonly string[];
  /** Requests in flight at once. */
  lanes: number;
  /** Share of acquires that carry a lease TTL (and so may expire before the client releases). */
  ttlShare: number;
  leaseTtlMs: number;
  random: () => number;
}

export class LoadClient {
  conn: RawClient | undefined;
  sessionId = '';
  secret = '';
  /** name → token, as this client believes right now. */
  readonly held = new Map<string, number>();
  private sent = new Map<number, Sent>();
  private readonly busy = new Set<string>();

  constructor(
    readonly label: string,
    private readonly ttlMs: number,
  ) {}

  /** Opens a new session. */
  async open(url: string): Promise<WelcomeReply> {
    const { client, welcome } = await RawClient.session(
      url,
      { ttlMs: this.ttlMs, owner: this.label },
      { label: this.label, timeoutMs: REPLY_TIMEOUT_MS },
    );
    this.conn = client;
    this.sent = new Map();
    this.sessionId = welcome.sessionId;
    this.secret = welcome.secret;
    return welcome;
  }

  /** Resumes the session on a new connection; returns the welcome (or throws with the refusal). */
  async resume(url: string): Promise<WelcomeReply> {
    const conn = await RawClient.open(url, { label: this.label, timeoutMs: REPLY_TIMEOUT_MS });
    this.conn = conn;
    this.sent = new Map();
    const reply = await conn.request(
      { type: 'hello', version: 1, sessionId: this.sessionId, secret: this.secret },
      REPLY_TIMEOUT_MS,
    );
    if (reply.type !== 'welcome') throw new Error(`${this.label}: resume refused: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Replaces the local view with what the broker said on resume. */
  adopt(welcome: WelcomeReply): void {
    this.held.clear();
    for (const l of welcome.leases) this.held.set(l.name, l.token);
  }

  /**
   * Runs `lanes` request loops until the connection closes (the broker was killed). Each loop
   * picks a name nobody else in this client is working on: it releases it if held, else acquires it.
   */
  async run(o: LoadOptions): Promise<void> {
    const conn = this.conn;
    if (!conn) throw new Error(`${this.label}: not connected`);
    const lane = async (): Promise<void> => {
      while (!conn.closed) {
        const name = this.pick(o);
        if (name === undefined) return;
        this.busy.add(name);
        try {
          if (!(await this.step(conn, name, o))) return;
        } finally {
          this.busy.delete(name);
        }
      }
    };
    await Promise.all(Array.from({ length: o.lanes }, lane));
  }

  private pick(o: LoadOptions): string | undefined {
    for (let i = 0; i < 16; i++) {
      const name = o.names[Math.floor(o.random() * o.names.length)] as string;
      if (!this.busy.has(name)) return name;
    }
    return undefined;
  }

  /** One request; false once the connection is gone. */
  private async step(conn: RawClient, name: string, o: LoadOptions): Promise<boolean> {
    const token = this.held.get(name);
    const ref = conn.ref();
    let frame: Record<string, unknown>;
    if (token !== undefined) {
      this.sent.set(ref, { op: 'release', name, token });
      frame = { type: 'release', ref, name, token };
    } else {
      this.sent.set(ref, { op: 'acquire', name });
      frame = { type: 'acquire', ref, name };
      if (o.random() < o.ttlShare) frame.ttlMs = o.leaseTtlMs;
    }
    let reply: Awaited<ReturnType<RawClient['request']>>;
    try {
      reply = await conn.request(frame as { type: string; ref: number }, REPLY_TIMEOUT_MS);
    } catch (err) {
      if (conn.closed) return false;
      throw err;
    }
    if (reply.type === 'granted') this.held.set(name, reply.lease.token);
    else if (token !== undefined) this.held.delete(name); // released, or not ours any more
    return true;
  }

  /** What the last connection's frames say, once it is closed. */
  facts(): ConnectionFacts {
    const conn = this.conn;
    if (!conn) throw new Error(`${this.label}: never connected`);
    const facts: ConnectionFacts = { acked: [], lost: [], inFlight: [], unexpected: [], replies: 0 };
    const open = new Map(this.sent);
    for (const f of conn.frames) {
      if (f.type === 'lost') {
        facts.lost.push({ name: f.name, token: f.token, reason: f.reason });
        continue;
      }
      if (!('ref' in f) || f.ref === undefined) continue;
      const req = open.get(f.ref);
      if (!req) continue;
      open.delete(f.ref);
      facts.replies++;
      if (f.type === 'granted') {
        facts.acked.push({
          kind: 'acquired',
          name: f.lease.name,
          token: f.lease.token,
          revision: f.lease.revision,
          sessionId: f.lease.sessionId,
          client: this.label,
        });
      } else if (f.type === 'ok' && req.op === 'release') {
        facts.acked.push({
          kind: 'released',
          name: req.name,
          token: req.token as number,
          revision: f.revision,
          sessionId: this.sessionId,
          client: this.label,
        });
      } else if (f.type !== 'error' || !EXPECTED_REFUSALS.has(f.code)) {
        facts.unexpected.push(`${this.label}: ${req.op} ${req.name} answered ${JSON.stringify(f)}`);
      }
    }
    for (const req of open.values()) facts.inFlight.push(req);
    return facts;
  }
}

/** Events a watch delivered after the W3/W5 rules, plus any breach of them. */
export interface WatchFacts {
  delivered: LeaseEvent[];
  violations: string[];
}

/**
 * One session with one watch on `prefix`. After each restart it resumes and re-watches with
 * `fromRevision` = the last revision it saw. `collect()` applies the client-side rules of
 * PROTOCOL W3/W5 to the frames of a connection: events at or below the watch's start revision may
 * repeat (and are dropped); any other repeat, reordering, or event outside the prefix is a breach.
 */
export class WatchClient {
  conn: RawClient | undefined;
  sessionId = '';
  secret = '';
  /** Highest revision delivered (or the watch's start revision). */
  last = 0;
  /** The revision of the first watch: events at or below it are not expected. */
  startRevision = 0;
  readonly delivered: LeaseEvent[] = [];
  readonly violations: string[] = [];
  private watchRef = 0;

  constructor(
    readonly label: string,
    readonly prefix: string,
  ) {}

  async open(url: string): Promise<void> {
    const { client, welcome } = await RawClient.session(
      url,
      { ttlMs: 60_000, owner: this.label },
      { label: this.label, timeoutMs: REPLY_TIMEOUT_MS },
    );
    this.conn = client;
    this.sessionId = welcome.sessionId;
    this.secret = welcome.secret;
    this.watchRef = client.ref();
    const watching = await client.call(
      { type: 'watch', ref: this.watchRef, prefix: this.prefix },
      'watching',
    );
    this.startRevision = watching.revision;
    this.last = watching.revision;
  }

  /** Resumes the session and re-watches from the last revision seen. */
  async resume(url: string): Promise<WelcomeReply> {
    const conn = await RawClient.open(url, { label: this.label, timeoutMs: REPLY_TIMEOUT_MS });
    this.conn = conn;
    const welcome = await conn.call(
      { type: 'hello', version: 1, sessionId: this.sessionId, secret: this.secret },
      'welcome',
    );
    this.watchRef = conn.ref();
    const reply = await conn.request(
      { type: 'watch', ref: this.watchRef, prefix: this.prefix, fromRevision: this.last },
      REPLY_TIMEOUT_MS,
    );
    if (reply.type !== 'watching') {
      throw new Error(`${this.label}: watch from ${this.last} answered ${JSON.stringify(reply)}`);
    }
    return welcome;
  }

  /** Applies the frames of the (closed) connection to `delivered`. */
  collect(): void {
    const conn = this.conn;
    if (!conn) return;
    let setupRevision: number | undefined;
    const early: LeaseEvent[] = [];
    for (const f of conn.frames) {
      if (f.type === 'watching' && f.ref === this.watchRef) {
        setupRevision = f.revision;
        for (const e of early) {
          if (e.revision > f.revision)
            this.violations.push(
              `${this.label}: event ${e.revision} arrived before watching at ${f.revision}`,
            );
        }
        if (f.events) for (const e of f.events) this.deliver(e, 'replayed');
        if (f.revision > this.last) this.last = f.revision;
        continue;
      }
      if (f.type !== 'events') continue;
      for (const e of f.events) {
        if (setupRevision === undefined) early.push(e);
        // W3: events up to the watch's start revision may come again after the reply; drop them.
        else if (e.revision > setupRevision) this.deliver(e, 'live');
      }
    }
  }

  private deliver(e: LeaseEvent, how: string): void {
    if (!e.name.startsWith(this.prefix)) {
      this.violations.push(
        `${this.label}: ${how} event ${e.revision} for ${e.name} is outside ${this.prefix}`,
      );
    }
    if (e.revision <= this.last) {
      this.violations.push(
        `${this.label}: ${how} event ${e.revision} (${e.kind} ${e.name}) after ${this.last}: a duplicate or out of order`,
      );
      return;
    }
    this.last = e.revision;
    this.delivered.push(e);
  }
}
