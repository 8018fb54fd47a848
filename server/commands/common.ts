import type { Client } from '../../client/index.js';
import { connect } from '../../client/index.js';

/** Flags every client command takes. */
export interface ClientFlags {
  url: string;
  owner: string;
  ttlMs: number | undefined;
  json: boolean;
}

export const DEFAULT_URL = 'ws://127.0.0.1:7420/v1';

/** A small flag reader: `--name value`, `--name=value`, boolean `--flag`, `--` ends flags. */
export class Args {
  readonly positional: string[] = [];
  readonly rest: string[] = [];
  private readonly values = new Map<string, string | true>();

  constructor(argv: string[], booleans: readonly string[]) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i] as string;
      if (a === '--') {
        this.rest.push(...argv.slice(i + 1));
        break;
      }
      if (a.startsWith('--')) {
        const [name, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
        if (booleans.includes(name)) this.values.set(name, inline === undefined ? true : inline);
        else {
          const v = inline ?? argv[++i];
          if (v === undefined) throw new RangeError(`--${name} needs a value`);
          this.values.set(name, v);
        }
      } else this.positional.push(a);
    }
  }

  has(name: string): boolean {
    const v = this.values.get(name);
    return v === true || v === 'true' || v === '1';
  }

  string(name: string): string | undefined {
    const v = this.values.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  int(name: string): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isSafeInteger(n) || n < 0)
      throw new RangeError(`--${name} must be a non-negative integer, got ${v}`);
    return n;
  }

  unknown(allowed: readonly string[]): string[] {
    return [...this.values.keys()].filter((k) => !allowed.includes(k));
  }
}

export const CLIENT_FLAG_NAMES = ['url', 'owner', 'ttl-ms', 'json', 'help'];

export function clientFlags(args: Args, env: NodeJS.ProcessEnv): ClientFlags {
  return {
    url: args.string('url') ?? env.LEASEWIRE_URL ?? DEFAULT_URL,
    owner: args.string('owner') ?? env.LEASEWIRE_OWNER ?? defaultOwner(),
    ttlMs: args.int('ttl-ms'),
    json: args.has('json'),
  };
}

function defaultOwner(): string {
  return `${process.env.HOSTNAME ?? 'host'}:${process.pid}`;
}

export async function openClient(flags: ClientFlags): Promise<Client> {
  return connect(flags.url, {
    owner: flags.owner,
    ...(flags.ttlMs !== undefined ? { ttlMs: flags.ttlMs } : {}),
  });
}

export const CLIENT_FLAGS_HELP = `  --url URL        broker (LEASEWIRE_URL; default ${DEFAULT_URL})
  --owner LABEL    shown to others as the holder (LEASEWIRE_OWNER; default host:pid)
  --ttl-ms MS      session TTL to ask for
  --json           machine-readable output (one JSON object per line)`;

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.floor(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) {
    for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  }
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
