/**
 * Accounts over real HTTP against the real server: register, login, logout (and its revocation
 * surviving a restart), the profile and password changes, failed-login and registration limits,
 * idempotent registration, and the booking history.
 */

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, createShow, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(ADMIN_ENV);
});
afterAll(() => server?.destroy());

const uniqueEmail = (tag: string) => `${tag}-${Math.random().toString(36).slice(2, 10)}@example.com`;

describe('register', () => {
  it('creates an account and answers the user and a working token', async () => {
    const email = uniqueEmail('reg');
    const res = await server.api('POST', '/api/register', {
      body: { name: 'Asha Rao', email, password: 'password-123', phone: '+919812345678' },
    });
    expect(res.status).toBe(201);
    expect(res.body.user).toEqual({
      id: expect.stringMatching(/^usr_/),
      name: 'Asha Rao',
      email,
      phone: '+919812345678',
      role: 'user',
      createdAt: expect.any(String),
    });
    expect(res.body.user).not.toHaveProperty('passwordHash');
    const me = await server.api('GET', '/api/me', { token: res.body.token });
    expect(me.status).toBe(200);
    expect(me.body.user).toEqual(res.body.user);
  });

  it('normalises the email and refuses a second account for it, whatever its case', async () => {
    const email = uniqueEmail('dup');
    const first = await server.api('POST', '/api/register', {
      body: { name: 'A', email: `  ${email.toUpperCase()} `, password: 'password-123' },
    });
    expect(first.status).toBe(201);
    expect(first.body.user.email).toBe(email);
    expect(first.body.user.phone).toBeNull();
    const again = await server.api('POST', '/api/register', {
      body: { name: 'B', email, password: 'password-456' },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('EMAIL_TAKEN');
  });

  it('names each bad field', async () => {
    const res = await server.api('POST', '/api/register', {
      body: { name: 'x', email: uniqueEmail('bad'), password: 'short', phone: 'call me' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(Object.keys(res.body.error.details.fields).sort()).toEqual(['password', 'phone']);
  });
});

describe('login', () => {
  it('exchanges email and password for a token', async () => {
    const alice = await newUser(server.api);
    const res = await server.api('POST', '/api/login', {
      body: { email: alice.email.toUpperCase(), password: alice.password },
    });
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(alice.user.id);
    expect((await server.api('GET', '/api/me', { token: res.body.token })).status).toBe(200);
  });

  it('gives the same answer for an unknown email and a wrong password', async () => {
    const alice = await newUser(server.api);
    const wrong = await server.api('POST', '/api/login', {
      body: { email: alice.email, password: 'not-it-123' },
    });
    const unknown = await server.api('POST', '/api/login', {
      body: { email: uniqueEmail('nobody'), password: 'not-it-123' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body.error.code).toBe('INVALID_CREDENTIALS');
    expect(unknown.body.error).toEqual(wrong.body.error);
  });

  it('logs the configured admin in with the admin role', async () => {
    const res = await server.api('POST', '/api/login', { body: ADMIN });
    expect(res.status).toBe(200);
    expect(res.body.user.role).toBe('admin');
  });
});

describe('tokens', () => {
  it('refuses requests without a token or with a bad one', async () => {
    expect((await server.api('GET', '/api/me')).status).toBe(401);
    const bad = await server.api('GET', '/api/me', { token: 'not.a.jwt' });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('UNAUTHENTICATED');
  });

  it('revokes only the token that logged out', async () => {
    const alice = await newUser(server.api);
    const other = await login(server.api, alice.email, alice.password);
    const out = await server.api('POST', '/api/logout', { token: alice.token });
    expect(out.status).toBe(204);
    expect((await server.api('GET', '/api/me', { token: alice.token })).status).toBe(401);
    expect((await server.api('POST', '/api/logout', { token: alice.token })).status).toBe(401);
    expect((await server.api('GET', '/api/me', { token: other })).status).toBe(200);
  });
});

describe('profile', () => {
  it('changes name and phone, and clears the phone with null', async () => {
    const alice = await newUser(server.api);
    const renamed = await server.api('PATCH', '/api/me', {
      token: alice.token,
      body: { name: 'Alice B', phone: '+14155550100' },
    });
    expect(renamed.status).toBe(200);
    expect(renamed.body.user).toMatchObject({ name: 'Alice B', phone: '+14155550100', email: alice.email });
    const cleared = await server.api('PATCH', '/api/me', { token: alice.token, body: { phone: null } });
    expect(cleared.body.user).toMatchObject({ name: 'Alice B', phone: null });
    expect((await server.api('GET', '/api/me', { token: alice.token })).body.user.phone).toBeNull();
  });

  it('changes the password: the old one stops working, and so do the other sessions', async () => {
    const alice = await newUser(server.api);
    const phone = await login(server.api, alice.email, alice.password);
    const laptop = await login(server.api, alice.email, alice.password);
    const res = await server.api('PATCH', '/api/me', {
      token: alice.token,
      body: { password: 'a-new-password', currentPassword: alice.password },
    });
    expect(res.status).toBe(200);
    // The session that changed it goes on; every other session of hers ends (verified ones included).
    expect((await server.api('GET', '/api/me', { token: alice.token })).status).toBe(200);
    for (const token of [phone, laptop]) {
      const me = await server.api('GET', '/api/me', { token });
      expect(me.status).toBe(401);
      expect(me.body.error.code).toBe('UNAUTHENTICATED');
    }
    // Other users are untouched, and a login made after the change works at once.
    const bob = await newUser(server.api);
    expect((await server.api('GET', '/api/me', { token: bob.token })).status).toBe(200);
    const fresh = await login(server.api, alice.email, 'a-new-password');
    expect((await server.api('GET', '/api/me', { token: fresh })).status).toBe(200);
    // A second change, from the fresh session, ends the first one.
    const again = await server.api('PATCH', '/api/me', {
      token: fresh,
      body: { password: 'a-third-password', currentPassword: 'a-new-password' },
    });
    expect(again.status).toBe(200);
    expect((await server.api('GET', '/api/me', { token: fresh })).status).toBe(200);
    expect((await server.api('GET', '/api/me', { token: alice.token })).status).toBe(401);
    // A name change ends nothing.
    expect((await server.api('PATCH', '/api/me', { token: fresh, body: { name: 'A' } })).status).toBe(200);
    expect((await server.api('GET', '/api/me', { token: fresh })).status).toBe(200);
    for (const [password, status] of [
      [alice.password, 401],
      ['a-new-password', 401],
      ['a-third-password', 200],
    ] as const) {
      const res = await server.api('POST', '/api/login', { body: { email: alice.email, password } });
      expect(res.status).toBe(status);
    }
  });

  it('ends a session logged in with the old password while the change was being made', async () => {
    for (let round = 0; round < 3; round++) {
      const alice = await newUser(server.api);
      // The login checks the old password (scrypt, tens of ms) while the change commits.
      const [loggedIn, changed] = await Promise.all([
        server.api('POST', '/api/login', { body: { email: alice.email, password: alice.password } }),
        server.api('PATCH', '/api/me', {
          token: alice.token,
          body: { password: `changed-${round}-pw`, currentPassword: alice.password },
        }),
      ]);
      expect(changed.status).toBe(200);
      if (loggedIn.status === 200) {
        const me = await server.api('GET', '/api/me', { token: loggedIn.body.token });
        expect(me.status).toBe(401);
      } else expect(loggedIn.status).toBe(401);
    }
  });

  it('refuses fields it does not know, a weak password and anonymous callers', async () => {
    const alice = await newUser(server.api);
    const role = await server.api('PATCH', '/api/me', { token: alice.token, body: { role: 'admin' } });
    expect(role.status).toBe(400);
    const weak = await server.api('PATCH', '/api/me', { token: alice.token, body: { password: 'short' } });
    expect(weak.status).toBe(400);
    expect(weak.body.error.details.fields).toHaveProperty('password');
    expect((await server.api('PATCH', '/api/me', { body: { name: 'X' } })).status).toBe(401);
    expect((await server.api('GET', '/api/me', { token: alice.token })).body.user.role).toBe('user');
  });
});

describe('booking history', () => {
  it('is empty for a new user', async () => {
    const alice = await newUser(server.api);
    const res = await server.api('GET', '/api/me/bookings', { token: alice.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ bookings: [], nextCursor: null });
    expect((await server.api('GET', '/api/me/bookings')).status).toBe(401);
  });

  it("lists the caller's own bookings, newest first, filtered by status", async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const book = async (token: string, seat: string) => {
      const res = await server.api('POST', '/api/bookings', {
        token,
        body: { showId, seats: [seat], paymentMethod: 'upi' },
      });
      expect(res.status).toBe(201);
      return res.body.booking.id as string;
    };
    const first = await book(alice.token, 'A1');
    const second = await book(alice.token, 'A2');
    await book(bob.token, 'A3');
    const paid = await server.api('POST', '/api/payments', {
      token: alice.token,
      body: { bookingId: first, method: 'upi', upiId: 'success@upi' },
    });
    expect(paid.status).toBe(200);
    const all = await server.api('GET', '/api/me/bookings', { token: alice.token });
    expect(all.body.bookings.map((b: { id: string }) => b.id)).toEqual([second, first]);
    expect(all.body.bookings[1]).toMatchObject({
      id: first,
      userId: alice.user.id,
      showId,
      seats: ['A1'],
      status: 'confirmed',
      amount: { subtotal: 30000, currency: 'INR' },
      promoCode: null,
      confirmedAt: expect.any(String),
    });
    const confirmed = await server.api('GET', '/api/me/bookings?status=confirmed', { token: alice.token });
    expect(confirmed.body.bookings.map((b: { id: string }) => b.id)).toEqual([first]);
    // The contract's own template, left blank, is the unfiltered history.
    const blank = await server.api('GET', '/api/me/bookings?status=&cursor=', { token: alice.token });
    expect(blank.status).toBe(200);
    expect(blank.body).toEqual((await server.api('GET', '/api/me/bookings', { token: alice.token })).body);
  });

  it('pages with a cursor until nextCursor is null', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const ids: string[] = [];
    for (const seat of ['B1', 'B2', 'B3', 'B4', 'B5']) {
      const res = await server.api('POST', '/api/bookings', {
        token: alice.token,
        body: { showId, seats: [seat], paymentMethod: 'upi' },
      });
      ids.unshift(res.body.booking.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await server.api('GET', `/api/me/bookings?limit=2${query}`, { token: alice.token });
      expect(page.status).toBe(200);
      expect(page.body.bookings.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.bookings.map((b: { id: string }) => b.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(ids);
  });

  it('refuses a cursor it did not give out and an unknown status', async () => {
    const alice = await newUser(server.api);
    const bad = await server.api('GET', '/api/me/bookings?cursor=garbage', { token: alice.token });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.fields).toHaveProperty('cursor');
    expect((await server.api('GET', '/api/me/bookings?status=paid', { token: alice.token })).status).toBe(
      400,
    );
  });
});

describe('password change', () => {
  it('needs the current password: missing or wrong is 401 and changes nothing', async () => {
    const alice = await newUser(server.api);
    const other = await login(server.api, alice.email, alice.password);
    const missing = await server.api('PATCH', '/api/me', {
      token: alice.token,
      body: { password: 'stolen-token-pw' },
    });
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('INVALID_CREDENTIALS');
    expect(missing.body.error.details.fields).toHaveProperty('currentPassword');
    const wrong = await server.api('PATCH', '/api/me', {
      token: alice.token,
      body: { password: 'stolen-token-pw', currentPassword: 'a-guess-1234' },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('INVALID_CREDENTIALS');
    // Nothing changed: the old password still signs in and no session ended.
    expect((await server.api('GET', '/api/me', { token: other })).status).toBe(200);
    expect(await login(server.api, alice.email, alice.password)).toEqual(expect.any(String));
    // A name or phone change needs no password.
    expect((await server.api('PATCH', '/api/me', { token: alice.token, body: { name: 'A' } })).status).toBe(
      200,
    );
  });

  it('refuses the most common passwords and the email, at registration and on change, saying why', async () => {
    const email = uniqueEmail('weak');
    for (const password of ['password123', 'Qwerty123', email.toUpperCase()]) {
      const res = await server.api('POST', '/api/register', { body: { name: 'W', email, password } });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details.fields.password).toMatch(/common|email/);
    }
    const alice = await newUser(server.api);
    for (const password of ['iloveyou', alice.email]) {
      const res = await server.api('PATCH', '/api/me', {
        token: alice.token,
        body: { password, currentPassword: alice.password },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.message).toMatch(/common|email/);
      expect(res.body.error.details.fields).toHaveProperty('password');
    }
  });
});

/** Requests as a trusted proxy (the test's own 127.0.0.1) forwarding for `client`. */
const from = (client: string) => ({ 'x-forwarded-for': client });

describe('failed-login limits', () => {
  let limited: TestServer;
  let offsetMs = 0;
  // A clock that moves only when the test moves it: the back-off is measured from each failure, and a
  // slow password hash on a loaded machine must not use up part of a wait the test then expects whole.
  const startedAtMs = Date.now();
  beforeAll(async () => {
    limited = await startTestServer(
      {
        LOGIN_MAX_FAILURES: '3',
        LOGIN_WINDOW_SECONDS: '60',
        LOGIN_ACCOUNT_SLOWDOWN_AFTER: '10',
        LOGIN_ACCOUNT_MAX_DELAY_SECONDS: '30',
        LOGIN_MAX_FAILURES_PER_ADDRESS: '20',
        TRUSTED_PROXIES: '127.0.0.1',
      },
      { now: () => startedAtMs + offsetMs },
    );
  });
  afterAll(() => limited?.destroy());
  const attempt = (email: string, password: string, client: string) =>
    limited.api('POST', '/api/login', { body: { email, password }, headers: from(client) });

  it('backs off an address that keeps guessing one account, longer each time', async () => {
    const alice = await newUser(limited.api);
    for (let i = 0; i < 3; i++)
      expect((await attempt(alice.email, 'wrong-password', '203.0.113.1')).status).toBe(401);
    const waits: number[] = [];
    for (let round = 0; round < 3; round++) {
      const refused = await attempt(alice.email, 'wrong-password', '203.0.113.1');
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('RATE_LIMITED');
      const wait = Number(refused.headers.get('retry-after'));
      waits.push(wait);
      offsetMs += wait * 1000;
      expect((await attempt(alice.email, 'wrong-password', '203.0.113.1')).status).toBe(401);
    }
    expect(waits).toEqual([1, 2, 4]);
    offsetMs += 61_000;
  });

  it('lets the owner sign in from their own address while an attacker hammers the account from another', async () => {
    const alice = await newUser(limited.api);
    expect((await attempt(alice.email, alice.password, '198.51.100.10')).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++)
      statuses.push((await attempt(alice.email, `guess-${i}-pw`, '203.0.113.66')).status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(22);
    expect((await attempt(alice.email, alice.password, '198.51.100.10')).status).toBe(200);
    // Even from an address she never used: one attacker address cannot slow her account.
    expect((await attempt(alice.email, alice.password, '198.51.100.11')).status).toBe(200);
    offsetMs += 61_000;
  });

  it('slows, never locks, an account guessed from many addresses; an address it knows is not slowed', async () => {
    const alice = await newUser(limited.api);
    expect((await attempt(alice.email, alice.password, '198.51.100.20')).status).toBe(200);
    for (let i = 0; i < 15; i++) await attempt(alice.email, 'wrong-password', `203.0.113.${100 + i}`);
    const fresh = await attempt(alice.email, alice.password, '198.51.100.21');
    expect(fresh.status).toBe(429);
    const wait = Number(fresh.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(30);
    expect((await attempt(alice.email, alice.password, '198.51.100.20')).status).toBe(200);
    offsetMs += wait * 1000;
    expect((await attempt(alice.email, alice.password, '198.51.100.21')).status).toBe(200);
    offsetMs += 61_000;
  });

  it('limits an address failing across many accounts, but not for an account known at it', async () => {
    const dave = await newUser(limited.api);
    const carol = await newUser(limited.api);
    expect((await attempt(dave.email, dave.password, '192.0.2.50')).status).toBe(200);
    for (let i = 0; i < 20; i++)
      expect((await attempt(uniqueEmail(`spray${i}`), 'guess-123', '192.0.2.50')).status).toBe(401);
    const refused = await attempt(carol.email, carol.password, '192.0.2.50');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect((await attempt(dave.email, dave.password, '192.0.2.50')).status).toBe(200);
    expect((await attempt(carol.email, carol.password, '192.0.2.51')).status).toBe(200);
    offsetMs += 61_000;
    expect((await attempt(carol.email, carol.password, '192.0.2.50')).status).toBe(200);
  });

  it('behind a trusted proxy, limits two clients separately', async () => {
    const bob = await newUser(limited.api);
    for (let i = 0; i < 3; i++)
      expect((await attempt(bob.email, 'wrong-password', '198.51.100.1')).status).toBe(401);
    expect((await attempt(bob.email, 'wrong-password', '198.51.100.1')).status).toBe(429);
    expect((await attempt(bob.email, 'wrong-password', '198.51.100.2')).status).toBe(401);
    offsetMs += 61_000;
  });

  it('backs off guesses of the current password made with a stolen token', async () => {
    const erin = await newUser(limited.api);
    const change = (currentPassword: string) =>
      limited.api('PATCH', '/api/me', {
        token: erin.token,
        body: { password: 'taken-over-pw', currentPassword },
        headers: from('203.0.113.9'),
      });
    for (let i = 0; i < 3; i++) expect((await change(`guess-${i}-pw`)).status).toBe(401);
    const refused = await change(erin.password);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    offsetMs += 61_000;
  });
});

describe('X-Forwarded-For from an untrusted peer', () => {
  it('is ignored: a client cannot dodge the limit by naming a fresh address each time', async () => {
    // The shared server trusts no proxy; its limit is LOGIN_MAX_FAILURES=5 per (account, address).
    const alice = await newUser(server.api);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await server.api('POST', '/api/login', {
        body: { email: alice.email, password: 'wrong-password' },
        headers: from(`198.51.100.${i + 1}`),
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
  });
});

describe('registration limits', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({ REGISTER_MAX_PER_ADDRESS: '3', TRUSTED_PROXIES: '127.0.0.1' });
  });
  afterAll(() => limited?.destroy());
  const register = (client: string) =>
    limited.api('POST', '/api/register', {
      body: { name: 'R', email: uniqueEmail('rl'), password: 'password-123' },
      headers: from(client),
    });

  it('limits registrations per client address, with retry-after', async () => {
    for (let i = 0; i < 3; i++) expect((await register('203.0.113.30')).status).toBe(201);
    const refused = await register('203.0.113.30');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await register('203.0.113.31')).status).toBe(201);
  });
});

/** What the app database keeps, as bytes: its files on SQLite, every table's rows on PostgreSQL. */
async function storedData(): Promise<Buffer[]> {
  const { store } = server.deps;
  if (store.dialect === 'postgres') {
    const tables = await store.all<{ name: string }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'",
    );
    expect(tables.map((t) => t.name)).toContain('idempotency_keys');
    const dumps: Buffer[] = [];
    for (const { name } of tables)
      dumps.push(Buffer.from(JSON.stringify(await store.all(`SELECT * FROM "${name}"`))));
    return dumps;
  }
  const files = fs.readdirSync(server.dataDir).filter((f) => f.startsWith('app.db'));
  expect(files).toContain('app.db');
  return files.map((file) => fs.readFileSync(path.join(server.dataDir, file)));
}

describe('idempotent registration', () => {
  it('keeps no token in the database; a replay signs in afresh, and stops once the password changed', async () => {
    const body = { name: 'Idem', email: uniqueEmail('idem'), password: 'password-123' };
    const headers = { 'idempotency-key': `reg-${Math.random()}` };
    const first = await server.api('POST', '/api/register', { body, headers });
    expect(first.status).toBe(201);
    const replay = await server.api('POST', '/api/register', { body, headers });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.user).toEqual(first.body.user);
    expect(replay.body.token).not.toBe(first.body.token);
    expect((await server.api('GET', '/api/me', { token: replay.body.token })).status).toBe(200);
    // Neither token nor the password is anywhere in the app database: in SQLite's files (the WAL
    // included), or in any row of any table on PostgreSQL (whose files are the server's).
    for (const bytes of await storedData()) {
      for (const token of [first.body.token, replay.body.token]) {
        const signature = token.split('.')[2];
        expect(bytes.includes(Buffer.from(signature))).toBe(false);
      }
      expect(bytes.includes(Buffer.from(body.password))).toBe(false);
    }
    const changed = await server.api('PATCH', '/api/me', {
      token: first.body.token,
      body: { password: 'moved-on-pw-9', currentPassword: body.password },
    });
    expect(changed.status).toBe(200);
    const stale = await server.api('POST', '/api/register', { body, headers });
    expect(stale.status).toBe(401);
    expect(stale.body.error.code).toBe('INVALID_CREDENTIALS');
  });

  it('scopes an anonymous key to its own request: another caller can neither take nor probe it', async () => {
    const key = { 'idempotency-key': 'a-key-anyone-might-pick' };
    const asha = { name: 'Asha', email: uniqueEmail('asha'), password: 'password-123' };
    const ravi = { name: 'Ravi', email: uniqueEmail('ravi'), password: 'password-456' };
    const first = await server.api('POST', '/api/register', { body: asha, headers: key });
    expect(first.status).toBe(201);
    // Ravi's request with the same key is his own: no 409 telling him the key is taken, no reply of Asha's.
    const second = await server.api('POST', '/api/register', { body: ravi, headers: key });
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
    expect(second.body.user.email).toBe(ravi.email);
    const again = await server.api('POST', '/api/register', { body: ravi, headers: key });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.user.id).toBe(second.body.user.id);
  });
});

describe('restart', () => {
  it('keeps logged-out and outdated tokens refused, and other tokens working, after a restart', async () => {
    const first = await startTestServer(ADMIN_ENV);
    let second: TestServer | undefined;
    try {
      const alice = await newUser(first.api);
      const kept = await login(first.api, alice.email, alice.password);
      expect((await first.api('POST', '/api/logout', { token: alice.token })).status).toBe(204);
      // Bob changes his password: his other session stays ended after the restart.
      const bob = await newUser(first.api);
      const bobsOther = await login(first.api, bob.email, bob.password);
      const changed = await first.api('PATCH', '/api/me', {
        token: bob.token,
        body: { password: 'bobs-new-pass', currentPassword: bob.password },
      });
      expect(changed.status).toBe(200);
      await first.close();
      second = await startTestServer({ ...ADMIN_ENV, DATA_DIR: first.dataDir });
      expect((await second.api('GET', '/api/me', { token: alice.token })).status).toBe(401);
      expect((await second.api('GET', '/api/me', { token: bobsOther })).status).toBe(401);
      expect((await second.api('GET', '/api/me', { token: bob.token })).status).toBe(200);
      const me = await second.api('GET', '/api/me', { token: kept });
      expect(me.status).toBe(200);
      expect(me.body.user.email).toBe(alice.email);
      expect(
        (await second.api('POST', '/api/login', { body: { email: alice.email, password: alice.password } }))
          .status,
      ).toBe(200);
    } finally {
      await (second ?? first).destroy();
    }
  });

  it('ends the admin sessions opened with the old ADMIN_PASSWORD when it is rotated', async () => {
    const first = await startTestServer(ADMIN_ENV);
    let second: TestServer | undefined;
    try {
      const oldToken = await login(first.api, ADMIN.email, ADMIN.password);
      await first.close();
      const rotated = { ...ADMIN_ENV, ADMIN_PASSWORD: 'rotated-admin-password' };
      second = await startTestServer({ ...rotated, DATA_DIR: first.dataDir });
      expect((await second.api('GET', '/api/me', { token: oldToken })).status).toBe(401);
      const fresh = await login(second.api, ADMIN.email, 'rotated-admin-password');
      const me = await second.api('GET', '/api/me', { token: fresh });
      expect(me.body.user.role).toBe('admin');
    } finally {
      await (second ?? first).destroy();
    }
  });
});
