import { type ChildProcess, fork } from 'node:child_process';
import { builtPath, ensureBuilt } from './build.js';

/**
 * Child processes of the bench (the broker, the load generators) run the transpiled build of
 * their TypeScript source (see build.ts) and talk to the parent over IPC: the parent calls named commands and awaits their results; a child
 * may also push events. `serialization: 'advanced'` carries typed arrays and Maps as they are.
 */
type Message =
  | { kind: 'call'; id: number; cmd: string; args: unknown }
  | { kind: 'result'; id: number; ok: true; value: unknown }
  | { kind: 'result'; id: number; ok: false; error: string }
  | { kind: 'event'; name: string; data: unknown }
  | { kind: 'ready'; data: unknown };

export interface ChildOptions {
  /** Extra node flags, e.g. `--cpu-prof`, `--expose-gc`. */
  nodeArgs?: string[];
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** How long the child may take to say it is ready. */
  readyTimeoutMs?: number;
}

export class Child<Ready = unknown> {
  private nextId = 1;
  private readonly calls = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private readonly listeners = new Map<string, ((data: unknown) => void)[]>();
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  stderrTail = '';

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    public ready: Ready,
  ) {
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        for (const c of this.calls.values()) {
          clearTimeout(c.timer);
          c.reject(new Error(`${name} exited (${code ?? signal}) ${this.stderrTail.slice(-500)}`));
        }
        this.calls.clear();
        resolve(code);
      });
    });
    proc.on('message', (m: Message) => {
      if (m.kind === 'result') {
        const c = this.calls.get(m.id);
        if (!c) return;
        this.calls.delete(m.id);
        clearTimeout(c.timer);
        if (m.ok) c.resolve(m.value);
        else c.reject(new Error(`${name}: ${m.error}`));
      } else if (m.kind === 'event') {
        for (const l of this.listeners.get(m.name) ?? []) l(m.data);
      }
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Starts `sourcePath` (a .ts file of this repo) from the build. */
  static async start<Ready>(
    name: string,
    sourcePath: string,
    options: ChildOptions = {},
  ): Promise<Child<Ready>> {
    await ensureBuilt();
    const proc = fork(builtPath(sourcePath), options.args ?? [], {
      execArgv: options.nodeArgs ?? [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: { ...process.env, ...options.env },
    });
    let tail = '';
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (s: string) => {
      tail = (tail + s).slice(-4000);
      child.stderrTail = tail;
      if (process.env.BENCH_VERBOSE === '1') process.stderr.write(`[${name}] ${s}`);
    });
    const child = new Child<Ready>(name, proc, undefined as Ready);
    const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
    child.ready = await new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`${name} not ready within ${readyTimeoutMs} ms`));
      }, readyTimeoutMs);
      proc.on('message', (m: Message) => {
        if (m.kind === 'ready') {
          clearTimeout(timer);
          resolve(m.data as Ready);
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before it was ready: ${tail.slice(-1500)}`));
      });
    });
    return child;
  }

  call<T = unknown>(cmd: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`${this.name}: ${cmd} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ kind: 'call', id, cmd, args } satisfies Message);
    });
  }

  on(event: string, listener: (data: unknown) => void): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return () => {
      const l = this.listeners.get(event) ?? [];
      l.splice(l.indexOf(listener), 1);
    };
  }

  /** Asks the child to exit (command `exit`), then kills it if it has not within graceMs. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.alive) return;
    this.call('exit', {}, graceMs).catch(() => {});
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export type Handler = (args: never) => unknown;

/**
 * The child side: answers calls with the named handlers, and tells the parent it is ready.
 * Exits when the parent goes away, so an interrupted bench leaves no processes behind.
 */
export function serve(handlers: Record<string, Handler>, ready: unknown): void {
  if (!process.send) {
    process.stderr.write(
      'this is a bench child process: start it through bench/run.ts (it needs an IPC channel)\n',
    );
    process.exit(2);
  }
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: Message) => {
    if (m.kind !== 'call') return;
    const h = handlers[m.cmd];
    if (m.cmd === 'exit' && !h) {
      reply(m.id, true, null);
      setImmediate(() => process.exit(0));
      return;
    }
    if (!h) {
      reply(m.id, false, `unknown command ${m.cmd}`);
      return;
    }
    Promise.resolve()
      .then(() => (h as (a: unknown) => unknown)(m.args))
      .then(
        (value) => reply(m.id, true, value),
        (err: unknown) => reply(m.id, false, err instanceof Error ? (err.stack ?? err.message) : String(err)),
      );
  });
  process.send?.({ kind: 'ready', data: ready } satisfies Message);
}

export function emit(name: string, data: unknown): void {
  process.send?.({ kind: 'event', name, data } satisfies Message);
}

function reply(id: number, ok: boolean, value: unknown): void {
  const m: Message = ok
    ? { kind: 'result', id, ok: true, value }
    : { kind: 'result', id, ok: false, error: String(value) };
  process.send?.(m);
}
