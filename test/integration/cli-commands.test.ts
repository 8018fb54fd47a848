import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Client, connect } from '../../client/index.js';
import { type RunningBroker, startBroker } from '../../server/index.js';

// The `leasewire` command end to end: a real broker in this process, the CLI as a real child
// process (run from source through tsx), the SDK as the other party. Each CLI start costs a
// second or more of tsx start-up on a loaded 2-core machine, hence the generous timeouts.
vi.setConfig({ testTimeout: 90_000 });

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

function cli(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    for (const l of listeners) l();
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  running.add(child);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit,
    waitForOutput(pattern, timeoutMs = 45_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (out + err).match(pattern);
          if (m) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(m[0]);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(`no output matching ${pattern} within ${timeoutMs} ms; stdout=${out} stderr=${err}`),
          );
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
  };
}

const running = new Set<ChildProcess>();
let broker: RunningBroker | undefined;
const clients: Client[] = [];

afterEach(async () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  running.clear();
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  await broker?.close();
  broker = undefined;
});

async function setup(options: Parameters<typeof startBroker>[0] = {}) {
  broker = await startBroker({ port: 0, store: 'memory', logLevel: 'silent', ...options });
  return broker;
}

async function sdk(url: string, owner: string): Promise<Client> {
  const c = await connect(url, { owner });
  clients.push(c);
  return c;
}

describe('leasewire ls', () => {
  it('lists held leases with owner and token, as a table and as JSON lines', async () => {
    const b = await setup();
    const holder = await sdk(b.url, 'holder-1');
    const lease = await holder.acquire('rooms/7');
    const table = cli(['ls', 'rooms/', '--url', b.url]);
    expect(await table.exit).toBe(0);
    expect(table.stdout()).toMatch(/NAME\s+OWNER\s+TOKEN/);
    expect(table.stdout()).toMatch(new RegExp(`rooms/7\\s+holder-1\\s+${lease.token}\\s`));
    const json = cli(['ls', '--json'], { LEASEWIRE_URL: b.url });
    expect(await json.exit).toBe(0);
    const rows = json
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; token: number });
    expect(rows).toEqual([expect.objectContaining({ name: 'rooms/7', token: lease.token })]);
  });

  it('rejects an unknown flag with exit code 2 and says which', async () => {
    const b = await setup();
    const run = cli(['ls', '--bogus', '1', '--url', b.url]);
    expect(await run.exit).toBe(2);
    expect(run.stderr()).toContain('--bogus');
  });
});

describe('leasewire acquire', () => {
  it('runs the command with the fencing token and exits with its code', async () => {
    const b = await setup();
    const run = cli([
      'acquire',
      'jobs/nightly',
      '--url',
      b.url,
      '--',
      'sh',
      '-c',
      'echo "token=$LEASEWIRE_TOKEN lease=$LEASEWIRE_LEASE"; exit 3',
    ]);
    expect(await run.exit).toBe(3);
    expect(run.stdout()).toMatch(/token=\d+ lease=jobs\/nightly/);
    const watcher = await sdk(b.url, 'checker');
    expect(await watcher.get('jobs/nightly')).toBeNull(); // released after the command ended
  });

  it('exits 75 without running the command when --no-wait meets a holder', async () => {
    const b = await setup();
    const holder = await sdk(b.url, 'cron-a');
    await holder.acquire('jobs/nightly');
    const run = cli(['acquire', 'jobs/nightly', '--no-wait', '--url', b.url, '--', 'sh', '-c', 'echo RAN']);
    expect(await run.exit).toBe(75);
    expect(run.stdout()).not.toContain('RAN');
    expect(run.stderr()).toContain('held by cron-a');
  });

  it('waits in line and runs the command once the holder releases', async () => {
    const b = await setup();
    const holder = await sdk(b.url, 'cron-a');
    const lease = await holder.acquire('jobs/nightly');
    const watcher = await sdk(b.url, 'w');
    const run = cli([
      'acquire',
      'jobs/nightly',
      '--url',
      b.url,
      '--',
      'sh',
      '-c',
      'echo "got $LEASEWIRE_TOKEN"',
    ]);
    // The CLI is queued once the lease shows a waiter.
    await waitUntil(async () => (await watcher.get('jobs/nightly'))?.waiters === 1, 'the CLI to queue');
    await lease.release();
    expect(await run.exit).toBe(0);
    expect(run.stdout()).toMatch(new RegExp(`got ${lease.token + 1}\\b`));
  });

  it('gives up with exit 75 after --timeout', async () => {
    const b = await setup();
    const holder = await sdk(b.url, 'cron-a');
    await holder.acquire('jobs/nightly');
    const run = cli([
      'acquire',
      'jobs/nightly',
      '--timeout',
      '300',
      '--url',
      b.url,
      '--',
      'sh',
      '-c',
      'echo RAN',
    ]);
    expect(await run.exit).toBe(75);
    expect(run.stdout()).not.toContain('RAN');
  });

  it('stops the command with SIGTERM when the lease is lost', async () => {
    const b = await setup({ minTtlMs: 500 });
    const run = cli([
      'acquire',
      'jobs/long',
      '--ttl-ms',
      '1000',
      '--url',
      b.url,
      '--',
      'sh',
      '-c',
      'trap "echo got-term; exit 7" TERM; echo started; while :; do sleep 0.05; done',
    ]);
    await run.waitForOutput(/started/);
    // The broker goes away for good: the SDK's safety deadline passes and the lease is lost.
    await b.close();
    broker = undefined;
    expect(await run.exit).toBe(7);
    expect(run.stdout()).toContain('got-term');
    expect(run.stderr()).toMatch(/lease jobs\/long lost/);
  });
});

describe('leasewire watch', () => {
  it('prints one JSON line per change with --json', async () => {
    const b = await setup();
    const run = cli(['watch', 'rooms/', '--json', '--url', b.url]);
    await run.waitForOutput(/"type":"snapshot"/);
    const actor = await sdk(b.url, 'actor');
    const lease = await actor.acquire('rooms/1');
    await lease.release();
    await run.waitForOutput(/"kind":"released"/);
    const lines = run
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; kind?: string; token?: number });
    expect(lines.filter((l) => l.type === 'event').map((l) => [l.kind, l.token])).toEqual([
      ['acquired', lease.token],
      ['released', lease.token],
    ]);
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
  });
});

describe('leasewire elect', () => {
  it('runs the command only on the leader and hands over when the leader stops', async () => {
    const b = await setup();
    const script = 'echo "leader $LEASEWIRE_TOKEN"; trap "exit 0" TERM; while :; do sleep 0.05; done';
    const first = cli(['elect', 'svc/scheduler', '--owner', 'one', '--url', b.url, '--', 'sh', '-c', script]);
    await first.waitForOutput(/leader \d+/);
    const second = cli([
      'elect',
      'svc/scheduler',
      '--owner',
      'two',
      '--url',
      b.url,
      '--',
      'sh',
      '-c',
      script,
    ]);
    const observer = await sdk(b.url, 'observer');
    await waitUntil(
      async () => (await observer.get('svc/scheduler'))?.waiters === 1,
      'the second candidate to queue',
    );
    expect(second.stdout()).not.toMatch(/leader/);
    first.child.kill('SIGTERM');
    await first.exit;
    await second.waitForOutput(/leader \d+/);
    const leader = await observer.get('svc/scheduler');
    expect(leader?.owner).toBe('two');
  });
});

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
