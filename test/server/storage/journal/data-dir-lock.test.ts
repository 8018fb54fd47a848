import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDataDirLock, DataDirLockedError } from '../../../../server/storage/journal/data-dir-lock.js';
import { useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
});

async function spawnSleeper(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  return child;
}

describe('acquireDataDirLock', () => {
  it('creates LOCK with our pid and removes it on release', async () => {
    const dir = await tempDir();
    const release = await acquireDataDirLock(dir);
    expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid}\n`);
    // No temp files are left next to it.
    expect(await readdir(dir)).toEqual(['LOCK']);
    await release();
    expect(await readdir(dir)).toEqual([]);
    await release();
  });

  it('refuses a directory whose LOCK names a live process, saying which pid holds which dir', async () => {
    const dir = await tempDir();
    const child = await spawnSleeper();
    await writeFile(join(dir, 'LOCK'), `${child.pid}\n`);
    const attempt = acquireDataDirLock(dir);
    await expect(attempt).rejects.toBeInstanceOf(DataDirLockedError);
    await expect(attempt).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED', pid: child.pid, dir });
    await expect(attempt).rejects.toThrow(new RegExp(`${dir}.*live process ${child.pid}`));
    expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${child.pid}\n`);
  });

  it('takes over a LOCK left by a process that was killed, and logs it', async () => {
    const dir = await tempDir();
    const child = await spawnSleeper();
    const deadPid = child.pid!;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    await writeFile(join(dir, 'LOCK'), `${deadPid}\n`);
    const logs: string[] = [];
    const release = await acquireDataDirLock(dir, { log: (line) => logs.push(line) });
    expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid}\n`);
    expect(logs).toEqual([expect.stringContaining(`stale LOCK of dead process ${deadPid}`)]);
    expect((await readdir(dir)).sort()).toEqual(['LOCK']);
    await release();
  });

  it('takes over a LOCK naming our own pid left by an earlier process, but refuses a second acquire in this process', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'LOCK'), `${process.pid}\n`);
    const logs: string[] = [];
    const release = await acquireDataDirLock(dir, { log: (line) => logs.push(line) });
    expect(logs).toEqual([expect.stringContaining('earlier process with this pid')]);
    await expect(acquireDataDirLock(dir)).rejects.toMatchObject({
      code: 'DATA_DIR_LOCKED',
      pid: process.pid,
    });
    await release();
    const again = await acquireDataDirLock(dir);
    await again();
  });

  it('refuses a LOCK that names no pid instead of guessing', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'LOCK'), 'hello');
    await expect(acquireDataDirLock(dir)).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED', pid: undefined });
  });
});
