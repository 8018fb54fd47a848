import type { BrokerOptions } from '../../server/config.js';

export interface BrokerChildConfig {
  kind: 'leasewire' | 'bare';
  options?: Partial<BrokerOptions>;
}

export interface BrokerReady {
  url: string;
  httpUrl: string;
  port: number;
  pid: number;
}

export interface BrokerStats {
  /** Epoch ms when read. */
  at: number;
  cpu: NodeJS.CpuUsage;
  memory: NodeJS.MemoryUsage;
  elu: { idle: number; active: number; utilization: number };
  sessions: number;
  leases: number;
  revision: number;
  connections: number;
}

export type TraceRecord =
  | {
      t: 'event';
      at: number;
      kind: string;
      name: string;
      sessionId: string;
      revision: number;
      eventAt: number;
    }
  | { t: 'grant'; at: number; name: string; sessionId: string; waitId: number; revision: number }
  | {
      t: 'join';
      at: number;
      seq: number;
      name: string;
      sessionId: string;
      waitId: number;
      position: number;
    };
