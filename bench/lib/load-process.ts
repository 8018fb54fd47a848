import { fileURLToPath } from 'node:url';
import { Child } from './rpc.js';

const ENTRY = fileURLToPath(new URL('./load-child.ts', import.meta.url));

/** Starts `n` load-generator processes in parallel. */
export async function startLoadProcesses(n: number, label = 'load'): Promise<Child[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => Child.start(`${label}-${i}`, ENTRY)));
}

export async function stopAll(children: readonly Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop(5_000)));
}

/** Splits `total` into `parts` near-equal counts. */
export function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** Source addresses for a load process: 127.0.0.(2 + k). */
export function sourceAddress(k: number): string {
  return `127.0.0.${2 + (k % 250)}`;
}
