import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';
import { errorCode } from './journal-errors.js';
import { assertSeq, formatSeq } from './record-format.js';
import { fsyncDir, listSegments, readdirIfExists } from './segment-files.js';

// Snapshot file `snapshot-<seq, 18 digits>.snap`, little-endian:
//   magic "LWS1" | u16 version | u16 reserved (0) | u64 seq | u32 payload length
//   | u32 crc32c(the 20 header bytes before it + payload) | payload
// `seq` is the last journal record the snapshot includes; recovery replays records after it.

const SNAPSHOT_MAGIC = new TextEncoder().encode('LWS1');
const SNAPSHOT_VERSION = 1;
const SNAPSHOT_HEADER_BYTES = 24;
const SNAPSHOT_NAME = /^snapshot-(\d{18})\.snap$/;
const SNAPSHOT_TEMP_NAME = /^snapshot-(\d{18})\.snap\.tmp$/;
const MAX_SNAPSHOT_BYTES = 0xffff_ffff;

export interface Snapshot {
  seq: number;
  payload: Uint8Array;
  file: string;
}

export interface SnapshotReadOptions {
  log?: (line: string) => void;
}

export interface PruneReport {
  /** The newest valid snapshot, which bounds what may be pruned; undefined if there is none. */
  keptSnapshotSeq: number | undefined;
  deletedSegments: string[];
  deletedSnapshots: string[];
}

export function snapshotFileName(seq: number): string {
  return `snapshot-${formatSeq(seq)}.snap`;
}

/**
 * Writes a snapshot of the state after journal record `seq`, atomically: temp file, fsync, rename,
 * fsync of the directory. Resolves with the snapshot's path.
 */
export async function writeSnapshot(dir: string, seq: number, payload: Uint8Array): Promise<string> {
  assertSeq(seq, 'seq');
  if (payload.length > MAX_SNAPSHOT_BYTES) {
    throw new RangeError(`snapshot payload of ${payload.length} bytes exceeds ${MAX_SNAPSHOT_BYTES}`);
  }
  const path = join(dir, snapshotFileName(seq));
  const tempPath = `${path}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(tempPath, 'w');
    try {
      // writeFile continues at the handle's position, so the payload follows the header uncopied.
      await handle.writeFile(encodeSnapshotHeader(seq, payload));
      await handle.writeFile(payload);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tempPath, path);
    await fsyncDir(dir);
  } catch (error) {
    await unlink(tempPath).catch(() => {});
    throw Object.assign(new Error(`writing snapshot ${seq} to ${dir} failed`, { cause: error }), {
      code: errorCode(error, 'EIO'),
    });
  }
  return path;
}

/**
 * The newest snapshot in `dir` that passes its checks, or undefined. Broken snapshots (bad magic,
 * length or checksum) are logged and skipped in favour of older ones.
 */
export async function readLatestSnapshot(
  dir: string,
  options: SnapshotReadOptions = {},
): Promise<Snapshot | undefined> {
  const log = options.log ?? ((line: string) => console.warn(line));
  const files = (await listSnapshots(dir)).reverse();
  for (const { seq, path } of files) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if (errorCode(error, '') === 'ENOENT') continue;
      throw new Error(`reading snapshot ${path} failed`, { cause: error });
    }
    const decoded = decodeSnapshot(bytes, seq);
    if (decoded.ok) return { seq, payload: decoded.payload, file: path };
    log(`snapshot: skipping ${path}: ${decoded.reason}`);
  }
  return undefined;
}

/**
 * Deletes journal segments all of whose records are at or below `seq` (a segment goes when its
 * successor starts at or below `seq + 1`), and snapshots older than the newest valid one.
 * `seq` is capped at the newest valid snapshot, so records no snapshot covers are never deleted;
 * without a valid snapshot no segment is deleted. The last segment is never deleted.
 */
export async function pruneBefore(
  dir: string,
  seq: number,
  options: SnapshotReadOptions = {},
): Promise<PruneReport> {
  assertSeq(seq, 'seq');
  const newest = await readLatestSnapshot(dir, options);
  const report: PruneReport = { keptSnapshotSeq: newest?.seq, deletedSegments: [], deletedSnapshots: [] };
  if (!newest) return report;
  const limit = Math.min(seq, newest.seq);
  const segments = await listSegments(dir);
  // Oldest first: a crash halfway through leaves a journal that still starts at a segment boundary.
  for (let i = 0; i + 1 < segments.length && segments[i + 1]!.firstSeq <= limit + 1; i++) {
    await unlink(segments[i]!.path);
    report.deletedSegments.push(segments[i]!.path);
  }
  // Newer files are left alone: broken snapshots for inspection, temp files of writes in progress.
  for (const snapshot of await listSnapshots(dir, true)) {
    if (snapshot.seq >= newest.seq) continue;
    await unlink(snapshot.path);
    report.deletedSnapshots.push(snapshot.path);
  }
  await fsyncDir(dir);
  return report;
}

function encodeSnapshotHeader(seq: number, payload: Uint8Array): Uint8Array {
  const header = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(SNAPSHOT_MAGIC, 0);
  view.setUint16(4, SNAPSHOT_VERSION, true);
  view.setBigUint64(8, BigInt(seq), true);
  view.setUint32(16, payload.length, true);
  view.setUint32(20, crc32c(payload, crc32c(header.subarray(0, 20))), true);
  return header;
}

type DecodedSnapshot = { ok: true; payload: Uint8Array } | { ok: false; reason: string };

function decodeSnapshot(bytes: Uint8Array, expectedSeq: number): DecodedSnapshot {
  if (bytes.length < SNAPSHOT_HEADER_BYTES) return { ok: false, reason: `only ${bytes.length} bytes` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, SNAPSHOT_HEADER_BYTES);
  if (!SNAPSHOT_MAGIC.every((byte, i) => bytes[i] === byte)) return { ok: false, reason: 'no LWS1 magic' };
  const version = view.getUint16(4, true);
  if (version !== SNAPSHOT_VERSION) return { ok: false, reason: `unsupported version ${version}` };
  const seq = view.getBigUint64(8, true);
  if (seq !== BigInt(expectedSeq)) {
    return { ok: false, reason: `header says seq ${seq} but the file name says ${expectedSeq}` };
  }
  const length = view.getUint32(16, true);
  if (length !== bytes.length - SNAPSHOT_HEADER_BYTES) {
    return {
      ok: false,
      reason: `header says ${length} payload bytes, file has ${bytes.length - SNAPSHOT_HEADER_BYTES}`,
    };
  }
  // A plain Uint8Array over the same memory, not the Buffer subclass readFile returns.
  const payload = new Uint8Array(bytes.buffer, bytes.byteOffset + SNAPSHOT_HEADER_BYTES, length);
  if (crc32c(payload, crc32c(bytes.subarray(0, 20))) !== view.getUint32(20, true)) {
    return { ok: false, reason: 'checksum mismatch' };
  }
  return { ok: true, payload };
}

interface SnapshotFile {
  seq: number;
  path: string;
  temp: boolean;
}

/** Snapshot files in seq order, optionally with leftover temp files of interrupted writes. */
async function listSnapshots(dir: string, withTemp = false): Promise<SnapshotFile[]> {
  const files: SnapshotFile[] = [];
  for (const name of await readdirIfExists(dir)) {
    const match = SNAPSHOT_NAME.exec(name) ?? (withTemp ? SNAPSHOT_TEMP_NAME.exec(name) : null);
    if (match) files.push({ seq: Number(match[1]), path: join(dir, name), temp: !name.endsWith('.snap') });
  }
  return files.sort((a, b) => a.seq - b.seq);
}
