import {
  Args,
  CLIENT_FLAG_NAMES,
  CLIENT_FLAGS_HELP,
  clientFlags,
  formatDuration,
  openClient,
  table,
} from './common.js';

export const LS_HELP = `leasewire ls [prefix] — a table of held leases

${CLIENT_FLAGS_HELP}
`;

export async function ls(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const args = new Args(argv, ['json', 'help']);
  if (args.has('help')) {
    out.write(LS_HELP);
    return 0;
  }
  const bad = args.unknown(CLIENT_FLAG_NAMES);
  if (bad.length) throw new RangeError(`unknown flag --${bad[0]} (see leasewire ls --help)`);
  const flags = clientFlags(args, process.env);
  const client = await openClient(flags);
  try {
    const leases = await client.list(args.positional[0] ?? '');
    if (flags.json) {
      for (const l of leases) {
        const { meta, ...rest } = l;
        out.write(
          `${JSON.stringify({ ...rest, ...(meta ? { meta: Buffer.from(meta).toString('base64') } : {}) })}\n`,
        );
      }
      return 0;
    }
    const now = Date.now();
    const rows = [['NAME', 'OWNER', 'TOKEN', 'HELD FOR', 'EXPIRES IN', 'WAITERS']];
    for (const l of leases) {
      rows.push([
        l.name,
        l.owner || l.sessionId,
        String(l.token),
        formatDuration(Math.max(0, now - l.acquiredAt)),
        formatDuration(l.expiresInMs),
        String(l.waiters),
      ]);
    }
    out.write(`${table(rows)}\n`);
    if (leases.length === 0) out.write('(no leases held)\n');
    return 0;
  } finally {
    await client.close();
  }
}
