/**
 * Reads a histogram from the broker's Prometheus `/metrics` text: cumulative bucket counts by
 * upper bound. Two scrapes subtract to the observations made in between.
 */
export type PromHistogram = { le: number; count: number }[];

export async function scrapeHistogram(httpUrl: string, name: string): Promise<PromHistogram | undefined> {
  let text: string;
  try {
    const res = await fetch(`${httpUrl}/metrics`);
    if (!res.ok) return undefined;
    text = await res.text();
  } catch {
    return undefined;
  }
  const out: PromHistogram = [];
  const re = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    out.push({ le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), count: Number(m[2]) });
  }
  return out.length ? out.sort((a, b) => a.le - b.le) : undefined;
}

export function subtract(after: PromHistogram, before: PromHistogram | undefined): PromHistogram {
  return after.map((b) => ({ le: b.le, count: b.count - (before?.find((x) => x.le === b.le)?.count ?? 0) }));
}

/** The upper bound of the bucket holding quantile q (what a Prometheus histogram can tell). */
export function quantileBound(h: PromHistogram, q: number): number | undefined {
  const total = h.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  return h.find((b) => b.count >= rank)?.le;
}
