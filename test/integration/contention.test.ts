import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, type LeaseEvent } from '../../client/index.js';
import { type RunningBroker, startBroker } from '../../server/index.js';

// 500 real clients (one WebSocket session each) contend for 10 names with waiting acquires.
// Exclusion is checked three ways: an in-test "resource" per name that refuses stale fencing
// tokens and counts its writes, an occupancy flag per name, and the broker's own event stream.

const CLIENTS = 500;
const NAMES = 10;
const ROUNDS = 3;

/** What a lease protects: it accepts a write only with a token at least the highest it has seen. */
class FencedCounter {
  value = 0;
  highestToken = 0;
  refused = 0;

  write(token: number, next: number): boolean {
    if (token < this.highestToken) {
      this.refused++;
      return false;
    }
    this.highestToken = token;
    this.value = next;
    return true;
  }
}

let broker: RunningBroker;
const clients: Client[] = [];

beforeAll(async () => {
  broker = await startBroker({ port: 0, store: 'memory', logLevel: 'silent' });
});

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  await broker.close();
});

describe('500 clients contending for 10 names', () => {
  it('never have two holders at once, by fencing, by occupancy and by the event stream', {
    timeout: 180_000,
  }, async () => {
    const observer = await connect(broker.url, { owner: 'observer' });
    clients.push(observer);
    const watch = await observer.watch('contend/');
    const events: LeaseEvent[] = [];
    const watching = (async () => {
      for await (const item of watch) if (item.type === 'event') events.push(item.event);
    })();

    for (let i = 0; i < CLIENTS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, CLIENTS - i) }, (_, j) =>
          connect(broker.url, { owner: `c${i + j}` }),
        ),
      );
      clients.push(...batch);
    }

    const counters = Array.from({ length: NAMES }, () => new FencedCounter());
    const occupant: (string | undefined)[] = new Array(NAMES).fill(undefined);
    let overlaps = 0;
    let sections = 0;

    const worker = async (client: Client, index: number) => {
      for (let round = 0; round < ROUNDS; round++) {
        const n = (index * 7 + round * 3) % NAMES;
        await client.withLease(`contend/${n}`, async (lease) => {
          if (occupant[n] !== undefined) overlaps++;
          occupant[n] = `${index}`;
          const read = counters[n] as FencedCounter;
          const before = read.value;
          // Yield so that any other "holder" would get to run inside this section.
          await new Promise((r) => setImmediate(r));
          expect(read.write(lease.token, before + 1)).toBe(true);
          sections++;
          occupant[n] = undefined;
        });
      }
    };
    await Promise.all(clients.slice(1).map((c, i) => worker(c, i)));

    expect(overlaps).toBe(0);
    expect(sections).toBe(CLIENTS * ROUNDS);
    expect(counters.reduce((sum, c) => sum + c.value, 0)).toBe(CLIENTS * ROUNDS);
    expect(counters.reduce((sum, c) => sum + c.refused, 0)).toBe(0);

    // The broker's own story: per name, grants and ends alternate, tokens strictly increase.
    const expected = CLIENTS * ROUNDS * 2;
    const deadline = Date.now() + 30_000;
    while (events.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(events.length).toBe(expected);
    const held = new Map<string, number>();
    const lastToken = new Map<string, number>();
    let lastRevision = 0;
    for (const e of events) {
      expect(e.revision).toBeGreaterThan(lastRevision);
      lastRevision = e.revision;
      if (e.kind === 'acquired') {
        expect(held.has(e.name), `${e.name} granted while held`).toBe(false);
        expect(e.token).toBeGreaterThan(lastToken.get(e.name) ?? 0);
        held.set(e.name, e.token);
        lastToken.set(e.name, e.token);
      } else if (e.kind === 'released' || e.kind === 'expired') {
        expect(held.get(e.name)).toBe(e.token);
        held.delete(e.name);
      }
    }
    expect(events.filter((e) => e.kind === 'expired')).toEqual([]);
    watch.close();
    await watching;
  });
});
