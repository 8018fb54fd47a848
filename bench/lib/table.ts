/** Plain-text tables for the terminal and for pasting into RESULTS.md (GitHub markdown). */
export type Cell = string | number | undefined;

export interface Table {
  title: string;
  columns: string[];
  rows: Cell[][];
  notes?: string[];
}

export function formatCell(v: Cell): string {
  if (v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  if (Number.isInteger(v) || abs >= 1000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  if (abs === 0) return '0';
  return v.toFixed(3);
}

/** A markdown table: readable as is in a terminal, renders on GitHub. */
export function renderTable(t: Table): string {
  const cells = t.rows.map((r) => t.columns.map((_, i) => formatCell(r[i])));
  const widths = t.columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  // Text columns (no number in them) read better left-aligned; numbers line up on the right.
  const left = t.columns.map((_, i) => i === 0 || t.rows.every((r) => typeof r[i] !== 'number'));
  const line = (r: string[]) =>
    `| ${r.map((c, i) => (left[i] ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => `${'-'.repeat(w + 1)}${left[i] ? '-' : ':'}`).join('|')}|`;
  const out = [`### ${t.title}`, '', line(t.columns), sep, ...cells.map(line)];
  if (t.notes?.length) out.push('', ...t.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}

/** `a / b` as a percentage string, or undefined when either side is missing or zero. */
export function ratio(a: number | undefined, b: number | undefined): string | undefined {
  if (a === undefined || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b))
    return undefined;
  return `${((a / b) * 100).toFixed(0)}%`;
}

/** `a / b` as a multiple (`3.1×`). */
export function times(a: number | undefined, b: number | undefined): string | undefined {
  if (a === undefined || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b))
    return undefined;
  return `${(a / b).toFixed(a / b >= 10 ? 0 : 2)}×`;
}
