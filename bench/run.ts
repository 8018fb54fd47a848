/**
 * End-to-end benchmarks. `npm run bench` runs every scenario; `-- --smoke` runs each for a few
 * seconds with tiny sizes; `-- --scenario NAME[,NAME]` picks some; `-- --profile` writes V8 CPU
 * profiles of the broker processes to bench/out/profiles/; `-- --duration-ms N` sets the measured
 * window per case; `-- --out DIR` writes the JSON there instead of bench/out/. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine, machineInfo } from './lib/machine.js';
import { OUT_DIR, writeJson } from './lib/output.js';
import { Progress } from './lib/progress.js';
import type { ScenarioResult, TargetCheck } from './lib/scenario.js';
import { renderTable } from './lib/table.js';
import { SCENARIOS } from './scenarios/index.js';

// Exit (running 'exit' handlers: etcd is killed there) on Ctrl-C or a TERM; the broker and load
// children exit by themselves when their IPC channel closes.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping\n`);
    process.exit(130);
  });
}

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    profile: { type: 'boolean', default: false },
    'duration-ms': { type: 'string' },
    out: { type: 'string' },
    list: { type: 'boolean', default: false },
  },
});

if (values.list) {
  for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(14)} ${s.title}\n`);
  process.exit(0);
}

const wanted = (values.scenario ?? []).flatMap((s) => s.split(',')).filter(Boolean);
for (const w of wanted) {
  if (!SCENARIOS.some((s) => s.name === w)) {
    process.stderr.write(`unknown scenario ${w}; known: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
    process.exit(2);
  }
}
const selected = wanted.length ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
const outDir = values.out ?? OUT_DIR;
const profileDir = values.profile ? join(outDir, 'profiles') : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });
const durationMs = values['duration-ms'] ? Number(values['duration-ms']) : undefined;

const machine = machineInfo();
const command = `npm run bench --${values.smoke ? ' --smoke' : ''}${wanted.length ? ` --scenario ${wanted.join(',')}` : ''}${values.profile ? ' --profile' : ''}${durationMs ? ` --duration-ms ${durationMs}` : ''}`;
const header = `leasewire bench — ${command}\n${describeMachine(machine)}\n`;
process.stdout.write(`${header}\n`);

const progress = new Progress();
const summary: {
  name: string;
  title: string;
  ok: boolean;
  skipped?: string;
  error?: string;
  targets: TargetCheck[];
  file?: string;
  seconds: number;
}[] = [];
const markdown: string[] = [`# ${command}`, '', '```', describeMachine(machine), '```', ''];
let failed = false;

for (const s of selected) {
  const started = performance.now();
  const loadAtStart = loadavg()[0] ?? 0;
  process.stdout.write(`== ${s.name}: ${s.title} (load average ${loadAtStart.toFixed(2)} at start)\n`);
  let result: ScenarioResult | undefined;
  try {
    result = await s.run({
      smoke: values.smoke ?? false,
      progress,
      profileDir,
      durationMs,
      log: (line) => {
        progress.done();
        process.stdout.write(`${line}\n`);
      },
    });
  } catch (err) {
    progress.done();
    failed = true;
    const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stdout.write(`!! ${s.name} failed: ${msg}\n\n`);
    summary.push({
      name: s.name,
      title: s.title,
      ok: false,
      error: msg,
      targets: [],
      seconds: (performance.now() - started) / 1000,
    });
    continue;
  }
  const seconds = (performance.now() - started) / 1000;
  const loadAtEnd = loadavg()[0] ?? 0;
  // Other work on the machine shows in the load average (2 cores: above ~2.5, we were not alone).
  markdown.push(
    `_${s.name}: load average ${loadAtStart.toFixed(2)} at start, ${loadAtEnd.toFixed(2)} at end, ${seconds.toFixed(0)} s._`,
    '',
  );
  if (result.skipped) {
    const loud = `!! SKIPPED ${s.name}: ${result.skipped}`;
    process.stdout.write(`${'!'.repeat(loud.length)}\n${loud}\n${'!'.repeat(loud.length)}\n\n`);
    markdown.push(`**Skipped ${s.name}:** ${result.skipped}`, '');
  }
  for (const t of result.tables) {
    const text = renderTable(t);
    process.stdout.write(`${text}\n`);
    markdown.push(text);
  }
  if (result.targets.length) {
    const text = renderTable({
      title: `${s.name} — targets`,
      columns: ['target', 'measured', 'met'],
      rows: result.targets.map((t) => [
        t.target,
        t.measured,
        t.met === undefined ? '—' : t.met ? 'yes' : 'NO',
      ]),
    });
    process.stdout.write(`${text}\n`);
    markdown.push(text);
  }
  const file = writeJson(
    s.name,
    { scenario: s.name, title: s.title, command, machine, smoke: values.smoke, ...result },
    outDir,
  );
  process.stdout.write(`(${seconds.toFixed(1)} s, load average ${loadAtEnd.toFixed(2)} at end; ${file})\n\n`);
  summary.push({
    name: s.name,
    title: s.title,
    ok: true,
    skipped: result.skipped,
    targets: result.targets,
    file,
    seconds,
  });
}

writeJson('summary', { command, machine, scenarios: summary }, outDir);
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, values.smoke ? 'latest-smoke.md' : 'latest.md'), `${markdown.join('\n')}\n`);
process.exit(failed ? 1 : 0);
