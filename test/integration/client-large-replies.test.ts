import { afterEach, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../client/index.js';
import { type RunningBroker, startBroker } from '../../server/index.js';

// Broker frames can be much larger than any request: the client must read them whole.
let broker: RunningBroker | undefined;
const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await broker?.close();
  broker = undefined;
});

describe('large broker frames', () => {
  it('lists, snapshots and streams thousands of leases without dropping the connection', async () => {
    broker = await startBroker({ port: 0, store: 'memory', logLevel: 'silent' });
    const holder = await connect(broker.url, { owner: 'holder' });
    const reader = await connect(broker.url, { owner: 'reader' });
    clients.push(holder, reader);
    const names = Array.from({ length: 3000 }, (_, i) => `bulk/${String(i).padStart(4, '0')}`);
    const leases = await Promise.all(names.map((n) => holder.acquire(n, { meta: `meta-${n}` })));

    const listed = await reader.list('bulk/');
    expect(listed.map((l) => l.name)).toEqual(names);

    const watch = await reader.watch('bulk/');
    const it = watch[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toMatchObject({ type: 'snapshot', reason: 'initial' });
    if (first.value?.type === 'snapshot') expect(first.value.leases).toHaveLength(3000);
    const seen: string[] = [];
    const released = Promise.all(leases.map((l) => l.release()));
    while (seen.length < names.length) {
      const next = await it.next();
      if (next.done) break;
      const item = next.value;
      // More than the watch's buffer may pile up; it then restarts from a fresh snapshot.
      if (item.type === 'snapshot')
        seen.splice(0, seen.length, ...names.filter((n) => !item.leases.some((l) => l.name === n)));
      else if (item.event.kind === 'released') seen.push(item.event.name);
    }
    await it.return?.();
    await released;
    expect(seen.sort()).toEqual(names);
    expect(reader.status).toBe('connected');
  });
});
