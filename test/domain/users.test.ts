/**
 * Password hashing and the booking-history cursor, in isolation; then UserService on both app stores
 * (registration races, password changes ending sessions, the admin account, history paging).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/domain/auth-tokens.js';
import {
  decodeCursor,
  encodeCursor,
  hashPassword,
  isHashCurrent,
  SCRYPT_LOG_N,
  UserService,
  verifyPassword,
} from '../../src/domain/users.js';
import type { Store } from '../../src/persistence/store.js';
import { APP_STORES } from '../helpers/app-stores.js';

describe('password hashes', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hashPassword('correct horse');
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct horsf', hash)).toBe(false);
  });

  it('salts every hash and stores its parameters with it', async () => {
    const [a, b] = await Promise.all([hashPassword('same'), hashPassword('same')]);
    expect(a).not.toBe(b);
    expect(a.split('$').slice(0, 4)).toEqual(['scrypt', String(SCRYPT_LOG_N), '8', '1']);
    expect(isHashCurrent(a)).toBe(true);
  });

  it('never matches a malformed or tampered hash', async () => {
    const hash = await hashPassword('pw-123456');
    const parts = hash.split('$');
    expect(await verifyPassword('pw-123456', '!locked')).toBe(false);
    expect(await verifyPassword('pw-123456', '')).toBe(false);
    // An absurd cost would make one login eat the machine: refused before hashing.
    expect(await verifyPassword('pw-123456', ['scrypt', '30', ...parts.slice(2)].join('$'))).toBe(false);
    expect(await verifyPassword('pw-123456', [...parts.slice(0, 5), 'AAAA'].join('$'))).toBe(false);
  });

  it('still verifies a hash made with older, cheaper parameters, and reports it as not current', async () => {
    const { scryptSync, randomBytes } = await import('node:crypto');
    const salt = randomBytes(16);
    const key = scryptSync('old-password', salt, 32, { N: 2 ** 10, r: 8, p: 1 });
    const old = ['scrypt', 10, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
    expect(await verifyPassword('old-password', old)).toBe(true);
    expect(isHashCurrent(old)).toBe(false);
  });
});

describe('history cursor', () => {
  it('round-trips and rejects anything it did not make', () => {
    expect(decodeCursor(encodeCursor('2026-01-01T00:00:00.000Z', 'bkg_1'))).toEqual({
      createdAt: '2026-01-01T00:00:00.000Z',
      id: 'bkg_1',
    });
    expect(decodeCursor('not-base64-json')).toBeUndefined();
    expect(decodeCursor(Buffer.from('[1,2]').toString('base64url'))).toBeUndefined();
    expect(decodeCursor(Buffer.from('{"a":1}').toString('base64url'))).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------
// UserService on both app stores.

const T0 = Date.parse('2026-12-01T10:00:00.000Z');

function userService(store: Store, tokens: TokenService): UserService {
  return new UserService(store, tokens, {
    loginMaxFailures: 5,
    loginWindowSeconds: 900,
    loginMaxBackoffSeconds: 60,
    loginAccountSlowdownAfter: 50,
    loginAccountMaxDelaySeconds: 30,
    loginMaxFailuresPerAddress: 100,
    hashConcurrency: 4,
    hashQueueMax: 100,
    now: () => T0,
  });
}

/** The catalog rows a booking points at, then `count` bookings of `userId`, one minute apart. */
async function addBookings(store: Store, userId: string, count: number): Promise<void> {
  const at = new Date(T0).toISOString();
  await store.run(
    `INSERT INTO movies (id, title, language, duration_min, certificate, release_date, created_at, updated_at)
     VALUES ('mov_1', 'A Film', 'en', 120, 'U', '2026-01-01', ?, ?)`,
    [at, at],
  );
  await store.run(
    "INSERT INTO theaters (id, name, city, created_at, updated_at) VALUES ('thr_1', 'Hall', 'Pune', ?, ?)",
    [at, at],
  );
  await store.run(
    `INSERT INTO screens (id, theater_id, name, layout, seat_count, categories, created_at, updated_at)
     VALUES ('scr_1', 'thr_1', 'One', '{}', 10, '[]', ?, ?)`,
    [at, at],
  );
  await store.run(
    `INSERT INTO shows (id, movie_id, screen_id, theater_id, city, start_time, end_time, language, prices,
       currency, created_at, updated_at)
     VALUES ('shw_1', 'mov_1', 'scr_1', 'thr_1', 'Pune', ?, ?, 'en', '{}', 'INR', ?, ?)`,
    [at, at, at, at],
  );
  for (let k = 0; k < count; k++) {
    const created = new Date(T0 + k * 60_000).toISOString();
    await store.run(
      `INSERT INTO bookings (id, user_id, show_id, hold_id, hold_expires_at, seats, status, subtotal, discount,
         fees, total, currency, payment_method, created_at, updated_at)
       VALUES (?, ?, 'shw_1', ?, ?, '["A1"]', ?, 100, 0, 10, 110, 'INR', 'card', ?, ?)`,
      [`bkg_${k}`, userId, `hld_${k}`, created, k % 2 === 0 ? 'confirmed' : 'cancelled', created, created],
    );
  }
}

