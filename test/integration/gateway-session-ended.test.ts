import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../shared/close-codes.js';
import { RawClient, startScene } from '../helpers/raw-client.js';

describe('a WebSocket session ended from elsewhere', () => {
  it('closes the socket with 4006 when the session is deleted over HTTP, and releases its leases', async () => {
    const scene = await startScene();
    const { client: watcher } = await RawClient.session(scene.url, {}, { label: 'watcher' });
    await watcher.call({ type: 'watch', prefix: 'ended/' }, 'watching');
    const { client: holder, welcome } = await RawClient.session(
      scene.url,
      { owner: 'h' },
      { label: 'holder' },
    );
    await holder.call({ type: 'acquire', name: 'ended/a' }, 'granted');
    const httpUrl = scene.url.replace(/^ws/, 'http').replace(/\/v1$/, '');
    const res = await fetch(`${httpUrl}/v1/sessions/${welcome.sessionId}`, {
      method: 'DELETE',
      headers: { 'leasewire-session-secret': welcome.secret },
    });
    expect(res.status).toBeLessThan(300);
    const closed = await holder.waitForClose();
    expect(closed.code).toBe(CloseCodes.SESSION_ENDED);
    const events = await watcher.waitForEvents((evs) => evs.some((e) => e.kind === 'released'));
    const released = events.find((e) => e.kind === 'released');
    expect(released).toMatchObject({ kind: 'released', name: 'ended/a', reason: 'session-closed' });
  });
});
