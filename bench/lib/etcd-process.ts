import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { sleep } from './clock.js';

/**
 * A throwaway single-node etcd on loopback ports with a temp data dir, for side-by-side runs.
 * Its CPU is read from /proc/PID/stat (it has no IPC channel).
 */
export function findEtcd(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'etcd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// etcd has no IPC channel to notice that the bench went away: kill it when this process exits
// (run.ts turns SIGINT/SIGTERM into an exit, so Ctrl-C and the smoke test's timeout count).
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export interface EtcdCpu {
  at: number;
  ticks: number;
}

export class EtcdProcess {
  private constructor(
    readonly proc: ChildProcess,
    readonly endpoint: string,
    readonly version: string,
    private readonly dataDir: string,
    private stderr: string,
  ) {}

  static async start(binary: string): Promise<EtcdProcess> {
    const dataDir = await mkdtemp(join(tmpdir(), 'leasewire-bench-etcd-'));
    const clientPort = await freePort();
    const peerPort = await freePort();
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const proc = spawn(
      binary,
      [
        '--name',
        'bench',
        '--data-dir',
        dataDir,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `bench=${peer}`,
        '--logger',
        'zap',
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const giveUpAt = performance.now() + 30_000;
    while (performance.now() < giveUpAt) {
      if (proc.exitCode !== null) break;
      try {
        const res = await fetch(`${client}/health`);
        if (res.ok) {
          const v = (await (await fetch(`${client}/version`)).json()) as { etcdserver?: string };
          return new EtcdProcess(proc, client, v.etcdserver ?? 'unknown', dataDir, stderr);
        }
      } catch {}
      await sleep(100);
    }
    proc.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`etcd did not become healthy: ${stderr.slice(-1500)}`);
  }

  /** User + system CPU so far, in clock ticks (1/100 s), from /proc. */
  cpu(): EtcdCpu {
    const stat = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { at: performance.now(), ticks: Number(f[11]) + Number(f[12]) };
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dataDir, { recursive: true, force: true });
    void this.stderr;
  }
}

/** CPU between two readings, in percent of one core (10 ms tick resolution). */
export function etcdCpuPercent(a: EtcdCpu, b: EtcdCpu): number {
  const ms = b.at - a.at;
  return ms > 0 ? (((b.ticks - a.ticks) * 10) / ms) * 100 : 0;
}
