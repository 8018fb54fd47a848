/**
 * Summarizes V8 CPU profiles written by `npm run bench -- --profile`:
 *   node --import tsx bench/profile.ts bench/out/profiles/throughput-memory.cpuprofile [top]
 * Prints the busiest functions (self time), files, and inclusive time, as % of busy samples.
 */
import { summarizeProfile } from './lib/profile-summary.js';
import { renderTable } from './lib/table.js';

process.stdout.on('error', () => process.exit(0)); // piped into head
const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node --import tsx bench/profile.ts <file.cpuprofile> [top]\n');
  process.exit(2);
}
const s = summarizeProfile(file, process.cwd(), Number(topArg ?? 25));
process.stdout.write(
  `${file}: ${(s.busyMs / 1000).toFixed(2)} s busy of ${(s.totalMs / 1000).toFixed(2)} s sampled\n\n`,
);
for (const [title, list] of [
  ['self time by function', s.functions],
  ['self time by file', s.files],
  ['inclusive time by function', s.inclusive],
] as const) {
  process.stdout.write(
    renderTable({
      title,
      columns: ['where', 'ms', '% of busy'],
      rows: list.map((h) => [h.name, h.selfMs, h.pct]),
    }),
  );
  process.stdout.write('\n');
}
