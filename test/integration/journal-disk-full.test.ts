import { describe, expect, it } from 'vitest';
import { defaultJournalWriterIo, type JournalWriterIo } from '../../server/storage/journal/index.js';
import { journalDir, startJournalBroker } from '../fixtures/journal-broker.js';
import { RawClient } from '../helpers/raw-client.js';

/** Journal writes that fail with ENOSPC while `full` is set; failures can be waited for. */
class DiskFull {
  full = false;
  failures = 0;
  private readonly waiters = new Set<() => void>();
  readonly io: Partial<JournalWriterIo> = {
    writev: (handle, buffers, position) => {
      if (this.full) return Promise.reject(this.fail());
      return defaultJournalWriterIo.writev(handle, buffers, position);
    },
  };

  private fail(): Error {
    this.failures++;
    for (const w of [...this.waiters]) w();
    return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  }

  /** Resolves once `count` writes have failed in total, and the writer has seen the last failure. */
  failed(count: number, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failures < count) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        // The writer handles the rejection in later microtasks; resolve after them.
        setImmediate(resolve);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`only ${this.failures} of ${count} journal writes failed within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}

describe('journal store: the disk refuses writes', () => {
  it('answers new changes with UNAVAILABLE, keeps sessions alive, acknowledges nothing unwritten, and recovers by itself', async () => {
    const dir = await journalDir();
    const disk = new DiskFull();
    // The session TTL is shorter than the outage: only heartbeats keep it alive meanwhile.
    const ttlMs = 800;
    const { broker, store, logs, url } = await startJournalBroker(dir, {}, { journal: { io: disk.io } });
    const a = await RawClient.session(url, { ttlMs, owner: 'a' }, { label: 'a' });
    const w = await RawClient.session(url, { ttlMs: 20_000, owner: 'w' }, { label: 'watcher' });
    await w.client.call({ type: 'watch', prefix: '' }, 'watching');
    const before = await a.client.call({ type: 'acquire', name: 'before' }, 'granted');
    await w.client.waitForEvents((evs) => evs.some((e) => e.name === 'before'), {
      label: "'before' acquired",
    });

    disk.full = true;
    const outageStarted = performance.now();
    const inFlightRef = a.client.ref();
    const inFlightMark = a.client.mark();
    a.client.send({ type: 'acquire', ref: inFlightRef, name: 'during' });
    await disk.failed(1);
    expect(store.writable).toBe(false);
    expect((await fetch(`${broker.httpUrl}/readyz`)).status).toBe(503);

    // D2: new changes are refused at once, with a retryable code; reads that need no write still answer.
    const refused = await a.client.request({ type: 'acquire', name: 'refused' });
    expect(refused).toMatchObject({ type: 'error', code: 'UNAVAILABLE' });
    expect((refused as { message: string }).message).toMatch(/ENOSPC/);
    const release = await a.client.request({ type: 'release', name: 'before', token: before.lease.token });
    expect(release).toMatchObject({ type: 'error', code: 'UNAVAILABLE' });
    const newcomer = await RawClient.open(url, { label: 'newcomer' });
    expect(await newcomer.request({ type: 'hello', version: 1 })).toMatchObject({
      type: 'error',
      code: 'UNAVAILABLE',
    });
    expect((await newcomer.waitForClose()).code).toBe(4005);
    await a.client.call({ type: 'keepalive' }, 'ok');

    // Keep failing for longer than the session TTL (the writer backs off: 50, 100, 200, 400, 800 ms).
    await disk.failed(6);
    expect(performance.now() - outageStarted).toBeGreaterThan(ttlMs);
    await a.client.call({ type: 'keepalive' }, 'ok');
    expect(a.client.closed).toBeUndefined();
    // Nothing about the change in flight reached anyone: no reply, no event.
    expect(a.client.frames.slice(inFlightMark).filter((f) => 'ref' in f && f.ref === inFlightRef)).toEqual(
      [],
    );
    expect(w.client.events().filter((e) => e.name === 'during')).toEqual([]);

    // Space comes back: the writer's retry succeeds on its own and the change in flight completes.
    disk.full = false;
    const granted = await a.client.replyTo(inFlightRef, {
      what: "the acquire of 'during'",
      timeoutMs: 10_000,
    });
    expect(granted).toMatchObject({
      type: 'granted',
      lease: { name: 'during', token: before.lease.token + 1 },
    });
    await w.client.waitForEvents((evs) => evs.some((e) => e.name === 'during' && e.kind === 'acquired'), {
      label: "'during' acquired",
    });
    expect(store.writable).toBe(true);
    expect((await fetch(`${broker.httpUrl}/readyz`)).status).toBe(200);
    expect(logs.find(/succeed again after \d+ failed attempt/)).toBeDefined();
    await a.client.call({ type: 'release', name: 'before', token: before.lease.token }, 'ok');
    await RawClient.session(url, {}, { label: 'newcomer again' });

    // And it is durable: a restart has it.
    await broker.close();
    const again = await startJournalBroker(dir);
    expect((await again.store.list('')).leases.map((l) => [l.name, l.token])).toEqual([
      ['during', before.lease.token + 1],
    ]);
  });

  it('shuts down while writes still fail, without acknowledging or keeping the unwritten change', async () => {
    const dir = await journalDir();
    const disk = new DiskFull();
    const { broker, store, url } = await startJournalBroker(dir, {}, { journal: { io: disk.io } });
    const a = await RawClient.session(url, { ttlMs: 10_000, owner: 'a' }, { label: 'a' });
    const kept = await a.client.call({ type: 'acquire', name: 'kept' }, 'granted');
    disk.full = true;
    const ref = a.client.ref();
    a.client.send({ type: 'acquire', ref, name: 'stuck' });
    await disk.failed(1);
    expect(store.writable).toBe(false);

    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      broker.close().then(() => 'closed'),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve('still closing after 5 s'), 5_000);
      }),
    ]);
    clearTimeout(timer);
    expect(closed).toBe('closed');
    expect(a.client.frames.filter((f) => f.type === 'granted' && f.ref === ref)).toEqual([]);

    disk.full = false;
    const again = await startJournalBroker(dir);
    expect((await again.store.list('')).leases.map((l) => [l.name, l.token])).toEqual([
      ['kept', kept.lease.token],
    ]);
  });
});
