import { readdir, stat } from 'node:fs/promises';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { JournalWriteError } from '../../../../server/storage/journal/journal-errors.js';
import { readJournal } from '../../../../server/storage/journal/journal-reader.js';
import { JournalWriter } from '../../../../server/storage/journal/journal-writer.js';
import {
  defaultJournalWriterIo,
  type FsyncMode,
  type JournalWriterIo,
} from '../../../../server/storage/journal/journal-writer-options.js';
import { bytes, text, useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();

async function readAll(dir: string, fromSeq?: number) {
  const logs: string[] = [];
  const reading = readJournal(dir, { fromSeq, log: (line) => logs.push(line) });
  const records: { seq: number; text: string }[] = [];
  for await (const record of reading) records.push({ seq: record.seq, text: text(record.payload) });
  return { records, summary: reading.summary, logs };
}

/**
 * Whether `work` settles before any (fake) timer is armed; checked on every turn of the event loop.
 * Needs fake timers, which never fire, so work that waits for a timer cannot settle first.
 */
async function settlesWithoutTimer(work: Promise<unknown>): Promise<'settled' | 'timer armed'> {
  let settled = false;
  const done = work.then(() => {
    settled = true;
    return 'settled' as const;
  });
  const armed = new Promise<'timer armed'>((resolve) => {
    const check = (): void => {
      if (settled) return;
      if (vi.getTimerCount() > 0) resolve('timer armed');
      else setImmediate(check);
    };
    check();
  });
  return Promise.race([done, armed]);
}

function enospc(): Error {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
}

describe('JournalWriter', () => {
  it('numbers records from 1 in a new directory and reads them back in order', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir);
    expect(writer.nextSeq).toBe(1);
    expect(await writer.append(bytes('a'))).toBe(1);
    expect(await writer.append(bytes('bb'))).toBe(2);
    expect(await writer.append(new Uint8Array(0))).toBe(3);
    expect(writer.nextSeq).toBe(4);
    await writer.close();
    const { records, summary } = await readAll(dir);
    expect(records).toEqual([
      { seq: 1, text: 'a' },
      { seq: 2, text: 'bb' },
      { seq: 3, text: '' },
    ]);
    expect(summary.nextSeq).toBe(4);
  });

  it('rolls to a new segment named by its first sequence number and reads across the roll', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir, { segmentBytes: 200 });
    const payloads = Array.from({ length: 40 }, (_, i) => `record-${i + 1}`.padEnd(20, '.'));
    for (const payload of payloads) await writer.append(bytes(payload));
    await writer.close();
    const names = (await readdir(dir)).sort();
    expect(names.length).toBeGreaterThan(4);
    expect(names[0]).toBe('000000000000000001.wal');
    for (const name of names) {
      expect(name).toMatch(/^\d{18}\.wal$/);
      // A record goes to a new segment if it would take the current one past segmentBytes.
      expect((await stat(`${dir}/${name}`)).size).toBeLessThanOrEqual(200);
    }
    expect(writer.stats.segmentsCreated).toBe(names.length);
    const { records, summary } = await readAll(dir);
    expect(records.map((r) => r.text)).toEqual(payloads);
    expect(records.map((r) => r.seq)).toEqual(payloads.map((_, i) => i + 1));
    expect(summary.tornTail).toBeUndefined();
  });

  it('continues numbering after the last record when reopened', async () => {
    const dir = await tempDir();
    const first = await JournalWriter.open(dir, { segmentBytes: 100 });
    for (let i = 0; i < 10; i++) await first.append(bytes(`x${i}`));
    await first.close();
    const second = await JournalWriter.open(dir, { segmentBytes: 100 });
    expect(second.nextSeq).toBe(11);
    expect(await second.append(bytes('after reopen'))).toBe(11);
    await second.close();
    const { records } = await readAll(dir);
    expect(records.at(-1)).toEqual({ seq: 11, text: 'after reopen' });
    expect(records).toHaveLength(11);
  });

  it('starts at firstSeq in an empty directory', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir, { firstSeq: 500 });
    expect(await writer.append(bytes('x'))).toBe(500);
    await writer.close();
    expect((await readdir(dir)).sort()).toEqual(['000000000000000500.wal']);
  });

  it('refuses a firstSeq beyond the end of an existing journal instead of leaving a gap', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir);
    await writer.append(bytes('one'));
    await writer.close();
    await expect(JournalWriter.open(dir, { firstSeq: 5 })).rejects.toMatchObject({
      name: 'JournalCorruptError',
      reason: expect.stringMatching(/continues at 2 but firstSeq 5/),
    });
    const reopened = await JournalWriter.open(dir, { firstSeq: 2 });
    expect(reopened.nextSeq).toBe(2);
    await reopened.close();
  });

  it.each<FsyncMode>(['always', 'batch', 'none'])(
    'keeps order and sequence numbers under 1,000 concurrent appends with fsync %s',
    async (fsync) => {
      const dir = await tempDir();
      const writer = await JournalWriter.open(dir, { fsync, segmentBytes: 8 * 1024 });
      const settled: number[] = [];
      const appends = Array.from({ length: 1000 }, (_, i) =>
        writer.append(bytes(`payload-${i}`)).then((seq) => {
          settled.push(seq);
          return seq;
        }),
      );
      const seqs = await Promise.all(appends);
      expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect(settled).toEqual(seqs);
      expect(writer.stats.records).toBe(1000);
      expect(writer.stats.segmentsCreated).toBeGreaterThan(1);
      await writer.close();
      const { records } = await readAll(dir);
      expect(records).toEqual(seqs.map((seq) => ({ seq, text: `payload-${seq - 1}` })));
    },
  );

  it('syncs every record on its own in always mode', async () => {
    const dir = await tempDir();
    let syncs = 0;
    const io: Partial<JournalWriterIo> = {
      datasync: (handle) => {
        syncs++;
        return handle.datasync();
      },
    };
    const writer = await JournalWriter.open(dir, { fsync: 'always', io });
    await Promise.all(Array.from({ length: 50 }, (_, i) => writer.append(bytes(`r${i}`))));
    expect(syncs).toBe(50);
    expect(writer.stats).toMatchObject({ records: 50, batches: 50, syncs: 50 });
    await writer.close();
  });

  it('group-commits 1,000 concurrent appends in batch mode with far fewer syncs than records', async () => {
    const dir = await tempDir();
    let syncs = 0;
    let writes = 0;
    const io: Partial<JournalWriterIo> = {
      writev: (handle, buffers, position) => {
        writes++;
        return defaultJournalWriterIo.writev(handle, buffers, position);
      },
      datasync: (handle) => {
        syncs++;
        return handle.datasync();
      },
    };
    const writer = await JournalWriter.open(dir, { fsync: 'batch', maxBatchRecords: 100, io });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => writer.append(bytes(`r${i}`))));
    // Bounded by maxBatchRecords: at least 10 batches, each one writev and one fdatasync.
    expect(syncs).toBe(10);
    expect(writes).toBe(10);
    expect(writer.stats).toMatchObject({ records: 1000, batches: 10, syncs: 10 });
    await writer.close();
  });

  it('gathers appends that arrive while a sync is in flight into one write and one sync', async () => {
    const dir = await tempDir();
    let syncReached!: () => void;
    let releaseSync!: () => void;
    const reached = new Promise<void>((resolve) => {
      syncReached = resolve;
    });
    const released = new Promise<void>((resolve) => {
      releaseSync = resolve;
    });
    let calls = 0;
    const io: Partial<JournalWriterIo> = {
      datasync: async (handle) => {
        await handle.datasync();
        // Hold the first batch's sync open so that the test can queue appends behind it.
        if (calls++ === 0) {
          syncReached();
          await released;
        }
      },
    };
    const writer = await JournalWriter.open(dir, { fsync: 'batch', io });
    const lone = writer.append(bytes('lone'));
    await reached;
    const gathered = Array.from({ length: 30 }, (_, i) => writer.append(bytes(`g${i}`)));
    releaseSync();
    expect(await lone).toBe(1);
    expect(await Promise.all(gathered)).toEqual(Array.from({ length: 30 }, (_, i) => i + 2));
    expect(writer.stats).toMatchObject({ records: 31, batches: 2, syncs: 2 });
    await writer.close();
  });

  it.each([
    { maxBatchDelayMs: 2, batches: 2 },
    { maxBatchDelayMs: 0, batches: 3 },
  ])(
    'under load, waits up to maxBatchDelayMs $maxBatchDelayMs to fill the next batch',
    async ({ maxBatchDelayMs, batches }) => {
      const dir = await tempDir();
      let syncReached!: () => void;
      let releaseSync!: () => void;
      const reached = new Promise<void>((resolve) => {
        syncReached = resolve;
      });
      const released = new Promise<void>((resolve) => {
        releaseSync = resolve;
      });
      let calls = 0;
      const io: Partial<JournalWriterIo> = {
        datasync: async (handle) => {
          await handle.datasync();
          if (calls++ === 0) {
            syncReached();
            await released;
          }
        },
      };
      const writer = await JournalWriter.open(dir, { maxBatchRecords: 2, maxBatchDelayMs, io });
      // Two appends in one tick: a batch of two, a sign of load.
      const firstBatch = [writer.append(bytes('a1')), writer.append(bytes('a2'))];
      await reached;
      const b1 = writer.append(bytes('b1'));
      releaseSync();
      // Runs after the first batch settled (microtasks) and before any timer: with a delay, the writer
      // is lingering now and b2 fills its batch; without, b1 has already gone alone.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const b2 = writer.append(bytes('b2'));
      expect(await Promise.all([...firstBatch, b1, b2])).toEqual([1, 2, 3, 4]);
      expect(writer.stats.batches).toBe(batches);
      await writer.close();
    },
  );

  it('finishes a write that the OS accepted only in part', async () => {
    const dir = await tempDir();
    const io: Partial<JournalWriterIo> = {
      // At most 7 bytes per call, so records and headers are split at odd places.
      writev: async (handle, buffers, position) => {
        const first = buffers[0]!;
        const { bytesWritten } = await handle.write(first, 0, Math.min(7, first.length), position);
        return bytesWritten;
      },
    };
    const writer = await JournalWriter.open(dir, { io });
    const texts = Array.from({ length: 20 }, (_, i) => `short-write-${i}`);
    await Promise.all(texts.map((t) => writer.append(bytes(t))));
    await writer.close();
    expect((await readAll(dir)).records.map((r) => r.text)).toEqual(texts);
  });

  it('writes in none mode without any fdatasync, yet groups writes', async () => {
    const dir = await tempDir();
    let syncs = 0;
    const io: Partial<JournalWriterIo> = {
      datasync: (handle) => {
        syncs++;
        return handle.datasync();
      },
    };
    const writer = await JournalWriter.open(dir, { fsync: 'none', io });
    await Promise.all(Array.from({ length: 500 }, (_, i) => writer.append(bytes(`r${i}`))));
    expect(syncs).toBe(0);
    expect(writer.stats.syncs).toBe(0);
    expect(writer.stats.batches).toBeLessThan(10);
    await writer.close();
    // A clean close syncs even in none mode.
    expect(syncs).toBe(1);
    expect((await readAll(dir)).records).toHaveLength(500);
  });

  it('does not make a lone append wait for maxBatchDelayMs, even right after a burst', async () => {
    const dir = await tempDir();
    // Only timers are fake: file I/O is real. A writer that lingers arms a timer, which never fires.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const writer = await JournalWriter.open(dir, { fsync: 'none', maxBatchDelayMs: 2 });
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 5 }, (_, i) => writer.append(bytes(`burst-${round}-${i}`))));
      expect(await settlesWithoutTimer(writer.append(bytes(`lone-${round}`)))).toBe('settled');
    }
    await writer.close();
  });

  it('rejects a failed batch with a JournalWriteError, goes unhealthy, and recovers with no garbage left behind', async () => {
    const dir = await tempDir();
    let failing = false;
    let sizeAtFailure = 0;
    const io: Partial<JournalWriterIo> = {
      writev: async (handle, buffers, position) => {
        if (!failing) return defaultJournalWriterIo.writev(handle, buffers, position);
        // The disk fills up part way: the first buffers reach the file, then the write fails.
        await defaultJournalWriterIo.writev(handle, buffers.slice(0, 3), position);
        sizeAtFailure = (await handle.stat()).size;
        throw enospc();
      },
    };
    const writer = await JournalWriter.open(dir, { io });
    expect(await Promise.all([1, 2, 3].map((i) => writer.append(bytes(`good-${i}`))))).toEqual([1, 2, 3]);
    expect(writer.healthy).toBe(true);
    const fileBefore = (await stat(writer.currentFile)).size;

    failing = true;
    const doomed = Array.from({ length: 5 }, (_, i) => writer.append(bytes(`doomed-${i}-${'z'.repeat(40)}`)));
    const outcomes = await Promise.allSettled(doomed);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason;
      expect(reason).toBeInstanceOf(JournalWriteError);
      expect(reason).toMatchObject({ code: 'ENOSPC', file: writer.currentFile, offset: fileBefore });
      expect((reason as Error).cause).toMatchObject({ code: 'ENOSPC' });
    }
    expect(writer.healthy).toBe(false);
    expect(writer.lastError?.code).toBe('ENOSPC');
    expect(writer.nextSeq).toBe(4);
    // The partial write reached the file and was cut off again.
    expect(sizeAtFailure).toBeGreaterThan(fileBefore);
    expect((await stat(writer.currentFile)).size).toBe(fileBefore);

    failing = false;
    expect(await writer.append(bytes('after-fault'))).toBe(4);
    expect(writer.healthy).toBe(true);
    expect(writer.stats.writeErrors).toBe(1);
    await writer.close();

    const { records, summary } = await readAll(dir);
    expect(records).toEqual([
      { seq: 1, text: 'good-1' },
      { seq: 2, text: 'good-2' },
      { seq: 3, text: 'good-3' },
      { seq: 4, text: 'after-fault' },
    ]);
    expect(summary.tornTail).toBeUndefined();
  });

  it('with retryFailedWrites, keeps failed appends pending and writes them once the disk accepts writes again', async () => {
    const dir = await tempDir();
    let failing = true;
    let attempts = 0;
    let thirdAttempt!: () => void;
    const threeAttempts = new Promise<void>((resolve) => {
      thirdAttempt = resolve;
    });
    const io: Partial<JournalWriterIo> = {
      writev: async (handle, buffers, position) => {
        if (!failing) return defaultJournalWriterIo.writev(handle, buffers, position);
        await defaultJournalWriterIo.writev(handle, buffers.slice(0, 1), position);
        if (++attempts === 3) thirdAttempt();
        throw enospc();
      },
    };
    const logs: string[] = [];
    const writer = await JournalWriter.open(dir, {
      io,
      retryFailedWrites: true,
      retryDelayMs: 1,
      maxRetryDelayMs: 4,
      log: (line) => logs.push(line),
    });
    let settled = 0;
    const appends = ['x', 'y', 'z'].map((t) =>
      writer.append(bytes(t)).finally(() => {
        settled++;
      }),
    );
    await threeAttempts;
    expect(settled).toBe(0);
    expect(writer.healthy).toBe(false);
    expect(writer.lastError).toMatchObject({ code: 'ENOSPC', records: 3 });
    expect(logs[0]).toMatch(/ENOSPC.*retrying 3 record\(s\) in 1 ms/);

    failing = false;
    expect(await Promise.all(appends)).toEqual([1, 2, 3]);
    expect(writer.healthy).toBe(true);
    expect(logs.at(-1)).toMatch(/succeed again after \d+ failed attempt/);
    await writer.close();
    expect((await readAll(dir)).records.map((r) => r.text)).toEqual(['x', 'y', 'z']);
  });

  it('with retryFailedWrites, rejects appends still failing when the writer is closed', async () => {
    const dir = await tempDir();
    let attempts = 0;
    const io: Partial<JournalWriterIo> = {
      writev: async () => {
        attempts++;
        throw enospc();
      },
    };
    let retryScheduled!: () => void;
    const waitingForRetry = new Promise<void>((resolve) => {
      retryScheduled = resolve;
    });
    const writer = await JournalWriter.open(dir, {
      io,
      retryFailedWrites: true,
      retryDelayMs: 60_000,
      maxRetryDelayMs: 60_000,
      log: (line) => {
        if (line.includes('retrying')) retryScheduled();
      },
    });
    const pending = writer.append(bytes('never durable'));
    const rejected = expect(pending).rejects.toMatchObject({ name: 'JournalWriteError', code: 'ENOSPC' });
    await waitingForRetry;
    // close() cuts the minute-long backoff short, tries once more, then gives up on the batch.
    await writer.close();
    await rejected;
    expect(attempts).toBe(2);
  });

  it('does not acknowledge records whose fdatasync failed, and cuts them off the file', async () => {
    const dir = await tempDir();
    let failSync = false;
    const io: Partial<JournalWriterIo> = {
      datasync: async (handle) => {
        if (failSync) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        await handle.datasync();
      },
    };
    const writer = await JournalWriter.open(dir, { io });
    await writer.append(bytes('kept'));
    failSync = true;
    await expect(writer.append(bytes('lost'))).rejects.toMatchObject({
      name: 'JournalWriteError',
      code: 'EIO',
    });
    expect(writer.healthy).toBe(false);
    failSync = false;
    expect(await writer.append(bytes('next'))).toBe(2);
    await writer.close();
    expect((await readAll(dir)).records).toEqual([
      { seq: 1, text: 'kept' },
      { seq: 2, text: 'next' },
    ]);
  });

  it('rejects appends after close and payloads over maxRecordBytes', async () => {
    const dir = await tempDir();
    const writer = await JournalWriter.open(dir, { maxRecordBytes: 10 });
    await expect(writer.append(new Uint8Array(11))).rejects.toThrow(RangeError);
    const pending = writer.append(bytes('in time'));
    await writer.close();
    expect(await pending).toBe(1);
    await expect(writer.append(bytes('late'))).rejects.toMatchObject({ code: 'JOURNAL_CLOSED' });
  });

  it('rejects contradictory or out-of-range options naming the option', async () => {
    const dir = await tempDir();
    await expect(JournalWriter.open(dir, { maxBatchDelayMs: 5 })).rejects.toThrow(/maxBatchDelayMs/);
    await expect(JournalWriter.open(dir, { segmentBytes: 10 })).rejects.toThrow(/segmentBytes/);
    await expect(JournalWriter.open(dir, { fsync: 'sometimes' as FsyncMode })).rejects.toThrow(/fsync/);
  });
});
