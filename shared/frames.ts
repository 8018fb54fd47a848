/**
 * Every frame on the wire: a msgpack map with a `type` field. Requests carry a `ref` (a
 * non-negative safe integer chosen by the client); the reply echoes it. Pushed frames
 * (`events`, `lost`) carry no ref. See docs/PROTOCOL.md for examples of each.
 */

/** Request frame types, client → broker. */
export const RequestTypes = {
  hello: 'hello',
  acquire: 'acquire',
  release: 'release',
  renew: 'renew',
  setMeta: 'setMeta',
  cancel: 'cancel',
  get: 'get',
  list: 'list',
  watch: 'watch',
  unwatch: 'unwatch',
  keepalive: 'keepalive',
  bye: 'bye',
} as const;
export type RequestType = (typeof RequestTypes)[keyof typeof RequestTypes];

/** Reply and push frame types, broker → client. */
export const ReplyTypes = {
  welcome: 'welcome',
  granted: 'granted',
  queued: 'queued',
  ok: 'ok',
  lease: 'lease',
  leases: 'leases',
  watching: 'watching',
  error: 'error',
  events: 'events',
  lost: 'lost',
} as const;
export type ReplyType = (typeof ReplyTypes)[keyof typeof ReplyTypes];

/** Kinds of lease events pushed to watchers. */
export const EventKinds = {
  acquired: 'acquired',
  released: 'released',
  expired: 'expired',
  updated: 'updated',
} as const;
export type EventKind = (typeof EventKinds)[keyof typeof EventKinds];

/** Why a holder stopped holding: on `released`/`expired` events, and on reassignments. */
export type EndReason =
  /** The holder called release. */
  | 'release'
  /** The holder's session ended cleanly (bye / DELETE). */
  | 'session-closed'
  /** The holder's session passed its deadline without a heartbeat. */
  | 'session-expired'
  /** The lease's own ttlMs passed without a renew. */
  | 'lease-ttl';

/** Public facts about a holder. */
export interface HolderInfo {
  owner: string;
  sessionId: string;
  token: number;
}

/** The public state of a held lease, as `get`, `list` and watch snapshots report it. */
export interface LeaseInfo {
  name: string;
  /** Fencing token of the current grant; strictly greater than every earlier token. */
  token: number;
  owner: string;
  sessionId: string;
  /** Wall-clock time of the grant (epoch ms), for display only. */
  acquiredAt: number;
  /** The lease's own TTL if it was acquired with one; it must then be renewed. */
  ttlMs?: number;
  /** TTL of the holder's session. */
  sessionTtlMs: number;
  /** How long until the broker revokes the lease if the holder goes silent now. */
  expiresInMs: number;
  meta?: Uint8Array;
  /** Sessions queued for the lease. */
  waiters: number;
  /** Revision of the change that produced this state. */
  revision: number;
}

/** A change to a lease, pushed to every watcher whose prefix matches the name. */
export interface LeaseEvent {
  kind: EventKind;
  /** Broker-wide revision of this change; every change has its own. */
  revision: number;
  name: string;
  /** The holder the event is about: the new holder for acquired, the old one otherwise. */
  owner: string;
  sessionId: string;
  token: number;
  /** Wall-clock time (epoch ms), for display only. */
  at: number;
  meta?: Uint8Array;
  /** released/expired: why; acquired: why the previous holder left (a reassignment). */
  reason?: EndReason;
  /** acquired by a waiter: the holder it replaced. */
  previous?: HolderInfo;
  /** acquired: the lease's own TTL, if any. */
  ttlMs?: number;
}

// ---- Requests ----

export interface HelloRequest {
  type: 'hello';
  ref: number;
  version: number;
  /** Session TTL wanted; clamped to the broker's [minTtlMs, maxTtlMs]. */
  ttlMs?: number;
  /** A label shown to others as the holder (e.g. host name); not an identity. */
  owner?: string;
  /** To resume a session: its id and secret. */
  sessionId?: string;
  secret?: string;
}

export interface AcquireRequest {
  type: 'acquire';
  ref: number;
  name: string;
  /** Queue behind the holder instead of failing with LEASE_HELD. */
  wait?: boolean;
  /** With wait: give up after this long with WAIT_TIMEOUT. */
  waitTimeoutMs?: number;
  meta?: Uint8Array;
  /** A hard bound on holding time: the lease ends unless renewed within ttlMs. */
  ttlMs?: number;
}

