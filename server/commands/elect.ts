import type { ChildProcess } from 'node:child_process';
import { type ChildExit, exitCodeOf, runChild, stopChild } from './child-process.js';
import { Args, CLIENT_FLAG_NAMES, CLIENT_FLAGS_HELP, clientFlags, openClient } from './common.js';

export const ELECT_HELP = `leasewire elect NAME [flags] -- CMD [ARGS...]
Campaign for leadership of NAME; run CMD only while leader. When leadership is lost, CMD gets
SIGTERM (then SIGKILL after --kill-after-ms) and the campaign goes on; when CMD exits by itself,
leadership is resigned and leasewire exits with CMD's code. CMD gets LEASEWIRE_LEASE,
LEASEWIRE_TOKEN (the term's fencing token) and LEASEWIRE_SESSION.

  --meta TEXT        published while leader (e.g. this instance's address)
  --kill-after-ms MS grace between SIGTERM and SIGKILL (default 5000)
${CLIENT_FLAGS_HELP}
`;

export async function elect(argv: string[], out: NodeJS.WritableStream, stop: AbortSignal): Promise<number> {
  const args = new Args(argv, ['json', 'help']);
  if (args.has('help')) {
    out.write(ELECT_HELP);
    return 0;
  }
  const bad = args.unknown([...CLIENT_FLAG_NAMES, 'meta', 'kill-after-ms']);
  if (bad.length) throw new RangeError(`unknown flag --${bad[0]} (see leasewire elect --help)`);
  const name = args.positional[0];
  if (!name) throw new RangeError('leasewire elect needs an election NAME');
  if (args.rest.length === 0) throw new RangeError('leasewire elect needs a command after --');
  const killAfterMs = args.int('kill-after-ms') ?? 5_000;
  const meta = args.string('meta');
  const client = await openClient(clientFlags(args, process.env));
  const election = client.elect(name, meta !== undefined ? { meta } : {});
  let running: { child: ChildProcess; exited: Promise<ChildExit> } | undefined;
  let result: number | undefined;
  const changes = election.changes();
  stop.addEventListener('abort', () => void changes.return?.(), { once: true });
  try {
    for await (const change of changes) {
      if (change.type === 'elected' && !running) {
        process.stderr.write(`leasewire: leader of ${name} (token ${change.lease.token})\n`);
        const current = runChild(args.rest, {
          LEASEWIRE_LEASE: name,
          LEASEWIRE_TOKEN: String(change.lease.token),
          LEASEWIRE_SESSION: client.sessionId ?? '',
        });
        running = current;
        void current.exited.then((exit) => {
          if (running !== current) return; // stopped by us after a deposition
          result = exitCodeOf(exit);
          void changes.return?.();
        });
      } else if (change.type === 'deposed' && running) {
        process.stderr.write(
          `leasewire: lost leadership of ${name} (${change.reason}); stopping the command\n`,
        );
        const stopping = running;
        running = undefined;
        await stopChild(stopping.child, stopping.exited, killAfterMs);
      }
    }
  } finally {
    if (running) result = exitCodeOf(await stopChild(running.child, running.exited, killAfterMs));
    await election.resign().catch(() => {});
    await client.close();
  }
  return result ?? (stop.aborted ? 130 : 0);
}
