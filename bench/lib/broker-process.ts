import { fileURLToPath } from 'node:url';
import type { BrokerChildConfig, BrokerReady, BrokerStats } from './broker-types.js';
import { Child } from './rpc.js';

const ENTRY = fileURLToPath(new URL('./broker-child.ts', import.meta.url));

export interface BrokerProcessOptions {
  /** Write a V8 CPU profile of the broker child into this directory (node --cpu-prof). */
  profileDir?: string;
  /** Profile file name (without directory). */
  profileName?: string;
}

/** The system under test in its own process, so its CPU and memory are its own. */
export class BrokerProcess {
  private constructor(
    readonly child: Child<BrokerReady>,
    readonly config: BrokerChildConfig,
  ) {}

  static async start(config: BrokerChildConfig, opts: BrokerProcessOptions = {}): Promise<BrokerProcess> {
    // BENCH_BROKER_NODE_ARGS: extra node flags for broker children (e.g. --trace-gc), for diagnosis.
    const nodeArgs = [
      '--expose-gc',
      ...(process.env.BENCH_BROKER_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ];
    if (opts.profileDir) {
      nodeArgs.push('--cpu-prof', '--cpu-prof-dir', opts.profileDir);
      if (opts.profileName) nodeArgs.push('--cpu-prof-name', opts.profileName);
    }
    const label = config.kind === 'bare' ? 'bare-ws' : `broker-${config.options?.store ?? 'journal'}`;
    const child = await Child.start<BrokerReady>(label, ENTRY, { nodeArgs, args: [JSON.stringify(config)] });
    return new BrokerProcess(child, config);
  }

  get url(): string {
    return this.child.ready.url;
  }

  get httpUrl(): string {
    return this.child.ready.httpUrl;
  }

  get pid(): number {
    return this.child.ready.pid;
  }

  stats(): Promise<BrokerStats> {
    return this.child.call<BrokerStats>('stats');
  }

  call<T>(cmd: string, args: unknown = {}, timeoutMs?: number): Promise<T> {
    return this.child.call<T>(cmd, args, timeoutMs);
  }

  stop(): Promise<void> {
    return this.child.stop(10_000);
  }
}

/** Broker CPU between two stats readings, in percent of one core. */
export function cpuPercent(a: BrokerStats, b: BrokerStats): number {
  const us = b.cpu.user + b.cpu.system - (a.cpu.user + a.cpu.system);
  const ms = b.at - a.at;
  return ms > 0 ? (us / 1000 / ms) * 100 : 0;
}
