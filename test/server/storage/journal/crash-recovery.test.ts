import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readJournal } from '../../../../server/storage/journal/journal-reader.js';
import { JournalWriter } from '../../../../server/storage/journal/journal-writer.js';
import type { FsyncMode } from '../../../../server/storage/journal/journal-writer-options.js';
import { bytes, text, useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();
const childScript = fileURLToPath(new URL('./append-until-killed.ts', import.meta.url));
const ACKS_BEFORE_KILL = 3000;

/** Runs the appending child until it has acknowledged enough records, kills it, returns the highest ack. */
async function appendThenKill(dir: string, fsync: FsyncMode): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, dir, fsync], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let highestAck = 0;
  let acks = 0;
  let stderr = '';
  let partial = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit');
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`child acknowledged only ${acks} records in 20 s; stderr: ${stderr}`)),
        20_000,
      );
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`child exited early with ${code}; stderr: ${stderr}`));
      });
      child.stdout.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          highestAck = Math.max(highestAck, Number(line));
          acks++;
        }
        if (acks >= ACKS_BEFORE_KILL) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  // Lines the child wrote before dying but that arrived after the kill are acknowledgements too.
  for (const line of partial.split('\n'))
    if (/^\d+$/.test(line)) highestAck = Math.max(highestAck, Number(line));
  return highestAck;
}

describe('journal after kill -9', () => {
  it.each<FsyncMode>(['batch', 'none'])(
    'keeps every acknowledged record and reuses no sequence number (fsync %s)',
    async (fsync) => {
      const dir = await tempDir();
      const highestAck = await appendThenKill(dir, fsync);
      expect(highestAck).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);

      const reading = readJournal(dir, { log: () => {} });
      let expectedSeq = 1;
      for await (const { seq, payload } of reading) {
        expect(seq).toBe(expectedSeq++);
        expect(text(payload)).toBe(`p${seq - 1}`);
      }
      const { nextSeq } = reading.summary;
      expect(nextSeq).toBe(expectedSeq);
      expect(nextSeq! - 1).toBeGreaterThanOrEqual(highestAck);

      const writer = await JournalWriter.open(dir);
      expect(await writer.append(bytes('after restart'))).toBe(nextSeq);
      await writer.close();
    },
  );
});
