/**
 * The wire protocol version. Bumping it is a deliberate act: document the change in
 * docs/PROTOCOL.md and keep the broker answering older versions it still supports (rule P1).
 */
export const PROTOCOL_VERSION = 1;

/** Versions this build of the broker accepts in `hello`. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];

/** The WebSocket endpoint path for protocol version 1. */
export const WS_PATH = '/v1';
