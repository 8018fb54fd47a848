/**
 * The slice of the WebSocket API the client uses. The browser's `WebSocket` and the `ws`
 * package's both fit it, so either can be passed as the `WebSocket` option.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the TCP connection at once, without a closing handshake. */
  terminate?(): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

/** A WebSocket class: `new WebSocket(url)`. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/**
 * Picks the WebSocket implementation: the injected one, else `globalThis.WebSocket` (browsers,
 * Node ≥ 22), else the `ws` package, imported lazily so that browser bundles never see it.
 */
export async function resolveWebSocket(
  injected: WebSocketConstructor | undefined,
): Promise<WebSocketConstructor> {
  if (injected) return injected;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof global === 'function') return global;
  // A variable specifier keeps bundlers from trying to pull `ws` into browser builds.
  const specifier = 'ws';
  let mod: { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor };
  try {
    mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as typeof mod;
  } catch (cause) {
    throw new Error('no WebSocket implementation found: pass the `WebSocket` option or install `ws`', {
      cause,
    });
  }
  const ctor = mod.WebSocket ?? mod.default;
  if (typeof ctor !== 'function') throw new Error('the `ws` package does not export a WebSocket class');
  return ctor;
}
