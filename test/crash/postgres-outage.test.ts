/**
 * PostgreSQL going away under load (issue 14, item 5): while the server is down, changes answer 503 with
 * Retry-After (never 500), seat maps are still served from memory, nothing acknowledged before or
 * during the outage is lost, and the service recovers by itself when the server is back.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { type ServiceProcess, spawnService } from '../helpers/process.js';
import { client } from '../helpers/server.js';

let postgres: TestPostgres;
let service: ServiceProcess | undefined;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-pg-outage-'));

beforeAll(async () => {
  // A server of this test's own: it is stopped and started again.
  postgres = await startTestPostgres();
}, 60_000);
afterAll(async () => {
  if (service && service.child.exitCode === null) {
    service.child.kill('SIGKILL');
    await service.exited;
  }
  await postgres?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const ROWS = 'ABCDEFGHIJ';

/** The service on this test's PostgreSQL; a short statement timeout so a dead server is noticed soon. */
function serviceEnv(): Record<string, string> {
  return {
    ...ADMIN_ENV,
    DATA_DIR: dataDir,
    DATABASE_URL: postgres.url,
    DATABASE_STATEMENT_TIMEOUT_MS: '1000',
    SEED_DEMO: 'false',
    WORKERS: '1',
    PARTITIONS: '4',
    HOLD_TTL_SECONDS: '3600',
    HOLD_MAX_SECONDS: '3600',
    MAX_SEATS_PER_USER: '20',
  };
}

describe('PostgreSQL down and back under load', () => {
  it('refuses changes with 503 while it is down, keeps serving seat maps, loses nothing acknowledged, and recovers', async () => {
    service = await spawnService({ env: serviceEnv() });
    const api = client(service.url);
    const layout = { rows: [...ROWS].map((label) => ({ label, category: 'STD', seats: 20 })) };
    const { showId } = await createShow(api, { layout, prices: { STD: 10000 } });
    const users = await Promise.all(Array.from({ length: 10 }, () => newUser(api)));

    const acknowledged: { holdId: string; token: string; seat: string }[] = [];
    const statuses = new Map<number, number>();
    let phase: 'before' | 'down' | 'after' = 'before';
    const refusedWhileDown: { status: number; code: string; retryAfter: string | null }[] = [];
    const mapsWhileDown: number[] = [];
    // Ten clients, each holding its own row seat by seat, one request at a time, through the outage.
    const clientLoop = async (u: number) => {
      const { token } = users[u]!;
      for (let k = 1; k <= 20; k++) {
        const seat = `${ROWS[u]}${k}`;
        for (let attempt = 0; attempt < 400; attempt++) {
          const res = await api('POST', `/api/shows/${showId}/holds`, { body: { seats: [seat] }, token });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 201) {
            acknowledged.push({ holdId: res.body.hold.id, token, seat });
            break;
          }
          if (phase === 'down')
            refusedWhileDown.push({
              status: res.status,
              code: res.body.error?.code,
              retryAfter: res.headers.get('retry-after'),
            });
          // 409: a retry after an answer that was lost; the seat is ours already, or someone's.
          if (res.status === 409) break;
          expect(res.status, JSON.stringify(res.body)).toBe(503);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const load = Promise.all(users.map((_, u) => clientLoop(u)));

    while (acknowledged.length < 20) await new Promise((r) => setTimeout(r, 10));
    // People are looking at this show's map: the service keeps it in memory, fed by the actor's events.
    expect((await api('GET', `/api/shows/${showId}/seats`)).status).toBe(200);
    await postgres.halt();
    phase = 'down';
    // While it is down: refusals are 503 with retry-after, and the seat map still answers from memory.
    while (refusedWhileDown.length < 10) {
      mapsWhileDown.push((await api('GET', `/api/shows/${showId}/seats`)).status);
      await new Promise((r) => setTimeout(r, 50));
    }
    // A change to the app data (a new account) is refused the same way, by the database's absence.
    const registration = await api('POST', '/api/register', {
      body: { name: 'Ravi', email: `ravi-${Date.now()}@example.com`, password: 'a good passphrase' },
    });
    expect(registration.status).toBe(503);
    expect(registration.body.error.code).toBe('STORE_UNAVAILABLE');
    expect(registration.headers.get('retry-after')).not.toBeNull();
    await postgres.restart();
    phase = 'after';
    await load;

    expect(statuses.get(500) ?? 0).toBe(0);
    expect(refusedWhileDown.every((r) => r.status === 503 && r.retryAfter !== null)).toBe(true);
    expect(mapsWhileDown.length).toBeGreaterThan(0);
    expect(mapsWhileDown.every((status) => status === 200)).toBe(true);

    // Every hold acknowledged before, during or after the outage is there, in the service and after a
    // restart from what PostgreSQL kept.
    service.child.kill('SIGKILL');
    await service.exited;
    service = await spawnService({ env: serviceEnv() });
    const again = client(service.url);
    for (const { holdId, token, seat } of acknowledged) {
      const res = await again('GET', `/api/holds/${holdId}`, { token });
      expect(res.status, `acknowledged hold ${holdId} (${seat}) lost`).toBe(200);
      expect(res.body.hold.seats).toEqual([seat]);
    }
    const map = await again('GET', `/api/shows/${showId}/seats`);
    // A hold committed just as the server went away may have lost its answer: more held, never fewer.
    expect(map.body.counts.held).toBeGreaterThanOrEqual(acknowledged.length);
  }, 120_000);
});
