import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../shared/close-codes.js';
import { RawClient, RawTcp, startScene } from '../helpers/raw-client.js';

describe('broker shutdown', () => {
  it('sends 1001 to every client, with or without a session, and stops accepting', async () => {
    const scene = await startScene();
    const { client: withSession } = await RawClient.session(scene.url, {}, { label: 'with a session' });
    await withSession.call({ type: 'acquire', name: 'jobs/a' }, 'granted');
    await withSession.call({ type: 'watch', prefix: '' }, 'watching');
    const beforeHello = await RawClient.open(scene.url, { label: 'before hello' });
    const raw = await RawTcp.upgraded(scene.port, 'raw socket');
    await raw.hello();

    const closing = scene.broker.close();
    const closes = await Promise.all([
      scene.bystander.client.waitForClose(),
      withSession.waitForClose(),
      beforeHello.waitForClose(),
    ]);
    expect(closes.map((c) => c.code)).toEqual([
      CloseCodes.GOING_AWAY,
      CloseCodes.GOING_AWAY,
      CloseCodes.GOING_AWAY,
    ]);
    expect((await raw.waitForCloseFrame()).code).toBe(CloseCodes.GOING_AWAY);
    await closing;
    await expect(RawClient.open(scene.url, { label: 'late client' })).rejects.toThrow(/could not connect/);
  });
});
