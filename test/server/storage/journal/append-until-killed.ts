// Child process for the crash test: appends `p<i>` records forever with 32 appends in flight and
// prints each acknowledged sequence number on its own line, until the test kills it with SIGKILL.
import { JournalWriter } from '../../../../server/storage/journal/journal-writer.js';
import type { FsyncMode } from '../../../../server/storage/journal/journal-writer-options.js';

const [dir, fsync] = process.argv.slice(2) as [string, FsyncMode];
const writer = await JournalWriter.open(dir, { fsync, segmentBytes: 64 * 1024 });
const encoder = new TextEncoder();
let next = 0;

async function appendForever(): Promise<never> {
  for (;;) {
    const seq = await writer.append(encoder.encode(`p${next++}`));
    // Synchronous for pipes on Linux: a printed seq was acknowledged before the kill.
    process.stdout.write(`${seq}\n`);
  }
}

await Promise.all(Array.from({ length: 32 }, appendForever));
