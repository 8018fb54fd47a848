/**
 * A log-bucket latency histogram (HDR-ish): 32 buckets per power of two of microseconds, so any
 * quantile is within ~2.2% of the true value, from 1 µs to days, in a fixed ~1.3k-slot array.
 * Count, sum, min and max are exact. Histograms from several processes merge by adding counts.
 */
const SUB_BUCKETS = 32;
const MAX_EXPONENT = 40; // 2^40 µs ≈ 12.7 days
const SLOTS = MAX_EXPONENT * SUB_BUCKETS + 2;

export interface HistogramJson {
  counts: [index: number, count: number][];
  count: number;
  sumUs: number;
  minUs: number;
  maxUs: number;
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export class Histogram {
  private readonly counts = new Float64Array(SLOTS);
  count = 0;
  sumUs = 0;
  minUs = Number.POSITIVE_INFINITY;
  maxUs = 0;

  /** Records a duration in milliseconds (negative values count as zero). */
  recordMs(ms: number): void {
    this.recordUs(ms * 1000);
  }

  recordUs(us: number): void {
    const v = Math.max(us, 0);
    this.counts[indexOf(v)]!++;
    this.count++;
    this.sumUs += v;
    if (v < this.minUs) this.minUs = v;
    if (v > this.maxUs) this.maxUs = v;
  }

  merge(other: Histogram): this {
    for (let i = 0; i < SLOTS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.minUs < this.minUs) this.minUs = other.minUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
    return this;
  }

  /** The value (ms) at quantile q in [0, 1]: the geometric middle of its bucket, clamped to min/max. */
  quantileMs(q: number): number {
    if (this.count === 0) return 0;
    if (q <= 0) return this.minUs / 1000;
    if (q >= 1) return this.maxUs / 1000;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < SLOTS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const us = Math.min(this.maxUs, Math.max(this.minUs, middleOf(i)));
        return us / 1000;
      }
    }
    return this.maxUs / 1000;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      meanMs: this.count ? this.sumUs / this.count / 1000 : 0,
      minMs: this.count ? this.minUs / 1000 : 0,
      p50Ms: this.quantileMs(0.5),
      p90Ms: this.quantileMs(0.9),
      p99Ms: this.quantileMs(0.99),
      p999Ms: this.quantileMs(0.999),
      maxMs: this.maxUs / 1000,
    };
  }

  toJSON(): HistogramJson {
    const counts: [number, number][] = [];
    for (let i = 0; i < SLOTS; i++) if (this.counts[i]! > 0) counts.push([i, this.counts[i]!]);
    return {
      counts,
      count: this.count,
      sumUs: this.sumUs,
      minUs: this.count ? this.minUs : 0,
      maxUs: this.maxUs,
    };
  }

  static fromJSON(json: HistogramJson): Histogram {
    const h = new Histogram();
    for (const [i, c] of json.counts) h.counts[i] = c;
    h.count = json.count;
    h.sumUs = json.sumUs;
    h.minUs = json.count ? json.minUs : Number.POSITIVE_INFINITY;
    h.maxUs = json.maxUs;
    return h;
  }

  static of(valuesMs: Iterable<number>): Histogram {
    const h = new Histogram();
    for (const v of valuesMs) h.recordMs(v);
    return h;
  }
}

function indexOf(us: number): number {
  if (us < 1) return 0;
  const i = Math.floor(Math.log2(us) * SUB_BUCKETS) + 1;
  return i < SLOTS ? i : SLOTS - 1;
}

function middleOf(index: number): number {
  if (index === 0) return 0.5;
  return 2 ** ((index - 0.5) / SUB_BUCKETS);
}
