import { LeasewireError } from '../../client/index.js';
import { exitCodeOf, runChild, stopChild } from './child-process.js';
import { Args, CLIENT_FLAG_NAMES, CLIENT_FLAGS_HELP, clientFlags, openClient } from './common.js';

export const ACQUIRE_HELP = `leasewire acquire NAME [flags] -- CMD [ARGS...]
Hold the lease NAME while CMD runs (like etcdctl lock / consul lock: de-duplicate cron jobs).
CMD gets LEASEWIRE_LEASE, LEASEWIRE_TOKEN (the fencing token: pass it to what you protect) and
LEASEWIRE_SESSION in its environment. If the lease is lost, CMD gets SIGTERM, then SIGKILL after
--kill-after-ms. Exits with CMD's exit code (128+signal if it was killed); 75 if the lease could
not be had (held, or --timeout passed).

  --no-wait          fail at once (exit 75) if another holder has it; default: wait in line
  --timeout MS       give up waiting after MS (exit 75)
  --meta TEXT        metadata shown to others while held
  --kill-after-ms MS grace between SIGTERM and SIGKILL when the lease is lost (default 5000)
${CLIENT_FLAGS_HELP}
`;

/** Exit code when the lease could not be acquired (EX_TEMPFAIL: try again later). */
export const EXIT_NOT_ACQUIRED = 75;

export async function acquire(
  argv: string[],
  out: NodeJS.WritableStream,
  stop: AbortSignal,
): Promise<number> {
  const args = new Args(argv, ['json', 'help', 'no-wait']);
  if (args.has('help')) {
    out.write(ACQUIRE_HELP);
    return 0;
  }
  const bad = args.unknown([...CLIENT_FLAG_NAMES, 'no-wait', 'timeout', 'meta', 'kill-after-ms']);
  if (bad.length) throw new RangeError(`unknown flag --${bad[0]} (see leasewire acquire --help)`);
  const name = args.positional[0];
  if (!name) throw new RangeError('leasewire acquire needs a lease NAME');
  if (args.rest.length === 0) throw new RangeError('leasewire acquire needs a command after --');
  const timeoutMs = args.int('timeout');
  const killAfterMs = args.int('kill-after-ms') ?? 5_000;
  const meta = args.string('meta');
  const client = await openClient(clientFlags(args, process.env));
  try {
    const opts = { ...(meta !== undefined ? { meta } : {}), signal: stop };
    let lease: Awaited<ReturnType<typeof client.acquire>> | null;
    try {
      lease = args.has('no-wait')
        ? await client.tryAcquire(name, opts)
        : await client.acquire(name, {
            ...opts,
            ...(timeoutMs !== undefined ? { waitTimeoutMs: timeoutMs } : {}),
          });
    } catch (err) {
      if (err instanceof LeasewireError && err.code === 'WAIT_TIMEOUT') {
        process.stderr.write(`leasewire: ${name} not acquired within ${timeoutMs} ms\n`);
        return EXIT_NOT_ACQUIRED;
      }
      if (stop.aborted) return 130;
      throw err;
    }
    if (!lease) {
      const holder = await client.get(name).catch(() => null);
      process.stderr.write(
        `leasewire: ${name} is held${holder ? ` by ${holder.owner || holder.sessionId}` : ''}\n`,
      );
      return EXIT_NOT_ACQUIRED;
    }
    const { child, exited } = runChild(args.rest, {
      LEASEWIRE_LEASE: name,
      LEASEWIRE_TOKEN: String(lease.token),
      LEASEWIRE_SESSION: client.sessionId ?? '',
    });
    const held = lease;
    const onLost = () => {
      process.stderr.write(
        `leasewire: lease ${name} lost (${String(held.signal.reason?.message ?? held.signal.reason)}); stopping the command\n`,
      );
      void stopChild(child, exited, killAfterMs);
    };
    held.signal.addEventListener('abort', onLost, { once: true });
    const onStop = () => child.kill('SIGTERM');
    stop.addEventListener('abort', onStop, { once: true });
    const exit = await exited;
    held.signal.removeEventListener('abort', onLost);
    stop.removeEventListener('abort', onStop);
    if (held.held) await held.release().catch(() => {});
    return exitCodeOf(exit);
  } finally {
    await client.close();
  }
}
