import type { LeaseEvent } from '../../client/index.js';
import { Args, CLIENT_FLAG_NAMES, CLIENT_FLAGS_HELP, clientFlags, openClient } from './common.js';

export const WATCH_HELP = `leasewire watch [prefix] — one line per ownership change, until interrupted

  --from-revision N  replay the changes after revision N first
${CLIENT_FLAGS_HELP}
`;

export function describeEvent(e: LeaseEvent): string {
  const time = new Date(e.at).toISOString();
  const who = e.owner || e.sessionId;
  let line = `${time} rev=${e.revision} ${e.kind.padEnd(8)} ${e.name} owner=${who} token=${e.token}`;
  if (e.reason) line += ` reason=${e.reason}`;
  if (e.previous) line += ` previous=${e.previous.owner || e.previous.sessionId}(token ${e.previous.token})`;
  return line;
}

export async function watch(argv: string[], out: NodeJS.WritableStream, stop: AbortSignal): Promise<number> {
  const args = new Args(argv, ['json', 'help']);
  if (args.has('help')) {
    out.write(WATCH_HELP);
    return 0;
  }
  const bad = args.unknown([...CLIENT_FLAG_NAMES, 'from-revision']);
  if (bad.length) throw new RangeError(`unknown flag --${bad[0]} (see leasewire watch --help)`);
  const flags = clientFlags(args, process.env);
  const fromRevision = args.int('from-revision');
  const client = await openClient(flags);
  const w = await client.watch(args.positional[0] ?? '', fromRevision !== undefined ? { fromRevision } : {});
  stop.addEventListener('abort', () => w.close(), { once: true });
  try {
    for await (const item of w) {
      if (item.type === 'snapshot') {
        if (flags.json) {
          out.write(
            `${JSON.stringify({ type: 'snapshot', revision: item.revision, leases: item.leases.map(jsonLease) })}\n`,
          );
        } else {
          out.write(`# snapshot at revision ${item.revision} (${item.reason}): ${item.leases.length} held\n`);
          for (const l of item.leases)
            out.write(`#   ${l.name} owner=${l.owner || l.sessionId} token=${l.token}\n`);
        }
        continue;
      }
      out.write(
        flags.json
          ? `${JSON.stringify({ type: 'event', ...jsonLease(item.event) })}\n`
          : `${describeEvent(item.event)}\n`,
      );
    }
    return 0;
  } finally {
    await client.close();
  }
}

function jsonLease<T extends { meta?: Uint8Array }>(l: T): Omit<T, 'meta'> & { meta?: string } {
  const { meta, ...rest } = l;
  return meta ? { ...rest, meta: Buffer.from(meta).toString('base64') } : rest;
}
