/**
 * A registration flood must not stall holds. scrypt and the journals' fdatasync share libuv's thread
 * pool; with password hashing bounded (HASH_CONCURRENCY), a hold's flush always finds a free thread, so
 * holds issued while the flood is queued finish long before it does. Asserted by ordering (how many
 * registrations had finished when each hold did), and the bound through the public metric.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const FLOOD = 96;
const HOLDS = 5;
const HASH_CONCURRENCY = 2;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    ...ADMIN_ENV,
    // Flushes on the pool, as in production.
    JOURNAL_SYNC: 'full',
    TRUSTED_PROXIES: '127.0.0.1',
    REGISTER_MAX_PER_ADDRESS: '3',
    HASH_CONCURRENCY: String(HASH_CONCURRENCY),
    HASH_QUEUE_MAX: String(FLOOD * 2),
  });
});
afterAll(() => server?.destroy());

async function metric(name: string): Promise<number> {
  const res = await server.api('GET', '/metrics');
  const line = String(res.body)
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

describe('registration flood', () => {
  it('does not hold up holds, and never runs more password hashes at once than the bound', async () => {
    const { showId } = await createShow(server.api);
    const holder = await newUser(server.api);
    let registered = 0;
    // Each from its own client address behind the trusted proxy, so the per-address limit stays out of it.
    const flood = Array.from({ length: FLOOD }, (_, i) =>
      server
        .api('POST', '/api/register', {
          body: {
            name: `Flood ${i}`,
            email: `flood-${i}-${Date.now()}@example.com`,
            password: 'password-123',
          },
          headers: { 'x-forwarded-for': `198.18.${i >> 8}.${i & 255}` },
        })
        .then((res) => {
          registered++;
          return res.status;
        }),
    );
    // Wait (boundedly) until the flood is queued at the server before the holds start.
    for (let poll = 0; poll < 500 && !((await metric('boxoffice_password_hashes_queued')) > 0); poll++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    const registeredWhenHeld: number[] = [];
    for (let i = 1; i <= HOLDS; i++) {
      const hold = await server.api('POST', `/api/shows/${showId}/holds`, {
        token: holder.token,
        body: { seats: [`A${i}`] },
      });
      expect(hold.status).toBe(201);
      registeredWhenHeld.push(registered);
    }
    const statuses = await Promise.all(flood);
    expect(statuses.every((s) => s === 201)).toBe(true);
    // Every hold was done before even half of the flood was: none waited behind the queued hashes.
    expect(Math.max(...registeredWhenHeld)).toBeLessThan(FLOOD / 2);
    expect(await metric('boxoffice_password_hashes_peak_running')).toBe(HASH_CONCURRENCY);
    expect(await metric('boxoffice_password_hashes_running')).toBe(0);
    expect(await metric('boxoffice_password_hashes_queued')).toBe(0);
  });

  it('answers 503 OVERLOADED with retry-after once the hash queue is full', async () => {
    const tight = await startTestServer({ HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '1' });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          tight.api('POST', '/api/register', {
            body: { name: 'T', email: `tight-${i}-${Date.now()}@example.com`, password: 'password-123' },
          }),
        ),
      );
      const refused = statuses.filter((r) => r.status === 503);
      expect(statuses.filter((r) => r.status === 201).length).toBeGreaterThanOrEqual(2);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect(r.body.error.code).toBe('OVERLOADED');
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      }
    } finally {
      await tight.destroy();
    }
  });
});
