import type { TraceRecord } from './broker-types.js';

/**
 * Checks FIFO per name from a broker trace: the order in which waiters joined a name's queue
 * (as the store applied their acquires) against the order in which they were granted.
 */
export interface FifoReport {
  names: number;
  joins: number;
  grants: number;
  /** Positions where the n-th granted waiter was not the n-th to have joined (of those granted). */
  outOfOrder: number;
  /** Waiters still waiting when someone who joined after them was granted. */
  overtaken: number;
}

export function checkFifo(records: readonly TraceRecord[]): FifoReport {
  const joins = new Map<string, { seq: number; waitId: number }[]>();
  const grants = new Map<string, number[]>();
  let nJoins = 0;
  let nGrants = 0;
  for (const r of records) {
    if (r.t === 'join') {
      nJoins++;
      const list = joins.get(r.name) ?? [];
      list.push({ seq: r.seq, waitId: r.waitId });
      joins.set(r.name, list);
    } else if (r.t === 'grant') {
      nGrants++;
      const list = grants.get(r.name) ?? [];
      list.push(r.waitId);
      grants.set(r.name, list);
    }
  }
  let outOfOrder = 0;
  let overtaken = 0;
  for (const [name, list] of joins) {
    list.sort((a, b) => a.seq - b.seq);
    const granted = grants.get(name) ?? [];
    const grantedSet = new Set(granted);
    const joinedAndGranted = list.filter((j) => grantedSet.has(j.waitId)).map((j) => j.waitId);
    const known = new Set(list.map((j) => j.waitId));
    const grantedKnown = granted.filter((w) => known.has(w));
    for (let i = 0; i < grantedKnown.length; i++) if (grantedKnown[i] !== joinedAndGranted[i]) outOfOrder++;
    // Anyone not granted who joined before the last granted joiner was overtaken.
    let lastGrantedIndex = -1;
    list.forEach((j, i) => {
      if (grantedSet.has(j.waitId)) lastGrantedIndex = i;
    });
    for (let i = 0; i < lastGrantedIndex; i++) if (!grantedSet.has(list[i]!.waitId)) overtaken++;
  }
  return { names: joins.size, joins: nJoins, grants: nGrants, outOfOrder, overtaken };
}

/** Jain's fairness index over per-client counts: 1 = perfectly even, 1/n = one client got all. */
export function jainIndex(counts: readonly number[]): number {
  let sum = 0;
  let sumSq = 0;
  for (const c of counts) {
    sum += c;
    sumSq += c * c;
  }
  return sumSq === 0 ? 0 : (sum * sum) / (counts.length * sumSq);
}
