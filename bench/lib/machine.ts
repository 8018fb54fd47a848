import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';

/** What every published number is recorded with (STYLE: machine, Node version, options). */
export interface MachineInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  loadAverage1m: number;
  gitCommit: string | undefined;
  gitDirty: boolean | undefined;
}

export function machineInfo(): MachineInfo {
  let cpuModel = 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpuModel = m[1].trim();
  } catch {}
  let gitCommit: string | undefined;
  let gitDirty: boolean | undefined;
  try {
    gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    gitDirty =
      execFileSync('git', ['status', '--porcelain', '--', 'server', 'shared'], {
        encoding: 'utf8',
      }).trim() !== '';
  } catch {}
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpuModel,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    gitCommit,
    gitDirty,
  };
}

export function describeMachine(m: MachineInfo): string {
  const git = m.gitCommit
    ? `, commit ${m.gitCommit}${m.gitDirty ? ' (+uncommitted server/shared changes)' : ''}`
    : '';
  return `${m.date} · ${m.nproc} cores ${m.cpuModel} · ${m.memoryGiB} GiB · Node ${m.node} · load avg ${m.loadAverage1m} at start${git}`;
}
