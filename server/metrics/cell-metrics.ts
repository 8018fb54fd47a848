import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the broker's hot path. prom-client's own labelled children hash
 * their labels on every call (about 0.3 µs per counter increment and 1 µs per histogram
 * observation here); these keep plain numbers in cells bound once per label set (a field
 * increment, a short bucket scan) and build the exposition only when scraped. They register in
 * a prom-client Registry like any metric: the registry only calls `get()`.
 */

type LabelValues = Record<string, string>;

interface MetricValue {
  value: number;
  labels: LabelValues;
  metricName?: string;
}

abstract class CellMetric<C> {
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';
  protected readonly cells = new Map<string, { labels: LabelValues; cell: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The cell for these label values (in labelNames order), created on first use: bind it once. */
  cell(...values: string[]): C {
    const key = values.join('\u0000');
    let entry = this.cells.get(key);
    if (!entry) {
      const labels: LabelValues = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i] ?? '';
      });
      entry = { labels, cell: this.newCell() };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  protected abstract newCell(): C;
  protected abstract values(): MetricValue[];

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.values(),
    };
  }

  /** Registry.resetMetrics() calls this. */
  reset(): void {
    this.cells.clear();
  }
}

export interface CounterCell {
  n: number;
}

/** A counter: `cell(...).n++` on the hot path. Every bound cell is exported, zeros included. */
export class CellCounter extends CellMetric<CounterCell> {
  readonly type = 'counter';

  protected newCell(): CounterCell {
    return { n: 0 };
  }

  protected values(): MetricValue[] {
    return [...this.cells.values()].map(({ labels, cell }) => ({ value: cell.n, labels }));
  }
}

export class HistogramCell {
  /** Per-bucket (not cumulative) counts; observations above the last bound only count in `count`. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= (b[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

/** A histogram with fixed bounds: `cell(...).observe(v)` on the hot path. */
export class CellHistogram extends CellMetric<HistogramCell> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }

  protected newCell(): HistogramCell {
    return new HistogramCell(this.bounds);
  }

  protected values(): MetricValue[] {
    const out: MetricValue[] = [];
    for (const { labels, cell } of this.cells.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += cell.counts[i] as number;
        out.push({
          metricName: `${this.name}_bucket`,
          labels: { ...labels, le: String(le) },
          value: cumulative,
        });
      });
      out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cell.count });
      out.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
      out.push({ metricName: `${this.name}_count`, labels, value: cell.count });
    }
    return out;
  }
}
