import type { Progress } from './progress.js';
import type { Table } from './table.js';

/** What every scenario gets: the size preset, the progress line, and where profiles go. */
export interface ScenarioContext {
  smoke: boolean;
  progress: Progress;
  /** When set, broker children write V8 CPU profiles here. */
  profileDir: string | undefined;
  /** Seconds per measured case (overrides the scenario's default when set). */
  durationMs: number | undefined;
  log(line: string): void;
}

/** A target from the issue, checked against one measured value. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | undefined;
}

export interface ScenarioResult {
  tables: Table[];
  targets: TargetCheck[];
  /** Everything measured, for bench/out/<name>-<date>.json. */
  data: unknown;
  /** Set when the scenario could not run here (a missing binary or API); said loudly. */
  skipped?: string;
}

export interface Scenario {
  name: string;
  title: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

export function check(
  target: string,
  measured: number | undefined,
  ok: (v: number) => boolean,
  fmt: (v: number) => string,
): TargetCheck {
  if (measured === undefined || !Number.isFinite(measured)) return { target, measured: '—', met: undefined };
  return { target, measured: fmt(measured), met: ok(measured) };
}
