import type { Clock } from '../clock.js';
import type { LeaseTableOptions } from '../core/types.js';
import type { Logger } from '../log.js';
import { type StoreObserver, TableStore } from './table-store.js';

/** Keeps everything in memory: a restart forgets every session and restarts the fencing counter. */
export class MemoryStore extends TableStore {
  constructor(clock: Clock, tableOptions: Partial<LeaseTableOptions>, log: Logger, observer?: StoreObserver) {
    super(clock, tableOptions, log, observer);
  }

  async open(): Promise<void> {}

  protected persist(): undefined {
    return undefined;
  }
}
