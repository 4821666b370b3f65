/**
 * A restart mid-queue keeps every place: the real process, killed with SIGKILL after its on-sale opened
 * (shuffled early arrivals, later ones behind, some admitted), comes back on the same data directory
 * (and, in the PostgreSQL pass, the same database) with every buyer at the same position and every
 * admission with the same token.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, createOnsale, createShow, login, newUser } from '../helpers/catalog.js';
import { spawnService } from '../helpers/process.js';
import { client } from '../helpers/server.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-onsale-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const ENV = {
  ...ADMIN_ENV,
  DATA_DIR: dataDir,
  SEED_DEMO: 'false',
  WORKERS: '1',
  PARTITIONS: '8',
  LOG_LEVEL: 'info',
};
const EARLY = 40;
const LATE = 20;

interface Answer {
  position: number | null;
  state: string;
  admission?: { token: string; expiresAt: string };
}

describe('on-sale restart', () => {
  it('keeps every place and admission through SIGKILL', async () => {
    const first = await spawnService({ env: ENV });
    const api = client(first.url);
    const adminToken = await login(api, ADMIN.email, ADMIN.password);
    const { showId } = await createShow(api, { adminToken });
    const id = await createOnsale(api, adminToken, [showId], 120);
    const buyers = [];
    for (let i = 0; i < EARLY; i++) buyers.push(await newUser(api));
    for (const b of buyers)
      expect((await api('POST', `/api/onsales/${id}/queue`, { token: b.token })).status).toBe(201);
    // Open now: the next tick of the admission clock shuffles the early arrivals.
    await api('PATCH', `/api/admin/onsales/${id}`, {
      token: adminToken,
      body: { opensAt: new Date().toISOString() },
    });
    const poll = async (base: typeof api, token: string) =>
      (await base('GET', `/api/onsales/${id}/queue`, { token })).body as Answer;
    while ((await poll(api, buyers[0]!.token)).position === null) await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < LATE; i++) {
      const late = await newUser(api);
      buyers.push(late);
      await api('POST', `/api/onsales/${id}/queue`, { token: late.token });
    }
    // Someone admitted before the kill, so admissions are part of what must survive.
    while ((await api('GET', `/api/admin/onsales/${id}`, { token: adminToken })).body.onsale.admitted === 0)
      await new Promise((r) => setTimeout(r, 50));
    const before = await Promise.all(buyers.map((b) => poll(api, b.token)));
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await spawnService({ env: ENV });
    try {
      const api2 = client(second.url);
      const after = await Promise.all(buyers.map((b) => poll(api2, b.token)));
      expect(after.map((a) => a.position)).toEqual(before.map((b) => b.position));
      expect(new Set(after.map((a) => a.position))).toEqual(
        new Set(Array.from({ length: EARLY + LATE }, (_, i) => i + 1)),
      );
      // Late arrivals stay behind every early one, in arrival order.
      expect(after.slice(EARLY).map((a) => a.position)).toEqual(
        Array.from({ length: LATE }, (_, i) => EARLY + i + 1),
      );
      const admittedBefore = before.filter((b) => b.state === 'admitted');
      expect(admittedBefore.length).toBeGreaterThan(0);
      for (const [i, b] of before.entries())
        if (b.state === 'admitted') expect(after[i]!.admission?.token).toBe(b.admission!.token);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 120_000);
});
