/**
 * Bulk test users on both app stores: a batch larger than one INSERT statement lands whole, a batch
 * overlapping an earlier one lands not at all, and of concurrent overlapping batches never two land together.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/domain/auth-tokens.js';
import { createLoadTestUsers, loadTestEmail } from '../../src/domain/load-test-users.js';
import { verifyPassword } from '../../src/domain/users.js';
import type { Store } from '../../src/persistence/store.js';
import { APP_STORES } from '../helpers/app-stores.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const now = () => T0;

describe.each(APP_STORES)('load-test users on the $name store', (fixture) => {
  let store: Store;
  let tokens: TokenService;

  beforeAll(async () => {
    store = await fixture.open('load_test_users');
    tokens = await TokenService.open(store, randomBytes(32), 3600, now);
  });
  afterAll(async () => {
    await tokens?.close();
    await store?.close();
  });

  async function usersOfRun(runId: string): Promise<number> {
    const row = await store.get<{ n: number }>('SELECT COUNT(*) AS n FROM users WHERE email LIKE ?', [
      `loadtest-${runId}-%`,
    ]);
    return row?.n ?? -1;
  }

  it('creates a batch spanning several INSERT statements, with working tokens and password', async () => {
    const batch = await createLoadTestUsers(store, tokens, {
      count: 1203,
      runId: 'big',
      password: 'pw-load-1',
      now,
    });
    if (!batch.ok) throw new Error(`batch refused: ${batch.code}`);
    expect(batch.users).toHaveLength(1203);
    expect(await usersOfRun('big')).toBe(1203);
    const last = batch.users[1202];
    expect(last?.email).toBe(loadTestEmail('big', 1202));
    expect(await tokens.verify(last?.token ?? '')).toMatchObject({ id: last?.id, role: 'user' });
    const row = await store.get<{ password_hash: string; role: string; session_generation: number }>(
      'SELECT password_hash, role, session_generation FROM users WHERE id = ?',
      [last?.id ?? ''],
    );
    expect(row).toMatchObject({ role: 'user', session_generation: 0 });
    expect(await verifyPassword('pw-load-1', row?.password_hash ?? '')).toBe(true);
  });

  it('hashes the password once for the whole batch: every user of a run has the same hash', async () => {
    // One scrypt per batch is the point of the route (5,000 registrations are 5,000 scrypt runs); a
    // hash per user would differ by its salt.
    const batch = await createLoadTestUsers(store, tokens, {
      count: 700,
      runId: 'once',
      password: 'pw-load-2',
      now,
    });
    if (!batch.ok) throw new Error(`batch refused: ${batch.code}`);
    const row = await store.get<{ n: number }>(
      'SELECT COUNT(DISTINCT password_hash) AS n FROM users WHERE email LIKE ?',
      ['loadtest-once-%'],
    );
    expect(Number(row?.n)).toBe(1);
  });

  it('refuses a batch overlapping an earlier one and creates none of it', async () => {
    const first = await createLoadTestUsers(store, tokens, {
      count: 3,
      runId: 'dup',
      password: 'pw-load-2',
      now,
    });
    expect(first.ok).toBe(true);
    const again = await createLoadTestUsers(store, tokens, {
      count: 600,
      runId: 'dup',
      firstIndex: 2,
      password: 'pw-load-2',
      now,
    });
    expect(again).toMatchObject({ ok: false, code: 'EMAIL_TAKEN', details: { runId: 'dup' } });
    expect(await usersOfRun('dup')).toBe(3);
  });

  it('never lets two concurrent batches with a shared index both land', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, k) =>
        createLoadTestUsers(store, tokens, {
          count: 50,
          runId: 'race',
          firstIndex: k * 10,
          password: 'pw-load-3',
          now,
        }),
      ),
    );
    // Neighbouring batches share 40 indexes: which one wins is up to timing, but the run's rows must be
    // exactly the winners' and no two winners may overlap.
    const winners = results.filter((r) => r.ok);
    expect(winners.length).toBeGreaterThanOrEqual(1);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.code === 'EMAIL_TAKEN')).toBe(true);
    const emails = winners.flatMap((r) => (r.ok ? r.users.map((u) => u.email) : []));
    expect(new Set(emails).size).toBe(emails.length);
    expect(await usersOfRun('race')).toBe(emails.length);
  });

  it('refuses a count out of range and a malformed run id', async () => {
    expect(await createLoadTestUsers(store, tokens, { count: 0, password: 'pw', now })).toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect(
      await createLoadTestUsers(store, tokens, { count: 1, runId: 'Bad_Id', password: 'pw', now }),
    ).toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
