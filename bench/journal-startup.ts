// Start-up time of the journal store over a large data dir: 100,000 held leases and 1,000,000
// journal records (1,000 sessions, 100,000 grants kept, 449,500 acquire + release pairs of churn),
// written through JournalWriter + encodeRecords as the store writes them (fsync none, for speed).
// The broker then starts as a child process (`leasewire serve`) and the bench reads its `journal
// recovered` line (store.recovery.durationMs) and its memory (VmRSS, VmHWM) once it listens.
// Two cases: the journal alone (full replay, as after a kill -9 before the first snapshot) and with
// a snapshot at record 950,000 (as snapshotEveryRecords would leave it, plus a 50,000-record tail).
//
// Run: npx tsx bench/journal-startup.ts [records, default 1000000] [leases, default 100000]
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalFixture } from '../test/fixtures/journal-fixture.js';
import { BrokerProcess } from '../test/helpers/broker-process.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { writeJson } from './lib/output.js';

const RECORDS = Number(process.argv[2] ?? 1_000_000);
const LEASES = Number(process.argv[3] ?? 100_000);
const SESSIONS = 1_000;
const SNAPSHOT_AT = RECORDS - Math.round(RECORDS / 20);

interface StartupResult {
  case: string;
  recordsReplayed: number;
  leases: number;
  recoveryMs: number;
  spawnToListeningMs: number;
  rssMiB: number;
  peakRssMiB: number;
}

function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kib('VmRSS') / 1024), peak: Math.round(kib('VmHWM') / 1024) };
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

async function generate(dir: string): Promise<{ ms: number; snapshotSeq: number }> {
  const started = performance.now();
  const fx = await JournalFixture.create(dir, { fsync: 'none', maxPending: 16_384 }, false);
  const sessions: string[] = [];
  let records = 0;
  let snapshotSeq = 0;
  const tick = async () => {
    records++;
    if (records === SNAPSHOT_AT) snapshotSeq = await fx.snapshot();
    await fx.settle();
  };
  for (let s = 0; s < SESSIONS; s++) {
    sessions.push(fx.openSession(`owner-${s}`, 30_000).id);
    await tick();
  }
  for (let i = 0; i < LEASES; i++) {
    fx.acquire(sessions[i % SESSIONS]!, `held/${String(i).padStart(6, '0')}`);
    await tick();
  }
  for (let j = 0; records + 2 <= RECORDS; j++) {
    const sid = sessions[j % SESSIONS]!;
    const name = `churn/${j % 5_000}`;
    const lease = fx.acquire(sid, name);
    await tick();
    fx.release(sid, name, lease.token);
    await tick();
  }
  const done = await fx.close();
  if (done.leases.length !== LEASES)
    throw new Error(`expected ${LEASES} leases, the table has ${done.leases.length}`);
  return { ms: Math.round(performance.now() - started), snapshotSeq };
}

async function measure(label: string, dir: string): Promise<StartupResult> {
  const broker = await BrokerProcess.create({ dataDir: dir, label, startTimeoutMs: 300_000 });
  const started = performance.now();
  await broker.start();
  const spawnToListeningMs = Math.round(performance.now() - started);
  const pid = broker.pid!;
  const mem = memoryMiB(pid);
  const recovery = broker.recovery();
  // SIGKILL, not SIGTERM: a clean stop would write a snapshot and change the dir for the next case.
  await broker.kill9();
  if (!recovery) throw new Error(`${label}: no recovery line; stderr:\n${broker.stderr}`);
  return {
    case: label,
    recordsReplayed: recovery.recordsReplayed,
    leases: recovery.leases,
    recoveryMs: recovery.durationMs,
    spawnToListeningMs,
    rssMiB: mem.rss,
    peakRssMiB: mem.peak,
  };
}

const machine = machineInfo();
const dir = await mkdtemp(join(tmpdir(), 'leasewire-bench-startup-'));
try {
  console.log(describeMachine(machine));
  console.log(`generating ${RECORDS} records (${LEASES} leases held, ${SESSIONS} sessions) in ${dir} ...`);
  const gen = await generate(dir);
  const bytes = await dirBytes(dir);
  console.log(
    `generated in ${gen.ms} ms; ${Math.round(bytes / 2 ** 20)} MiB on disk (snapshot at ${gen.snapshotSeq})`,
  );

  const snapshot = join(dir, `snapshot-${String(gen.snapshotSeq).padStart(18, '0')}.snap`);
  await rename(snapshot, `${snapshot}.aside`);
  const full = await measure('journal only (full replay)', dir);
  await rename(`${snapshot}.aside`, snapshot);
  const withSnapshot = await measure(`snapshot at ${gen.snapshotSeq} + tail`, dir);
  console.table([full, withSnapshot]);
  const file = writeJson('journal-startup', {
    machine,
    options: {
      records: RECORDS,
      leases: LEASES,
      sessions: SESSIONS,
      snapshotAt: gen.snapshotSeq,
      fsync: 'none',
    },
    generateMs: gen.ms,
    dataDirBytes: bytes,
    results: [full, withSnapshot],
  });
  console.log(`written to ${file}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
