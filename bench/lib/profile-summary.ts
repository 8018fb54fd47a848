import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per function (file:line name) and
 * per file, as a share of all samples, idle time excluded, so hot spots can be named with a %.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  name: string;
  selfMs: number;
  /** Share of non-idle samples. */
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  functions: HotSpot[];
  files: HotSpot[];
  /** Self plus everything called from it, per function (top of the list = broadest callers). */
  inclusive: HotSpot[];
}

const IDLE = new Set(['(idle)', '(program)']);

function location(url: string, root: string): string {
  if (!url) return '(native)';
  let path = url;
  if (url.startsWith('file://')) path = fileURLToPath(url);
  if (path.startsWith('node:')) return path;
  const rel = relative(root, path);
  if (rel.startsWith('..')) return path;
  // The bench runs children from an esbuild transpile; name the source file instead.
  const built = 'bench/out/build/';
  return rel.startsWith(built) ? rel.slice(built.length).replace(/\.js$/, '.ts') : rel;
}

export function summarizeProfile(file: string, root = process.cwd(), top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let totalUs = 0;
  let busyUs = 0;
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  const incl = new Map<string, number>();
  // Line numbers of transpiled files do not match the source: file and function name only.
  const nameOf = (n: ProfileNode) =>
    `${location(n.callFrame.url, root)} ${n.callFrame.functionName || '(anonymous)'}`;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    totalUs += us;
    if (IDLE.has(n.callFrame.functionName)) continue;
    busyUs += us;
    const name = n.callFrame.url ? nameOf(n) : n.callFrame.functionName;
    fn.set(name, (fn.get(name) ?? 0) + us);
    const loc = n.callFrame.url ? location(n.callFrame.url, root) : n.callFrame.functionName;
    files.set(loc, (files.get(loc) ?? 0) + us);
    // Inclusive: credit every distinct function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur);
      if (!node || node.callFrame.functionName === '(root)') continue;
      const key = node.callFrame.url ? nameOf(node) : node.callFrame.functionName;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + us);
    }
  }
  const rank = (m: Map<string, number>): HotSpot[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, pct: busyUs ? (us / busyUs) * 100 : 0 }));
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    functions: rank(fn),
    files: rank(files),
    inclusive: rank(incl),
  };
}
