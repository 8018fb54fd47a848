import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, realpath, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from './journal-errors.js';
import { fsyncDir } from './segment-files.js';

export const LOCK_FILE_NAME = 'LOCK';

/** Another live process (or this one, through an earlier acquire) holds the data directory. */
export class DataDirLockedError extends Error {
  readonly code = 'DATA_DIR_LOCKED';
  readonly dir: string;
  /** The holder's pid; undefined when the LOCK file does not name one. */
  readonly pid: number | undefined;

  constructor(dir: string, pid: number | undefined, message: string) {
    super(message);
    this.name = 'DataDirLockedError';
    this.dir = dir;
    this.pid = pid;
  }
}

export interface DataDirLockOptions {
  log?: (line: string) => void;
}

export type ReleaseDataDirLock = () => Promise<void>;

// Directories locked by this process, by real path: the pid check alone cannot tell a second
// acquire in this process from a LOCK left by an earlier process that had the same pid.
const heldHere = new Set<string>();

/**
 * Takes the `LOCK` file of `dir` for this process, creating `dir` if needed. Throws
 * {@link DataDirLockedError} if a live process holds it; takes over (and logs) a LOCK whose pid is
 * dead, as after `kill -9`. Resolves with a function that releases the lock.
 *
 * Two processes taking over the same stale LOCK at the same instant can both succeed; a live
 * holder is always respected.
 */
export async function acquireDataDirLock(
  dir: string,
  options: DataDirLockOptions = {},
): Promise<ReleaseDataDirLock> {
  const log = options.log ?? ((line: string) => console.warn(line));
  await mkdir(dir, { recursive: true });
  const key = await realpath(dir);
  if (heldHere.has(key)) {
    throw new DataDirLockedError(dir, process.pid, `data directory ${dir} is already locked by this process`);
  }
  const lockPath = join(dir, LOCK_FILE_NAME);
  // The LOCK is published whole: written under a unique temp name, then hard-linked into place
  // (exclusive like O_EXCL) or renamed over a stale one. Nobody ever sees a half-written LOCK.
  const tempPath = join(dir, `${LOCK_FILE_NAME}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const temp = await open(tempPath, 'wx');
  try {
    await temp.writeFile(`${process.pid}\n`);
    await temp.sync();
  } finally {
    await temp.close();
  }
  try {
    await publish(dir, lockPath, tempPath, log);
    await fsyncDir(dir);
  } finally {
    await unlink(tempPath).catch(() => {});
  }
  heldHere.add(key);

  let released = false;
  return async () => {
    if (released) return;
    released = true;
    heldHere.delete(key);
    const holder = await readLockPid(lockPath);
    if (holder !== process.pid) {
      log(`data dir ${dir}: LOCK no longer names this process (it names ${String(holder)}); leaving it`);
      return;
    }
    await unlink(lockPath);
    await fsyncDir(dir);
  };
}

async function publish(
  dir: string,
  lockPath: string,
  tempPath: string,
  log: (line: string) => void,
): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await link(tempPath, lockPath);
      return;
    } catch (error) {
      if (errorCode(error, '') !== 'EEXIST') {
        throw new Error(`creating ${lockPath} failed`, { cause: error });
      }
    }
    const holder = await readLockPid(lockPath);
    if (holder === 'missing') continue;
    if (holder === undefined) {
      throw new DataDirLockedError(
        dir,
        undefined,
        `${lockPath} exists but does not name a pid; remove it if no leasewire process uses ${dir}`,
      );
    }
    if (holder !== process.pid && isAlive(holder)) {
      throw new DataDirLockedError(dir, holder, `data directory ${dir} is locked by live process ${holder}`);
    }
    await rename(tempPath, lockPath);
    const now = await readLockPid(lockPath);
    if (now !== process.pid) {
      const pid = typeof now === 'number' ? now : undefined;
      throw new DataDirLockedError(
        dir,
        pid,
        `data directory ${dir} was taken over by process ${String(now)} at the same time`,
      );
    }
    log(
      holder === process.pid
        ? `data dir ${dir}: took over LOCK left by an earlier process with this pid (${holder})`
        : `data dir ${dir}: took over stale LOCK of dead process ${holder}`,
    );
    return;
  }
  throw new DataDirLockedError(dir, undefined, `data directory ${dir}: LOCK keeps appearing and vanishing`);
}

async function readLockPid(lockPath: string): Promise<number | undefined | 'missing'> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (error) {
    if (errorCode(error, '') === 'ENOENT') return 'missing';
    throw new Error(`reading ${lockPath} failed`, { cause: error });
  }
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return undefined;
  const pid = Number(trimmed);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return errorCode(error, '') === 'EPERM';
  }
}
