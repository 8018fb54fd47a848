import { Session, type SessionOptions } from './session.js';

/**
 * Opens `count` sessions with at most `concurrency` handshakes in flight, spreading them over
 * source addresses (loopback source ports run out near 28k per address).
 */
export async function openSessions(
  count: number,
  opts: Omit<SessionOptions, 'localAddress'> & {
    localAddresses?: string[];
    perAddress?: number;
    concurrency?: number;
    deadlineMs?: number;
  },
  onProgress?: (opened: number) => void,
): Promise<{ sessions: Session[]; failures: string[] }> {
  const sessions: Session[] = new Array(count);
  const failures: string[] = [];
  const addresses = opts.localAddresses?.length ? opts.localAddresses : [undefined];
  const perAddress = opts.perAddress ?? 25_000;
  const giveUpAt = performance.now() + (opts.deadlineMs ?? 120_000);
  let next = 0;
  let opened = 0;
  const worker = async () => {
    while (next < count && performance.now() < giveUpAt) {
      const i = next++;
      const localAddress = addresses[Math.floor(i / perAddress) % addresses.length];
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          sessions[i] = await Session.open({ ...opts, localAddress });
          break;
        } catch (err) {
          if (attempt === 2) failures.push(err instanceof Error ? err.message : String(err));
        }
      }
      opened++;
      if (onProgress && opened % 500 === 0) onProgress(opened);
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, opts.concurrency ?? 64) }, worker));
  return { sessions: sessions.filter((s) => s !== undefined), failures };
}
