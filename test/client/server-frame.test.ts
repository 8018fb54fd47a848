import { describe, expect, it } from 'vitest';
import { serverFrameProblem } from '../../client/server-frame.js';

const lease = { name: 'a', token: 1, revision: 2, owner: 'o', sessionId: 's' };
const event = { kind: 'acquired', revision: 3, name: 'a', token: 1, owner: 'o', sessionId: 's', at: 0 };

describe('serverFrameProblem', () => {
  it.each([
    { type: 'ok', ref: 1, revision: 0 },
    { type: 'granted', ref: 1, lease },
    { type: 'lease', ref: 1, lease: null, revision: 0 },
    { type: 'leases', ref: 1, leases: [lease], revision: 0 },
    { type: 'watching', ref: 1, watchId: 1, revision: 3, snapshot: [lease] },
    { type: 'watching', ref: 1, watchId: 1, revision: 3, events: [event] },
    { type: 'error', code: 'BAD_FRAME', message: 'no ref' },
    { type: 'events', events: [event] },
    { type: 'lost', name: 'a', token: 1, reason: 'lease-ttl' },
    { type: 'queued', ref: 1, name: 'a', position: 1, extra: 'ignored' },
  ])('accepts $type', (frame) => {
    expect(serverFrameProblem(frame)).toBeNull();
  });

  it.each([
    ['a non-map', [1, 2]],
    ['an unknown type', { type: 'surprise', ref: 1 }],
    ['a reply without ref', { type: 'ok' }],
    ['a negative ref', { type: 'ok', ref: -1 }],
    ['a grant without lease', { type: 'granted', ref: 1 }],
    ['a lease with a string token', { type: 'granted', ref: 1, lease: { ...lease, token: '1' } }],
    ['meta that is not binary', { type: 'granted', ref: 1, lease: { ...lease, meta: 'x' } }],
    ['events that are not an array', { type: 'events', events: {} }],
    ['an event without revision', { type: 'events', events: [{ ...event, revision: undefined }] }],
    [
      'a welcome without secret',
      { type: 'welcome', ref: 1, sessionId: 's', ttlMs: 1, heartbeatIntervalMs: 1 },
    ],
  ])('refuses %s', (_, frame) => {
    expect(serverFrameProblem(frame)).toEqual(expect.any(String));
  });
});
