import { type FileHandle, open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from './journal-errors.js';
import {
  encodeSegmentHeader,
  parseSegmentFileName,
  SEGMENT_SUFFIX,
  segmentFileName,
} from './record-format.js';

export interface SegmentFile {
  name: string;
  path: string;
  /** First sequence number as claimed by the file name. */
  firstSeq: number;
}

/** Segment files of `dir` in sequence order; other files (temp files, snapshots, LOCK) are ignored. */
export async function listSegments(dir: string): Promise<SegmentFile[]> {
  const segments: SegmentFile[] = [];
  for (const name of await readdirIfExists(dir)) {
    const firstSeq = parseSegmentFileName(name);
    if (firstSeq !== undefined) segments.push({ name, path: join(dir, name), firstSeq });
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Entry names of `dir`, none if it does not exist. */
export async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (errorCode(error, '') === 'ENOENT') return [];
    throw error;
  }
}

/** Makes creations, renames and deletions of entries in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Shrinks a file to `length` bytes and makes the new size durable. */
export async function truncateFile(path: string, length: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(length);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates segment `firstSeq` and returns it open for writing. The header is written and synced under
 * a temp name before the rename, so a segment file under its real name always has a whole header.
 */
export async function createSegment(
  dir: string,
  firstSeq: number,
): Promise<{ file: SegmentFile; handle: FileHandle }> {
  const name = segmentFileName(firstSeq);
  const path = join(dir, name);
  const tempPath = `${path}.tmp`;
  const handle = await open(tempPath, 'w');
  let renamed = false;
  try {
    const header = encodeSegmentHeader(firstSeq);
    await handle.write(header, 0, header.length, 0);
    await handle.datasync();
    await rename(tempPath, path);
    renamed = true;
    await fsyncDir(dir);
  } catch (error) {
    await handle.close().catch(() => {});
    // Also remove a renamed but unused segment: the writer stays on the old one, and records it
    // adds there would overlap this segment's first sequence number.
    await unlink(renamed ? path : tempPath).catch(() => {});
    throw error;
  }
  return { file: { name, path, firstSeq }, handle };
}

/** Removes segment temp files left by a crash during `createSegment`. */
export async function removeSegmentTempFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.endsWith(`${SEGMENT_SUFFIX}.tmp`)) await unlink(join(dir, name)).catch(() => {});
  }
}
