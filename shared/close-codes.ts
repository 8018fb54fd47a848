/**
 * WebSocket close codes the broker uses. 1000-1015 are the RFC 6455 codes `ws` also sends by
 * itself (1002 protocol error, 1007 invalid UTF-8, 1009 message too big); 4000-4999 are ours.
 */
export const CloseCodes = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  /** A frame could not be decoded as msgpack or is not a map with a type. */
  BAD_FRAME: 4000,
  /** No hello arrived within helloTimeoutMs of the upgrade. */
  HELLO_TIMEOUT: 4001,
  /** Another connection resumed this session (e.g. after a network change); this one is stale. */
  SESSION_TAKEN_OVER: 4002,
  /** The session's deadline passed; its leases were revoked. */
  SESSION_EXPIRED: 4003,
  /** The connection fell too far behind on outgoing frames (slow watcher). */
  SLOW_CONSUMER: 4004,
  /** hello was refused: unsupported version, unknown or expired session, wrong secret, broker full (a hello with bad fields gets BAD_REQUEST and may be sent again). */
  HELLO_REFUSED: 4005,
  /** The session was ended by another party (e.g. DELETE /v1/sessions/{id}); after bye the broker closes with 1000. */
  SESSION_ENDED: 4006,
  /** No pong or frame for too long: the broker treats the socket as dead. */
  HEARTBEAT_TIMEOUT: 4007,
  /** The connection broke a rate or size limit badly enough to be dropped. */
  LIMIT_VIOLATION: 4008,
} as const;

export type CloseCodeName = keyof typeof CloseCodes;
export type CloseCode = (typeof CloseCodes)[CloseCodeName];

/** The name of a close code, for logs and client status events. */
export function closeCodeName(code: number): string {
  for (const [name, value] of Object.entries(CloseCodes)) if (value === code) return name;
  return `CODE_${code}`;
}