export interface ReleaseRequest {
  type: 'release';
  ref: number;
  name: string;
  token: number;
}

export interface RenewRequest {
  type: 'renew';
  ref: number;
  name: string;
  token: number;
}

export interface SetMetaRequest {
  type: 'setMeta';
  ref: number;
  name: string;
  token: number;
  /** New metadata; null removes it. */
  meta: Uint8Array | null;
}

export interface CancelRequest {
  type: 'cancel';
  ref: number;
  /** Cancel this session's waiting acquire on name. */
  name: string;
}

export interface GetRequest {
  type: 'get';
  ref: number;
  name: string;
}

export interface ListRequest {
  type: 'list';
  ref: number;
  prefix: string;
}

export interface WatchRequest {
  type: 'watch';
  ref: number;
  /** Name prefix; '' watches everything. Plain string prefix: 'rooms/' matches 'rooms/7'. */
  prefix: string;
  /** Replay events with revision > fromRevision instead of sending a snapshot. */
  fromRevision?: number;
}

export interface UnwatchRequest {
  type: 'unwatch';
  ref: number;
  watchId: number;
}

export interface KeepaliveRequest {
  type: 'keepalive';
  ref: number;
}

export interface ByeRequest {
  type: 'bye';
  ref: number;
}

export type Request =
  | HelloRequest
  | AcquireRequest
  | ReleaseRequest
  | RenewRequest
  | SetMetaRequest
  | CancelRequest
  | GetRequest
  | ListRequest
  | WatchRequest
  | UnwatchRequest
  | KeepaliveRequest
  | ByeRequest;

// ---- Replies and pushes ----

/** A lease this session holds, as reported in welcome on resume. */
export interface HeldLease {
  name: string;
  token: number;
  ttlMs?: number;
  meta?: Uint8Array;
}

export interface WelcomeReply {
  type: 'welcome';
  ref: number;
  version: number;
  sessionId: string;
  /** Present the secret with sessionId to resume; keep it private. */
  secret: string;
  ttlMs: number;
  heartbeatIntervalMs: number;
  revision: number;
  /**
   * Names the broker's history. Revisions and tokens under another epoch are unrelated (e.g. a
   * memory broker that restarted): a client resuming watches must then take fresh snapshots (rule W4).
   */
  epoch: string;
  resumed: boolean;
  /** The leases the session holds (non-empty only on resume). */
  leases: HeldLease[];
  /** Broker wall clock (epoch ms), for display only. */
  serverTime: number;
}

export interface GrantedReply {
  type: 'granted';
  ref: number;
  lease: LeaseInfo;
}

export interface QueuedReply {
  type: 'queued';
  ref: number;
  name: string;
  /** 1-based position in the FIFO queue when the waiter joined it. */
  position: number;
}

export interface OkReply {
  type: 'ok';
  ref: number;
  revision: number;
}

export interface LeaseReply {
  type: 'lease';
  ref: number;
  lease: LeaseInfo | null;
  revision: number;
}

export interface LeasesReply {
  type: 'leases';
  ref: number;
  leases: LeaseInfo[];
  revision: number;
}

export interface WatchingReply {
  type: 'watching';
  ref: number;
  watchId: number;
  /** Events after this revision follow in `events` frames. */
  revision: number;
  /** The matching leases at `revision` (absent when fromRevision was given). */
  snapshot?: LeaseInfo[];
  /**
   * With fromRevision: the missed events matching the prefix, revision > fromRevision and
   * <= `revision`, for this watch only (rule W4). Later events arrive in `events` frames.
   */
  events?: LeaseEvent[];
}

export interface ErrorReply {
  type: 'error';
  /** The request this answers; absent for errors about a frame whose ref could not be read. */
  ref?: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface EventsPush {
  type: 'events';
  events: LeaseEvent[];
}

export interface LostPush {
  type: 'lost';
  name: string;
  token: number;
  reason: EndReason;
}

export type ServerFrame =
  | WelcomeReply
  | GrantedReply
  | QueuedReply
  | OkReply
  | LeaseReply
  | LeasesReply
  | WatchingReply
  | ErrorReply
  | EventsPush
  | LostPush;
