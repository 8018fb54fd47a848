import { type BrokerOptions, DEFAULT_BROKER_OPTIONS } from './config.js';

/** `maxTtlMs` → `max-ttl-ms` (flag) and `LEASEWIRE_MAX_TTL_MS` (environment). */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function envName(key: string): string {
  return `LEASEWIRE_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/**
 * Reads broker options from flags (`--max-ttl-ms 60000`, `--repair`) over environment variables
 * over defaults. Throws a RangeError naming the flag for a value it cannot read.
 */
export function brokerOptionsFromArgs(args: string[], env: NodeJS.ProcessEnv): Partial<BrokerOptions> {
  const out: Record<string, unknown> = {};
  const byFlag = new Map<string, keyof BrokerOptions>();
  for (const key of Object.keys(DEFAULT_BROKER_OPTIONS) as (keyof BrokerOptions)[]) {
    byFlag.set(flagName(key), key);
    const fromEnv = env[envName(key)];
    if (fromEnv !== undefined && fromEnv !== '') out[key] = parseValue(key, fromEnv, envName(key));
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('--')) throw new RangeError(`unexpected argument ${arg}`);
    const [flag, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    const key = byFlag.get(flag);
    if (!key) throw new RangeError(`unknown flag --${flag} (see --help)`);
    if (typeof DEFAULT_BROKER_OPTIONS[key] === 'boolean') {
      out[key] = inline === undefined ? true : parseValue(key, inline, `--${flag}`);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new RangeError(`--${flag} needs a value`);
    out[key] = parseValue(key, value, `--${flag}`);
  }
  return out as Partial<BrokerOptions>;
}

function parseValue(key: keyof BrokerOptions, raw: string, source: string): unknown {
  const def = DEFAULT_BROKER_OPTIONS[key];
  if (typeof def === 'number') {
    const n = Number(raw.replace(/_/g, ''));
    if (!Number.isSafeInteger(n)) throw new RangeError(`${source} must be an integer, got ${raw}`);
    return n;
  }
  if (typeof def === 'boolean') {
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new RangeError(`${source} must be true or false, got ${raw}`);
  }
  if (Array.isArray(def))
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return raw;
}

/** The options table for --help and the README. */
export function optionsHelp(): string {
  const rows = Object.entries(DEFAULT_BROKER_OPTIONS).map(([key, def]) => {
    const d = Array.isArray(def) ? def.join(',') || '(any)' : String(def);
    return `  --${flagName(key).padEnd(26)} ${envName(key).padEnd(36)} default ${d}`;
  });
  return rows.join('\n');
}

/**
 * The README's configuration table, from the defaults and the doc comments in config.ts. A
 * test keeps the README in step with it; regenerate with `npx tsx scripts/config-table.ts`.
 */
export function optionsMarkdown(docs: Record<string, string>): string {
  const rows = ['| flag | environment | default | meaning |', '|---|---|---|---|'];
  for (const [key, def] of Object.entries(DEFAULT_BROKER_OPTIONS)) {
    const d = Array.isArray(def) ? def.join(',') || '(any)' : String(def);
    rows.push(`| \`--${flagName(key)}\` | \`${envName(key)}\` | \`${d}\` | ${docs[key] ?? ''} |`);
  }
  return rows.join('\n');
}

/** Reads the doc comment above each option in config.ts source text. */
export function optionDocs(configSource: string): Record<string, string> {
  const docs: Record<string, string> = {};
  const re = /\/\*\*((?:[^*]|\*(?!\/))*)\*\/\s*\n\s*([a-zA-Z]+)\??:/g;
  for (const m of configSource.matchAll(re)) {
    const text = (m[1] ?? '')
      .replace(/\n\s*\*/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    if (m[2]) docs[m[2]] = text.replace(/\|/g, '\\|');
  }
  return docs;
}
