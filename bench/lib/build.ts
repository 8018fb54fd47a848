import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * The bench's child processes (brokers, load generators) run plain JavaScript: shared/, server/
 * and bench/lib/ are transpiled file by file (no bundling, no type check) into
 * bench/out/build/ once per run. A tsx child takes seconds to start on a busy 2-core machine
 * and keeps a module-loader thread; this takes ~0.3 s once, and CPU profiles of the children
 * still name the source file and function (bench/out/build/server/x.js ↔ server/x.ts).
 */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD_DIR = join(REPO_ROOT, 'bench', 'out', 'build');

let built: Promise<string> | undefined;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Transpiles once per process; resolves to the build directory. */
export function ensureBuilt(): Promise<string> {
  built ??= (async () => {
    const entryPoints = ['shared', 'server', join('bench', 'lib')].flatMap((d) =>
      tsFiles(join(REPO_ROOT, d)),
    );
    await build({
      entryPoints,
      outdir: BUILD_DIR,
      outbase: REPO_ROOT,
      bundle: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: false,
      logLevel: 'error',
    });
    return BUILD_DIR;
  })();
  return built;
}

/** Where a source module of this repo lands in the build (`bench/lib/x.ts` → `.../build/bench/lib/x.js`). */
export function builtPath(sourcePath: string): string {
  return join(BUILD_DIR, relative(REPO_ROOT, sourcePath)).replace(/\.ts$/, '.js');
}
