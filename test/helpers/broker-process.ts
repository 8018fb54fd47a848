/**
 * The broker as a real child process (`leasewire serve`), for tests that must kill it the hard
 * way: start it on a data dir, `kill -9` it at any moment (also during start-up), start it again
 * on the same data dir and port, and read what it wrote to stderr when something fails.
 *
 * ```ts
 * const broker = await startBrokerProcess({ dataDir, options: { fsync: 'batch' } }); // killed when the test ends
 * const c = await RawClient.open(broker.url);
 * await broker.kill9();
 * await broker.restart();
 * expect(broker.recovery()?.revision).toBe(7);
 * ```
 *
 * The child runs a bundle of `server/cli.ts` made once per worker with esbuild (the compiler tsx
 * uses), because a start-up under `--import tsx` takes seconds and crash tests restart the broker
 * many times; without esbuild it falls back to tsx. Every child is SIGKILLed at the end of the
 * test that started it, and when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { flagName } from '../../server/cli-options.js';
import type { BrokerOptions } from '../../server/config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'server', 'cli.ts');
// Inside the repository, so that the bundle's bare imports (ws, msgpackr, ...) resolve.
const BUNDLE_DIR = join(ROOT, 'node_modules', '.cache', 'leasewire-broker-process');

export const DEFAULT_START_TIMEOUT_MS = 20_000;

/** Options the helper sets itself; everything else in BrokerOptions passes through as flags. */
type FixedOptions = 'host' | 'port' | 'dataDir' | 'store';

export interface BrokerProcessOptions {
  dataDir: string;
  /** Broker options, passed as `--kebab-case` flags. Default log level: info (recovery lines). */
  options?: Partial<Omit<BrokerOptions, FixedOptions>>;
  /** Port to listen on; default: a free one picked before the first start. Kept across restarts. */
  port?: number;
  /** Shown in failure messages. */
  label?: string;
  startTimeoutMs?: number;
}

/** The numbers of the broker's `journal recovered` log line. */
export interface RecoveryLine {
  snapshotSeq: number | undefined;
  recordsReplayed: number;
  sessions: number;
  leases: number;
  revision: number;
  lastToken: number;
  durationMs: number;
}

/** How a child ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const everyChild = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of everyChild) child.kill('SIGKILL');
});

let command: Promise<string[]> | undefined;

/** The argv (after node itself) that runs the CLI: a bundle if esbuild is at hand, else tsx. */
function cliCommand(): Promise<string[]> {
  command ??= bundleCli().catch(() => ['--import', 'tsx', CLI]);
  return command;
}

