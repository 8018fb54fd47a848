import { type ChildProcess, spawn } from 'node:child_process';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs CMD with inherited stdio; resolves when it exits (or fails to start: code 127). */
export function runChild(
  cmd: string[],
  env: Record<string, string>,
): { child: ChildProcess; exited: Promise<ChildExit> } {
  const [file, ...args] = cmd;
  if (!file) throw new RangeError('no command given after --');
  const child = spawn(file, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`leasewire: cannot run ${file}: ${err.message}\n`);
      resolve({ code: 127, signal: null });
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, exited };
}

/** SIGTERM, then SIGKILL if it is still running after killAfterMs. */
export async function stopChild(
  child: ChildProcess,
  exited: Promise<ChildExit>,
  killAfterMs: number,
): Promise<ChildExit> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, killAfterMs);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGTERM: 15,
};

/** The shell's convention: the child's code, or 128 + the signal number that ended it. */
export function exitCodeOf(exit: ChildExit): number {
  if (exit.code !== null) return exit.code;
  return 128 + (exit.signal ? (SIGNAL_NUMBERS[exit.signal] ?? 1) : 1);
}
