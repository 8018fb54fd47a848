import type { Clock } from '../clock.js';
import type { BrokerOptions } from '../config.js';
import type { Logger } from '../log.js';
import type { JournalWriterIo } from './journal/index.js';
import { JournalStore } from './journal-store.js';
import type { LeaseStore } from './lease-store.js';
import { MemoryStore } from './memory-store.js';
import type { StoreObserver } from './table-store.js';

/** Test-only knobs of the journal store that are not broker options (see StartExtras.journal). */
export interface JournalTestKnobs {
  /** Wraps the journal's file writes, e.g. to play disk full. */
  io?: Partial<JournalWriterIo>;
  /** Smaller segments, so that pruning after a snapshot has something to delete. */
  segmentBytes?: number;
}

/** Builds the store the options name. */
export function createStore(
  o: BrokerOptions,
  clock: Clock,
  log: Logger,
  observer?: StoreObserver,
  journal: JournalTestKnobs = {},
): LeaseStore {
  const tableOptions = {
    lockDelayMs: o.lockDelayMs,
    historyLimit: o.historyLimit,
    maxLeasesPerSession: o.maxLeasesPerSession,
    maxWaitsPerSession: o.maxWaitsPerSession,
    minLeaseTtlMs: o.minTtlMs,
    maxLeaseTtlMs: o.maxLeaseTtlMs,
  };
  switch (o.store) {
    case 'memory':
      return new MemoryStore(clock, tableOptions, log, observer);
    case 'journal':
      return new JournalStore(
        clock,
        tableOptions,
        log,
        {
          dataDir: o.dataDir,
          fsync: o.fsync,
          repair: o.repair,
          snapshotEveryRecords: o.snapshotEveryRecords,
          ...journal,
        },
        observer,
      );
  }
}
