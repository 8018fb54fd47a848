/**
 * leasewire client: named exclusive leases with fencing tokens over one WebSocket session.
 *
 * @example
 * import { connect } from 'leasewire';
 * const client = await connect('ws://127.0.0.1:7420', { owner: 'worker-1' });
 * const lease = await client.acquire('jobs/nightly');
 * await lease.release();
 * await client.close();
 */

export type { CloseCodeName } from '../shared/close-codes.js';
export { CloseCodes } from '../shared/close-codes.js';
export type { ErrorCode, ErrorDetails } from '../shared/errors.js';
export { ErrorCodes, LeasewireError } from '../shared/errors.js';
export type { EndReason, EventKind, HolderInfo, LeaseEvent, LeaseInfo } from '../shared/frames.js';
export { PROTOCOL_VERSION } from '../shared/version.js';
export type { BackoffOptions } from './backoff.js';
export { Client, connect } from './client.js';
export type { ElectionChange, ElectOptions, LeaderInfo } from './election.js';
export { Election } from './election.js';
export type { LeaseLossReason } from './lease.js';
export { Lease, LeaseLostError } from './lease.js';
export type { AcquireOptions } from './leases.js';
export type { MetaInput } from './meta.js';
export type { ConnectOptions, ReconnectOptions } from './options.js';
export { DEFAULT_CONNECT_OPTIONS } from './options.js';
export { safetyMarginMs } from './safety-deadline.js';
export type { ClientStatus, StatusChange } from './status.js';
export type { SnapshotReason, WatchItem, WatchOptions } from './watch.js';
export { Watch } from './watch.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
