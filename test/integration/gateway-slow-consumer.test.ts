import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../shared/close-codes.js';
import { RawClient, startScene } from '../helpers/raw-client.js';

// W6: a watcher that stops reading must not grow the broker's memory without bound; it is
// dropped with 4004 once its unsent bytes pass maxBufferedBytes, and nobody else notices.

describe('a watcher that never reads', () => {
  it('is closed with 4004 once it falls maxBufferedBytes behind, and nothing more is queued for it', async () => {
    const maxBufferedBytes = 256 * 1024;
    const scene = await startScene({ maxBufferedBytes, maxRequestsPerSecond: 1_000_000 });
    const hub = scene.broker.broker.hub;
    const { client: slow } = await RawClient.session(scene.url, {}, { label: 'slow watcher' });
    await slow.call({ type: 'watch', prefix: 'slow/' }, 'watching');
    const watchersBefore = hub.size;
    // Stop reading: the socket is paused, so the kernel buffers fill, then the broker's.
    slow.ws.pause();
    const { client: producer } = await RawClient.session(scene.url, {}, { label: 'producer' });

    const meta = new Uint8Array(1000);
    const batchSize = 200;
    let revision = 0;
    /** Acquires and releases batchSize leases with 1 KB of meta: 2 × batchSize events of ~1.1 KB. */
    const produceBatch = async (batch: number) => {
      const refs: number[] = [];
      for (let i = 0; i < batchSize; i++) {
        const ref = producer.ref();
        refs.push(ref);
        producer.send({ type: 'acquire', ref, name: `slow/${batch}/${i}`, meta });
      }
      const since = producer.mark();
      let last = 0;
      for (const ref of refs) {
        const granted = await producer.replyTo(ref, {});
        if (granted.type !== 'granted') throw new Error(`acquire answered ${granted.type}`);
        last = producer.ref();
        producer.send({ type: 'release', ref: last, name: granted.lease.name, token: granted.lease.token });
      }
      const ok = await producer.replyTo(last, { since });
      if (ok.type !== 'ok') throw new Error(`release answered ${ok.type}`);
      revision = ok.revision;
    };

    // Produce until the broker gives up on the slow watcher (its watch leaves the hub).
    let producedBytes = 0;
    for (let batch = 0; hub.size === watchersBefore; batch++) {
      if (producedBytes > 64 * 1024 * 1024) throw new Error('the slow watcher was never dropped');
      await produceBatch(batch);
      producedBytes += 2 * batchSize * 1100;
    }
    const droppedAtRevision = revision;
    // Keep producing: none of this may be queued for the dropped watcher.
    for (let batch = 1000; batch < 1005; batch++) await produceBatch(batch);
    expect(hub.size).toBe(watchersBefore - 1);

    // Read again: the backlog written before the drop, then the close frame with 4004.
    slow.ws.resume();
    const close = await slow.waitForClose(10_000);
    expect(close.code).toBe(CloseCodes.SLOW_CONSUMER);
    const received = slow.events();
    expect(received.length).toBeGreaterThan(0);
    expect(Math.max(...received.map((e) => e.revision))).toBeLessThanOrEqual(droppedAtRevision);
    // What it was sent is bounded by the limit plus what the kernel buffers took, not by what was produced.
    const bytesSent = received.length * 1100;
    expect(bytesSent).toBeLessThan(maxBufferedBytes + 8 * 1024 * 1024);
    // Everyone else kept up and was left alone.
    await scene.bystander.expectUndisturbed({ allowEventsFor: (n) => n.startsWith('slow/') });
  });
});
