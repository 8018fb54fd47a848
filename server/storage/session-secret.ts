import { createHash, timingSafeEqual } from 'node:crypto';
import { nanoid } from 'nanoid';

/** Session ids are public (they appear in events); secrets prove ownership on resume. */
export function newSessionId(): string {
  return nanoid();
}

export function newSecret(): string {
  return nanoid(32);
}

/** Only the hash is kept in memory and in the journal, so a leaked data dir cannot resume sessions. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An id for a store's history (see LeaseStore.epoch). */
export function newEpoch(): string {
  return nanoid(12);
}
