import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/out/ (gitignored): one JSON file per scenario run. */
export const OUT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'out');

export function writeJson(name: string, data: unknown, dir = OUT_DIR): string {
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(dir, `${name}-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}
