import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataDirLockedError } from '../../server/storage/journal/index.js';
import { journalDir, startJournalBroker } from '../fixtures/journal-broker.js';
import { startBrokerProcess } from '../helpers/broker-process.js';
import { RawClient } from '../helpers/raw-client.js';

describe('journal store: one broker per data dir', () => {
  it('refuses a second broker on the same data dir with an error naming the dir', async () => {
    const dir = await journalDir();
    const first = await startJournalBroker(dir);
    const failure = await startJournalBroker(dir).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DataDirLockedError);
    expect((failure as Error).message).toBe(`data directory ${dir} is already locked by this process`);
    // The first broker is unaffected.
    const c = await RawClient.session(first.url, {}, { label: 'client' });
    await c.client.call({ type: 'acquire', name: 'still-works' }, 'granted');
  });

  it('refuses to start next to a live broker process, naming its pid, in-process and on the command line', async () => {
    const dir = await journalDir();
    const child = await startBrokerProcess({ dataDir: dir, label: 'holder' });
    const pid = child.pid!;

    const failure = await startJournalBroker(dir).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DataDirLockedError);
    expect(failure).toMatchObject({ pid, message: `data directory ${dir} is locked by live process ${pid}` });

    const second = await startBrokerProcess({ dataDir: dir, label: 'second', start: false });
    const started = second.spawn().listening;
    await expect(started).rejects.toThrow(/exited \(code 1/);
    expect(second.lastStderr).toContain(`data directory ${dir} is locked by live process ${pid}`);
    child.assertAlive();
  });

  it('takes over the LOCK of a broker process killed with SIGKILL, and logs whose it was', async () => {
    const dir = await journalDir();
    const child = await startBrokerProcess({ dataDir: dir, label: 'doomed' });
    const c = await RawClient.session(child.url, { ttlMs: 10_000 }, { label: 'client' });
    const granted = await c.client.call({ type: 'acquire', name: 'survives' }, 'granted');
    const pid = child.pid!;
    await child.kill9();
    expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${pid}\n`);

    const next = await startJournalBroker(dir);
    expect(next.logs.find(/took over stale LOCK/)).toContain(`took over stale LOCK of dead process ${pid}`);
    expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid}\n`);
    const { lease } = await next.store.get('survives');
    expect(lease).toMatchObject({ token: granted.lease.token, sessionId: c.welcome.sessionId });
  });
});