describe.each(APP_STORES)('UserService on the $name store', (fixture) => {
  let store: Store;
  let tokens: TokenService;
  let users: UserService;
  const key = randomBytes(32);

  beforeAll(async () => {
    store = await fixture.open('users');
    tokens = await TokenService.open(store, key, 3600, () => T0);
    users = userService(store, tokens);
  });
  afterAll(async () => {
    await tokens?.close();
    await store?.close();
  });

  async function register(email: string, password = 'a good passphrase') {
    const session = await users.register({ name: 'Asha', email, password });
    if (!session.ok) throw new Error(`registration failed: ${session.code}`);
    return session;
  }

  it('registers, signs in, and refuses a second account for the same email in any case', async () => {
    const session = await register('Asha@Example.com');
    expect(session.user).toMatchObject({ email: 'asha@example.com', role: 'user', phone: null });
    expect(await tokens.verify(session.token)).toMatchObject({ id: session.user.id });
    expect(await users.get(session.user.id)).toEqual({ ok: true, user: session.user });
    const again = await users.register({
      name: 'B',
      email: 'ASHA@example.com',
      password: 'another passphrase',
    });
    expect(again).toMatchObject({ ok: false, code: 'EMAIL_TAKEN' });
    const login = await users.login('asha@EXAMPLE.com', 'a good passphrase', '10.0.0.1');
    expect(login).toMatchObject({ ok: true, user: { id: session.user.id } });
    expect(await users.login('asha@example.com', 'wrong passphrase', '10.0.0.1')).toMatchObject({
      ok: false,
      code: 'INVALID_CREDENTIALS',
    });
    expect(await users.get('usr_missing')).toMatchObject({ ok: false, code: 'USER_NOT_FOUND' });
  });

  it('lets exactly one of many concurrent registrations of one email win; the others get EMAIL_TAKEN', async () => {
    const emails = ['race@example.com', 'RACE@example.com', 'Race@Example.com', 'race@EXAMPLE.COM'];
    // Open the pool's connections first: a registration waiting for a new connection would lose the
    // race at the early email check, and the unique index would never be tested.
    await Promise.all(Array.from({ length: 10 }, () => store.get('SELECT 1 AS one')));
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, k) =>
        users.register({ name: `R${k}`, email: emails[k % emails.length]!, password: 'a good passphrase' }),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.code)).toEqual(Array(7).fill('EMAIL_TAKEN'));
    const count = await store.get<{ n: number }>('SELECT COUNT(*) AS n FROM users WHERE email = ?', [
      'race@example.com',
    ]);
    expect(count?.n).toBe(1);
  });

  it('upgrades a hash made with older parameters at the next login', async () => {
    const { scryptSync } = await import('node:crypto');
    const session = await register('old-hash@example.com', 'old passphrase');
    const salt = randomBytes(16);
    const key = scryptSync('old passphrase', salt, 32, { N: 2 ** 10, r: 8, p: 1 });
    const old = ['scrypt', 10, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
    await store.run('UPDATE users SET password_hash = ? WHERE id = ?', [old, session.user.id]);
    expect(await users.login('old-hash@example.com', 'old passphrase', '10.0.0.2')).toMatchObject({
      ok: true,
    });
    const row = await store.get<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = ?', [
      session.user.id,
    ]);
    expect(row && isHashCurrent(row.password_hash)).toBe(true);
    expect(await verifyPassword('old passphrase', row?.password_hash ?? '')).toBe(true);
  });

  it('changes name and phone, and a password change ends every other session but the caller’s', async () => {
    const first = await register('patch@example.com');
    const other = await users.login('patch@example.com', 'a good passphrase', '10.0.0.3');
    if (!other.ok) throw new Error('login failed');
    const caller = await tokens.verify(first.token);
    if (!caller) throw new Error('token refused');

    const named = await users.update(first.user.id, { name: 'Asha R', phone: '+919876543210' }, caller);
    expect(named).toMatchObject({ ok: true, user: { name: 'Asha R', phone: '+919876543210' } });
    expect(await users.update(first.user.id, { phone: null }, caller)).toMatchObject({
      ok: true,
      user: { name: 'Asha R', phone: null },
    });
    expect(await tokens.verify(other.token)).toBeDefined();

    expect(await users.update(first.user.id, { password: 'a new passphrase' }, caller)).toMatchObject({
      ok: false,
      code: 'INVALID_CREDENTIALS',
    });
    const changed = await users.update(
      first.user.id,
      { password: 'a new passphrase', currentPassword: 'a good passphrase' },
      caller,
      '10.0.0.3',
    );
    expect(changed).toMatchObject({ ok: true, user: { name: 'Asha R' } });
    expect(await tokens.verify(other.token)).toBeUndefined();
    expect(await tokens.verify(first.token)).toMatchObject({ id: first.user.id });
    expect(await users.login('patch@example.com', 'a good passphrase', '10.0.0.4')).toMatchObject({
      code: 'INVALID_CREDENTIALS',
    });
    const fresh = await users.login('patch@example.com', 'a new passphrase', '10.0.0.4');
    expect(fresh.ok && (await tokens.verify(fresh.token))).toMatchObject({ id: first.user.id });

    // A restart loads the generation the change committed.
    const restarted = await TokenService.open(store, key, 3600, () => T0);
    expect(await restarted.verify(other.token)).toBeUndefined();
    expect(await restarted.verify(first.token)).toMatchObject({ id: first.user.id });
    await restarted.close();
  });

  it('lets only one of concurrent password changes made with the same current password land', async () => {
    const owner = await register('twice@example.com');
    const caller = await tokens.verify(owner.token);
    const changes = await Promise.all(
      ['first new passphrase', 'second new passphrase', 'third new passphrase'].map((password) =>
        users.update(owner.user.id, { password, currentPassword: 'a good passphrase' }, caller, '10.0.0.9'),
      ),
    );
    const landed = changes.flatMap((change, k) => (change.ok ? [k] : []));
    expect(landed).toHaveLength(1);
    for (const change of changes.filter((c) => !c.ok))
      expect(change).toMatchObject({
        code: 'INVALID_CREDENTIALS',
        details: { fields: { currentPassword: 'wrong' } },
      });
    const winner = ['first new passphrase', 'second new passphrase', 'third new passphrase'][landed[0] ?? -1];
    expect(await users.login('twice@example.com', winner ?? '', '10.0.0.9')).toMatchObject({ ok: true });
    const row = await store.get<{ session_generation: number }>(
      'SELECT session_generation FROM users WHERE id = ?',
      [owner.user.id],
    );
    expect(row?.session_generation).toBe(1);
  });

  it('creates the admin, keeps its sessions for the same password and ends them on a new one', async () => {
    const admin = await users.ensureAdmin('Root@Example.com', 'admin passphrase 1');
    expect(admin).toMatchObject({ email: 'root@example.com', role: 'admin' });
    const session = await users.login('root@example.com', 'admin passphrase 1', '10.0.0.5');
    if (!session.ok) throw new Error('admin login failed');
    expect(await users.ensureAdmin('root@example.com', 'admin passphrase 1')).toEqual(admin);
    expect(await tokens.verify(session.token)).toMatchObject({ id: admin.id, role: 'admin' });
    await users.ensureAdmin('root@example.com', 'admin passphrase 2');
    expect(await tokens.verify(session.token)).toBeUndefined();
    expect(await users.login('root@example.com', 'admin passphrase 2', '10.0.0.5')).toMatchObject({
      ok: true,
    });

    // An ordinary account with that email is promoted rather than duplicated.
    const plain = await register('promote@example.com');
    expect(await users.ensureAdmin('promote@example.com', 'admin passphrase 3')).toMatchObject({
      id: plain.user.id,
      role: 'admin',
    });
  });

  it('pages the booking history newest first, filtered by status, and refuses a foreign cursor', async () => {
    const owner = await register('history@example.com');
    await addBookings(store, owner.user.id, 5);
    const first = await users.bookingHistory(owner.user.id, { limit: 2 });
    if (!first.ok) throw new Error('history failed');
    expect(first.rows.map((row) => row.id)).toEqual(['bkg_4', 'bkg_3']);
    const second = await users.bookingHistory(owner.user.id, { limit: 2, cursor: first.nextCursor ?? '' });
    if (!second.ok) throw new Error('history failed');
    expect(second.rows.map((row) => row.id)).toEqual(['bkg_2', 'bkg_1']);
    const last = await users.bookingHistory(owner.user.id, { limit: 2, cursor: second.nextCursor ?? '' });
    expect(last).toMatchObject({ ok: true, nextCursor: null });
    expect(last.ok && last.rows.map((row) => row.id)).toEqual(['bkg_0']);
    const confirmed = await users.bookingHistory(owner.user.id, { status: 'confirmed' });
    expect(confirmed.ok && confirmed.rows.map((row) => [row.id, row.total])).toEqual([
      ['bkg_4', 110],
      ['bkg_2', 110],
      ['bkg_0', 110],
    ]);
    expect(await users.bookingHistory('usr_nobody', {})).toEqual({ ok: true, rows: [], nextCursor: null });
    expect(await users.bookingHistory(owner.user.id, { cursor: 'not-ours' })).toMatchObject({
      ok: false,
      code: 'VALIDATION_FAILED',
    });
  });
});