async function bundleCli(): Promise<string[]> {
  const esbuild = await import('esbuild');
  const out = await esbuild.build({
    entryPoints: [CLI],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    write: false,
    logLevel: 'silent',
  });
  const code = out.outputFiles[0]?.contents;
  if (!code) throw new Error('esbuild produced no output');
  // Named by content and published by rename: workers bundling the same source at once do not clash.
  const file = join(BUNDLE_DIR, `cli-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  await mkdir(BUNDLE_DIR, { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, code);
  await rename(temp, file);
  await pruneBundles(file);
  return [file];
}

/** Deletes bundles of older sources (not touched for an hour), so the cache does not grow forever. */
async function pruneBundles(keep: string): Promise<void> {
  const hourAgo = Date.now() - 60 * 60 * 1000;
  for (const name of await readdir(BUNDLE_DIR).catch(() => [] as string[])) {
    const path = join(BUNDLE_DIR, name);
    if (path === keep || !name.startsWith('cli-')) continue;
    const info = await stat(path).catch(() => undefined);
    if (info && info.mtimeMs < hourAgo) await unlink(path).catch(() => {});
  }
}

/** Binds `port` (0: any) on 127.0.0.1 and lets go; resolves with the port, or undefined if taken. */
async function probePort(port: number): Promise<number | undefined> {
  const server = createServer();
  const listening = once(server, 'listening').then(() => true);
  const failed = once(server, 'error').then(() => false);
  server.listen(port, '127.0.0.1');
  if (!(await Promise.race([listening, failed]))) return undefined;
  const address = server.address();
  server.close();
  await once(server, 'close');
  return address && typeof address !== 'string' ? address.port : undefined;
}

/** The lower end of the kernel's ephemeral port range (ports handed out for port 0 and for connects). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isSafeInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * A port nobody listens on right now. Taken below the ephemeral range when possible: the broker is
 * restarted on the same port after a kill, and in between, a server on port 0 or an outgoing
 * connection elsewhere on the machine could be handed an ephemeral port.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await probePort(10_000 + Math.floor(Math.random() * (low - 10_000)));
    if (port !== undefined) return port;
  }
  const any = await probePort(0);
  if (any === undefined) throw new Error('could not find a free port');
  return any;
}

function toFlags(options: Record<string, unknown>): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const flag = `--${flagName(key)}`;
    if (typeof value === 'boolean') args.push(`${flag}=${value}`);
    else if (Array.isArray(value)) args.push(flag, value.join(','));
    else args.push(flag, String(value));
  }
  return args;
}

/**
 * A broker child process. One incarnation runs at a time; `restart` starts the next one on the
 * same data dir and port. Logs of every incarnation are kept in `stderr`, each preceded by a
 * `--- start N ---` line.
 */
export class BrokerProcess {
  readonly label: string;
  readonly dataDir: string;
  readonly port: number;
  readonly url: string;
  /** stderr of every incarnation so far. */
  stderr = '';
  /** How many incarnations were started. */
  starts = 0;
  private child: ChildProcess | undefined;
  private exit: Promise<ExitInfo> | undefined;
  /** Settles once the incarnation being started has been spawned (the command may still be bundling). */
  private pendingStart: Promise<ChildProcess> | undefined;
  private expectExit = false;
  private stderrOffset = 0;
  private readonly args: string[];
  private readonly startTimeoutMs: number;

  private constructor(o: BrokerProcessOptions, port: number) {
    this.label = o.label ?? 'broker';
    this.dataDir = o.dataDir;
    this.port = port;
    this.url = `ws://127.0.0.1:${port}/v1`;
    this.startTimeoutMs = o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.args = [
      'serve',
      ...toFlags({ logLevel: 'info', ...o.options }),
      ...toFlags({ store: 'journal', host: '127.0.0.1', port, dataDir: o.dataDir }),
    ];
  }

  /** Creates the handle without starting anything; `start()` or `spawn()` runs the first incarnation. */
  static async create(o: BrokerProcessOptions): Promise<BrokerProcess> {
    return new BrokerProcess(o, o.port ?? (await freePort()));
  }

  /** Pid of the running incarnation. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** stderr of the current (or last) incarnation only. */
  get lastStderr(): string {
    return this.stderr.slice(this.stderrOffset);
  }

  /**
   * Starts an incarnation and returns at once, with a promise that resolves with the URL once it
   * prints its listening line, or rejects (with its stderr) if it exits or times out first.
   */
  spawn(): { listening: Promise<string> } {
    if (this.child) throw new Error(`${this.label}: already running (pid ${this.child.pid})`);
    const started = cliCommand().then((cmd) => this.launch([...cmd, ...this.args]));
    this.pendingStart = started;
    const listening = started.then((child) => this.waitForListening(child));
    // A caller that kills the child during start-up need not handle this rejection.
    listening.catch(() => {});
    return { listening };
  }

  private launch(args: string[]): ChildProcess {
    const env: NodeJS.ProcessEnv = {};
    // LEASEWIRE_* variables would override defaults in the child; the test's flags are the truth.
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LEASEWIRE_')) env[k] = v;
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.starts++;
    this.stderr += `--- start ${this.starts} ---\n`;
    this.stderrOffset = this.stderr.length;
    this.child = child;
    this.expectExit = false;
    everyChild.add(child);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exit = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        everyChild.delete(child);
        if (this.child === child) this.child = undefined;
        resolve({ code, signal });
      });
    });
    child.once('error', (err) => {
      this.stderr += `spawn error: ${err.message}\n`;
    });
    return child;
  }

  private waitForListening(child: ChildProcess): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let out = '';
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        fn();
      };
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        const url = /leasewire listening on (ws:\/\/\S+)/.exec(out)?.[1];
        if (url) finish(() => resolve(url));
      };
      const onExit = (code: number | null, signal: string | null) =>
        finish(() =>
          reject(
            new Error(
              `${this.label}: exited (code ${code}, signal ${signal}) before listening; stderr:\n${this.lastStderr}`,
            ),
          ),
        );
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new Error(
                `${this.label}: not listening after ${this.startTimeoutMs} ms; stdout: ${out}; stderr:\n${this.lastStderr}`,
              ),
            ),
          ),
        this.startTimeoutMs,
      );
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
      // Keep draining stdout after the listening line so the child never blocks on a full pipe.
      child.stdout?.resume();
    });
  }

  /** Starts an incarnation and waits until it listens. */
  async start(): Promise<void> {
    await this.spawn().listening;
  }

  /** Alias of start(), for a broker that was killed. */
  restart(): Promise<void> {
    return this.start();
  }

  /** SIGKILLs the running incarnation (if any, also one still starting) and waits until it is gone. */
  async kill9(): Promise<void> {
    if (this.pendingStart) await this.pendingStart;
    const child = this.child;
    if (!child) return;
    this.expectExit = true;
    child.kill('SIGKILL');
    await this.exit;
  }

  /** SIGTERM (a clean shutdown) and waits for the exit. */
  async stop(): Promise<ExitInfo | undefined> {
    if (this.pendingStart) await this.pendingStart;
    const child = this.child;
    if (!child) return undefined;
    this.expectExit = true;
    child.kill('SIGTERM');
    return this.exit;
  }

  /** Resolves when the running incarnation exits (for a child expected to fail on its own). */
  async exited(): Promise<ExitInfo> {
    if (this.pendingStart) await this.pendingStart;
    if (!this.exit) throw new Error(`${this.label}: never started`);
    return this.exit;
  }

  /** Throws with the stderr if the current incarnation died without being told to. */
  assertAlive(): void {
    if (!this.child && !this.expectExit && this.starts > 0) {
      throw new Error(`${this.label}: the broker process died on its own; stderr:\n${this.lastStderr}`);
    }
  }

  /** The `journal recovered` line of the current (or last) incarnation, parsed. */
  recovery(): RecoveryLine | undefined {
    const line = /journal recovered (.*)/.exec(this.lastStderr)?.[1];
    if (!line) return undefined;
    const field = (name: string): number | undefined => {
      const m = new RegExp(`(?:^| )${name}=(\\d+)`).exec(line);
      return m ? Number(m[1]) : undefined;
    };
    const need = (name: string): number => {
      const v = field(name);
      if (v === undefined) throw new Error(`${this.label}: no ${name}= in the recovery line: ${line}`);
      return v;
    };
    return {
      snapshotSeq: field('snapshotSeq'),
      recordsReplayed: need('recordsReplayed'),
      sessions: need('sessions'),
      leases: need('leases'),
      revision: need('revision'),
      lastToken: need('lastToken'),
      durationMs: need('durationMs'),
    };
  }

  /** SIGKILLs whatever runs; for cleanup. */
  async dispose(): Promise<void> {
    await this.kill9().catch(() => {});
  }
}

/**
 * Creates a broker process and starts it (unless `start: false`); it is SIGKILLed when the
 * current test finishes.
 */
export async function startBrokerProcess(
  o: BrokerProcessOptions & { start?: boolean },
): Promise<BrokerProcess> {
  const broker = await BrokerProcess.create(o);
  onTestFinished(() => broker.dispose());
  if (o.start !== false) await broker.start();
  return broker;
}
