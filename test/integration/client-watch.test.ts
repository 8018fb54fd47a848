import { describe, expect, it } from 'vitest';
import type { WatchItem } from '../../client/index.js';
import { ItemLog, testBroker, testClient, within } from '../client/support.js';

describe('client: watches', () => {
  it('delivers a snapshot, then every change under the prefix in revision order', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url, { owner: 'a' });
    const b = await testClient(broker.url, { owner: 'b' });
    await a.acquire('rooms/1', { meta: 'first' });
    await a.acquire('elsewhere');

    const watch = await b.watch('rooms/');
    const items: WatchItem[] = [];
    const reading = (async () => {
      for await (const item of watch) {
        items.push(item);
        if (item.type === 'event' && item.event.kind === 'released' && item.event.name === 'rooms/2') break;
      }
    })();

    const two = await a.acquire('rooms/2');
    await a.acquire('other/3');
    await two.setMeta('updated');
    await two.release();
    await within(reading, 'the release of rooms/2');

    const [snapshot, ...events] = items;
    expect(snapshot).toMatchObject({ type: 'snapshot', reason: 'initial' });
    if (snapshot?.type !== 'snapshot') throw new Error('no snapshot');
    expect(snapshot.leases.map((l) => l.name)).toEqual(['rooms/1']);
    expect(events.map((i) => (i.type === 'event' ? `${i.event.kind} ${i.event.name}` : i.type))).toEqual([
      'acquired rooms/2',
      'updated rooms/2',
      'released rooms/2',
    ]);
    const revisions = events.map((i) => (i.type === 'event' ? i.event.revision : 0));
    expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
    expect(revisions[0]).toBeGreaterThan(snapshot.revision);
    // Leaving the loop closed the watch.
    expect(watch.closed).toBe(true);
  });

  it('gives each of two overlapping watches every matching event exactly once', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const b = await testClient(broker.url);
    const wide = new ItemLog();
    const narrow = new ItemLog();
    await b.watch('', { onEvent: wide.onEvent });
    await b.watch('jobs/', { onEvent: narrow.onEvent });
    await (await a.acquire('jobs/1')).release();
    await a.acquire('misc');
    await wide.waitForEvent('acquired', 'misc');
    await narrow.waitForEvent('released', 'jobs/1');
    expect(wide.events).toEqual(['acquired jobs/1', 'released jobs/1', 'acquired misc']);
    expect(narrow.events).toEqual(['acquired jobs/1', 'released jobs/1']);
  });

  it('replays from fromRevision instead of a snapshot', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const first = await a.acquire('r/1');
    await a.acquire('r/2');
    await first.release();
    const log = new ItemLog();
    const watch = await a.watch('r/', { fromRevision: 0, onEvent: log.onEvent });
    await log.waitForEvent('released', 'r/1');
    expect(log.items.some((i) => i.type === 'snapshot')).toBe(false);
    expect(log.events).toEqual(['acquired r/1', 'acquired r/2', 'released r/1']);
    expect(watch.revision).toBe(log.revisions.at(-1));
  });

  it('drops the backlog of a slow iterator and starts over from a fresh snapshot', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const b = await testClient(broker.url);
    const watch = await b.watch('busy/', { bufferSize: 3 });
    const it = watch[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ type: 'snapshot', reason: 'initial' });
    // Nobody reads while ten changes happen.
    for (let i = 0; i < 5; i++) await (await a.acquire(`busy/${i}`)).release();
    await a.acquire('busy/last');
    const seen: WatchItem[] = [];
    await within(
      (async () => {
        for (;;) {
          const r = await it.next();
          if (r.done) return;
          seen.push(r.value);
          if (r.value.type === 'snapshot' && r.value.leases.some((l) => l.name === 'busy/last')) return;
          if (r.value.type === 'event' && r.value.event.name === 'busy/last') return;
        }
      })(),
      'the watch to catch up with busy/last',
    );
    expect(seen.some((i) => i.type === 'snapshot' && i.reason === 'overflow')).toBe(true);
    await watch.close();
  });

  it('ends the iteration when the watch or the client closes', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url);
    const w1 = await a.watch('x');
    const w2 = await a.watch('y');
    const drain = async (w: AsyncIterable<WatchItem>) => {
      const got: string[] = [];
      for await (const item of w) got.push(item.type);
      return got;
    };
    const d1 = drain(w1);
    const d2 = drain(w2);
    await w1.close();
    expect(await within(d1, 'the first watch to end')).toEqual(['snapshot']);
    await a.close();
    expect(await within(d2, 'the second watch to end with the client')).toEqual(['snapshot']);
  });
});
