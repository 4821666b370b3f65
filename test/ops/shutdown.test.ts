/**
 * Graceful shutdown of the real process under load: SIGTERM while many clients hold seats. The process
 * finishes what it accepted, closes feeds with 1001, snapshots the journals and exits 0; the next start
 * replays nothing, and every hold that was acknowledged with 201 is still there.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { spawnService } from '../helpers/process.js';
import { client } from '../helpers/server.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-shutdown-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const ENV = {
  ...ADMIN_ENV,
  DATA_DIR: dataDir,
  SEED_DEMO: 'false',
  WORKERS: '1',
  PARTITIONS: '8',
  HOLD_TTL_SECONDS: '3600',
  HOLD_MAX_SECONDS: '3600',
  JOURNAL_SYNC: 'full',
};
const USERS = 40;

function replayedOf(logs: Record<string, unknown>[]): number {
  return logs.filter((l) => l.msg === 'shard recovered').reduce((n, l) => n + (l.replayed as number), 0);
}

describe('graceful shutdown', () => {
  it('keeps every acknowledged hold through SIGTERM under load and restarts with nothing to replay', async () => {
    const first = await spawnService({ env: ENV });
    const api = client(first.url);
    const layout = {
      rows: Array.from({ length: 20 }, (_, r) => ({
        label: String.fromCharCode(65 + r),
        category: 'STD',
        seats: 20,
      })),
    };
    const { showId } = await createShow(api, { layout, prices: { STD: 10000 } });
    const users = await Promise.all(Array.from({ length: USERS }, () => newUser(api)));
    const feed = new WebSocket(`${first.url.replace('http', 'ws')}/ws/shows/${showId}`);
    const feedClosed = new Promise<number>((resolve) => feed.on('close', (code) => resolve(code)));
    await new Promise((resolve) => feed.once('message', resolve));

    const acknowledged: { holdId: string; token: string; seat: string }[] = [];
    const clientLoop = async (u: number) => {
      const { token } = users[u]!;
      for (let k = 0; k < 10; k++) {
        const seat = `${String.fromCharCode(65 + Math.floor(u / 2))}${(u % 2) * 10 + k + 1}`;
        try {
          const res = await api('POST', `/api/shows/${showId}/holds`, { body: { seats: [seat] }, token });
          if (res.status === 201) acknowledged.push({ holdId: res.body.hold.id, token, seat });
          else if (res.status === 503)
            return; // draining: refused, and said so
          else throw new Error(`unexpected ${res.status} ${JSON.stringify(res.body)}`);
        } catch (err) {
          if ((err as Error).message.startsWith('unexpected')) throw err;
          return; // the server stopped accepting connections
        }
      }
    };
    const load = Promise.all(Array.from({ length: USERS }, (_, u) => clientLoop(u)));
    while (acknowledged.length < 50) await new Promise((r) => setTimeout(r, 5));
    first.child.kill('SIGTERM');
    await load;
    const exit = await first.exited;
    expect(exit.code).toBe(0);
    expect(await feedClosed).toBe(1001);
    expect(acknowledged.length).toBeGreaterThanOrEqual(50);
    expect(first.logs.some((l) => l.msg === 'BoxOffice stopped')).toBe(true);

    const second = await spawnService({ env: ENV });
    try {
      expect(replayedOf(second.logs)).toBe(0);
      const api2 = client(second.url);
      for (const { holdId, token, seat } of acknowledged) {
        const res = await api2('GET', `/api/holds/${holdId}`, { token });
        expect(res.status, `acknowledged hold ${holdId} lost`).toBe(200);
        expect(res.body.hold.seats).toEqual([seat]);
      }
      const map = await api2('GET', `/api/shows/${showId}/seats`);
      expect(map.body.counts.held).toBeGreaterThanOrEqual(acknowledged.length);
    } finally {
      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    }
  });
});
