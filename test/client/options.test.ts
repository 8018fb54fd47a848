import { describe, expect, it } from 'vitest';
import { DEFAULT_CONNECT_OPTIONS, resolveOptions } from '../../client/options.js';

describe('resolveOptions', () => {
  it('applies the defaults', () => {
    const o = resolveOptions();
    expect(o.ttlMs).toBe(DEFAULT_CONNECT_OPTIONS.ttlMs);
    expect(o.reconnect).toEqual(DEFAULT_CONNECT_OPTIONS.reconnect);
  });

  it('merges partial reconnect options', () => {
    expect(resolveOptions({ reconnect: { maxDelayMs: 900 } }).reconnect.maxDelayMs).toBe(900);
  });

  it.each([
    [{ ttlMs: 0 }, RangeError, /ttlMs/],
    [{ ttlMs: 1.5 }, RangeError, /ttlMs/],
    [{ requestTimeoutMs: -1 }, RangeError, /requestTimeoutMs/],
    [{ reconnect: { multiplier: 0.5 } }, RangeError, /reconnect\.multiplier/],
    [{ reconnect: { initialDelayMs: 500, maxDelayMs: 100 } }, RangeError, /reconnect\.maxDelayMs/],
    [{ clockDriftRate: 0.5 }, RangeError, /clockDriftRate/],
    [{ owner: 'x'.repeat(300) }, RangeError, /owner/],
    [{ ttlMs: 100, safetyMarginMs: 60 }, RangeError, /ttlMs/],
    [{ WebSocket: 'nope' as never }, TypeError, /WebSocket/],
    [{ reconnect: { newSessionOnExpiry: 'yes' as never } }, TypeError, /newSessionOnExpiry/],
  ])('rejects %j naming the option', (input, type, message) => {
    expect(() => resolveOptions(input)).toThrow(type);
    expect(() => resolveOptions(input)).toThrow(message);
  });
});
