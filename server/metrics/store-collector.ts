import { Counter, Gauge, type Registry } from 'prom-client';
import { EventKinds, type LeaseEvent } from '../../shared/frames.js';
import type { WatchHub } from '../gateway/watch-hub.js';
import type { LeaseStore } from '../storage/lease-store.js';
import type { StoreObserver } from '../storage/table-store.js';
import { CellCounter, CellHistogram, type CounterCell } from './cell-metrics.js';

/** Seconds a deadline was processed after it was due: timers are late under load, never early. */
export const EXPIRY_LAG_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

const REASONS = ['none', 'release', 'session-closed', 'session-expired', 'lease-ttl'] as const;

/** What the store collector reads at scrape time. */
export interface BrokerGauges {
  readonly store: LeaseStore;
  readonly hub: WatchHub;
  readonly connectionCount: number;
  readonly attachedCount: number;
}

/**
 * Lease-table metrics: the expiry-lag histogram (fed by the store's timer), lease events by kind
 * and reason (counted from `onEvents`), and gauges read from the store, hub and broker only when
 * scraped.
 */
export class StoreCollector {
  readonly observer: StoreObserver;
  private source: BrokerGauges | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly eventBy = new Map<string, CounterCell>();
  private deliveriesSeen = 0;

  constructor(registry: Registry) {
    const lag = new CellHistogram(
      'leasewire_expiry_lag_seconds',
      'How late the expiry timer processed a due deadline (session, lease TTL, wait, lock-delay).',
      [],
      EXPIRY_LAG_BUCKETS,
      registry,
    ).cell();
    this.observer = { expiryLag: (ms) => lag.observe(Math.max(0, ms) / 1000) };

    const events = new CellCounter(
      'leasewire_lease_events_total',
      'Lease events by kind and reason. Grants: kind="acquired"; reassignments: kind="acquired" with a reason (a waiter took over); releases: kind="released"; expiries: kind="expired".',
      ['kind', 'reason'],
      registry,
    );
    for (const kind of Object.values(EventKinds)) {
      for (const reason of REASONS) this.eventBy.set(`${kind}/${reason}`, events.cell(kind, reason));
    }

    const self = this;
    const gauge = (name: string, help: string, read: (s: BrokerGauges) => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          if (self.source) this.set(read(self.source));
        },
      });
    new Gauge({
      name: 'leasewire_sessions',
      help: 'Live sessions: attached to a WebSocket, or detached (waiting for a resume, or HTTP sessions).',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const s = self.source;
        if (!s) return;
        const attached = s.attachedCount;
        this.set({ state: 'attached' }, attached);
        this.set({ state: 'detached' }, Math.max(0, s.store.stats.sessions - attached));
      },
    });
    gauge('leasewire_connections', 'Open WebSocket connections.', (s) => s.connectionCount);
    gauge('leasewire_leases_held', 'Leases held.', (s) => s.store.stats.leases);
    gauge('leasewire_waiters', 'Waiting acquires queued.', (s) => s.store.stats.waiters);
    gauge('leasewire_revision', 'Revision of the newest change.', (s) => s.store.revision);
    gauge('leasewire_store_writable', '1 while the store can make changes durable.', (s) =>
      s.store.writable ? 1 : 0,
    );
    gauge('leasewire_watches', 'Watch subscriptions (WebSocket watches and SSE streams).', (s) => s.hub.size);
    new Counter({
      name: 'leasewire_events_delivered_total',
      help: 'Lease events fanned out to watching connections and streams.',
      registers: [registry],
      collect() {
        const s = self.source;
        if (!s) return;
        const delta = s.hub.deliveries - self.deliveriesSeen;
        self.deliveriesSeen = s.hub.deliveries;
        if (delta > 0) this.inc(delta);
      },
    });
  }

  /** Starts counting the store's events and reading gauges from the broker. */
  observe(source: BrokerGauges): void {
    this.source = source;
    this.deliveriesSeen = source.hub.deliveries;
    this.unsubscribe = source.store.onEvents((events) => this.count(events));
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private count(events: readonly LeaseEvent[]): void {
    for (const e of events) {
      const cell = this.eventBy.get(`${e.kind}/${e.reason ?? 'none'}`);
      if (cell) cell.n++;
    }
  }
}
