import { describe, expect, it } from 'vitest';
import type { Election, ElectionChange } from '../../client/index.js';
import { connect } from '../../client/index.js';
import { cleanup, proxyFor, statusReached, testBroker, testClient, within } from '../client/support.js';

/** Records every change of an election from its creation, and waits for one that matches. */
class ChangeLog {
  readonly changes: ElectionChange[] = [];
  private waiters: Array<{ match: (c: ElectionChange) => boolean; resolve: (c: ElectionChange) => void }> =
    [];

  constructor(election: Election) {
    election.onChange((c) => {
      this.changes.push(c);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(c)) return true;
        w.resolve(c);
        return false;
      });
    });
  }

  /** Changes as short strings: `elected`, `deposed:expired`, `leader:a`, `leader:-`. */
  get summary(): string[] {
    return this.changes.map((c) =>
      c.type === 'leaderChanged'
        ? `leader:${c.leader?.owner ?? '-'}`
        : c.type === 'deposed'
          ? `deposed:${c.reason}`
          : c.type,
    );
  }

  waitFor(match: (c: ElectionChange) => boolean, label: string): Promise<ElectionChange> {
    const seen = this.changes.find(match);
    if (seen) return Promise.resolve(seen);
    return within(new Promise((resolve) => this.waiters.push({ match, resolve })), label);
  }

  elected(label: string): Promise<ElectionChange> {
    return this.waitFor((c) => c.type === 'elected', label);
  }

  leaderIs(owner: string | null, label: string): Promise<ElectionChange> {
    return this.waitFor((c) => c.type === 'leaderChanged' && (c.leader?.owner ?? null) === owner, label);
  }
}

describe('client: elections', () => {
  it('hands leadership to the next candidate when the leader closes', async () => {
    const broker = await testBroker();
    const a = await connect(broker.url, { owner: 'a' });
    cleanup(() => a.close());
    const b = await testClient(broker.url, { owner: 'b' });

    const ea = a.elect('services/scheduler', { meta: 'a:8080' });
    const la = new ChangeLog(ea);
    await la.elected('a to be elected');
    expect(ea.isLeader).toBe(true);
    const aToken = ea.lease?.token ?? 0;

    const eb = b.elect('services/scheduler', { meta: 'b:8080' });
    const lb = new ChangeLog(eb);
    await lb.leaderIs('a', 'b to observe a as leader');
    expect(eb.leader).toMatchObject({ owner: 'a', metaText: 'a:8080', token: aToken });
    expect(eb.isLeader).toBe(false);

    await a.close();
    const change = await lb.elected('b to be elected');
    if (change.type !== 'elected') throw new Error('unreachable');
    expect(change.lease.token).toBeGreaterThan(aToken);
    await lb.leaderIs('b', 'b to observe itself as leader');
    expect(eb.leader?.metaText).toBe('b:8080');
    expect(lb.summary).toEqual(expect.arrayContaining(['leader:a', 'elected', 'leader:b']));
    expect(la.summary).toEqual(expect.arrayContaining(['elected']));
    expect(la.summary).not.toContain('deposed:closed');
  });

  it('hands over at once on resign', async () => {
    const broker = await testBroker();
    const a = await testClient(broker.url, { owner: 'a' });
    const b = await testClient(broker.url, { owner: 'b' });
    const ea = a.elect('leader');
    await new ChangeLog(ea).elected('a to be elected');
    const eb = b.elect('leader');
    const lb = new ChangeLog(eb);
    await lb.leaderIs('a', 'b to see a lead');
    await ea.resign();
    expect(ea.isLeader).toBe(false);
    await lb.elected('b to be elected');
    expect((await a.get('leader'))?.owner).toBe('b');
    await eb.resign();
    expect(await a.get('leader')).toBeNull();
  });

  it('deposes a partitioned leader and lets it campaign again on a new session', async () => {
    const broker = await testBroker({ minTtlMs: 100 });
    const proxy = await proxyFor(broker);
    const a = await testClient(proxy.url('/v1'), { owner: 'a', ttlMs: 800, connectTimeoutMs: 300 });
    const b = await testClient(broker.url, { owner: 'b' });
    const ea = a.elect('cron');
    const la = new ChangeLog(ea);
    await la.elected('a to be elected');
    const eb = b.elect('cron');
    const lb = new ChangeLog(eb);
    await lb.leaderIs('a', 'b to see a lead');

    proxy.blackhole(true);
    await la.waitFor((c) => c.type === 'deposed', 'a to be deposed');
    expect(la.summary).toContain('deposed:expired');
    await lb.elected('b to take over after the expiry');
    proxy.blackhole(false);
    await statusReached(a, 'connected', 10_000);

    // a campaigns again behind b: b's resignation hands the lead back.
    await within(
      (async () => {
        while (((await b.get('cron'))?.waiters ?? 0) === 0) await new Promise((r) => setTimeout(r, 20));
      })(),
      'a to be queued again',
    );
    await eb.resign();
    await la.waitFor(
      () => la.changes.filter((c) => c.type === 'elected').length === 2,
      'a to be elected again',
    );
    expect(ea.isLeader).toBe(true);
    const s = la.summary;
    expect(s.indexOf('elected')).toBeLessThan(s.indexOf('deposed:expired'));
    expect(s.indexOf('deposed:expired')).toBeLessThan(s.lastIndexOf('elected'));
  });
});
