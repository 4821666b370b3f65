/**
 * Accounts over real HTTP against the real server: register, login, logout (and its revocation
 * surviving a restart), the profile, failed-login limits, and the booking history.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDRESS_FAILURE_FACTOR } from '../../src/domain/users.js';
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
      body: { password: 'a-new-password' },
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
      body: { password: 'a-third-password' },
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
        server.api('PATCH', '/api/me', { token: alice.token, body: { password: `changed-${round}-pw` } }),
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

describe('failed-login limits', () => {
  let limited: TestServer;
  let offsetMs = 0;
  beforeAll(async () => {
    limited = await startTestServer(
      { LOGIN_MAX_FAILURES: '3', LOGIN_WINDOW_SECONDS: '60' },
      { now: () => Date.now() + offsetMs },
    );
  });
  afterAll(() => limited?.destroy());

  it('locks an account after the configured failures, with retry-after, until the window ends', async () => {
    const alice = await newUser(limited.api);
    for (let i = 0; i < 3; i++) {
      const res = await limited.api('POST', '/api/login', {
        body: { email: alice.email, password: 'wrong-password' },
      });
      expect(res.status).toBe(401);
    }
    const locked = await limited.api('POST', '/api/login', {
      body: { email: alice.email, password: alice.password },
    });
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe('RATE_LIMITED');
    const retryAfter = Number(locked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    offsetMs += 61_000;
    const after = await limited.api('POST', '/api/login', {
      body: { email: alice.email, password: alice.password },
    });
    expect(after.status).toBe(200);
  });

  it('a successful login starts the account count again', async () => {
    const bob = await newUser(limited.api);
    const attempt = (password: string) =>
      limited.api('POST', '/api/login', { body: { email: bob.email, password } });
    expect((await attempt('wrong-password')).status).toBe(401);
    expect((await attempt('wrong-password')).status).toBe(401);
    expect((await attempt(bob.password)).status).toBe(200);
    expect((await attempt('wrong-password')).status).toBe(401);
    expect((await attempt('wrong-password')).status).toBe(401);
    expect((await attempt(bob.password)).status).toBe(200);
    offsetMs += 61_000;
  });

  it('locks an address that fails across many accounts', async () => {
    // The address limit is a multiple of the account limit (3 here), each failure on a fresh account.
    for (let i = 0; i < 3 * ADDRESS_FAILURE_FACTOR; i++) {
      const res = await limited.api('POST', '/api/login', {
        body: { email: uniqueEmail(`spray${i}`), password: 'guess-123' },
      });
      expect(res.status).toBe(401);
    }
    const carol = await newUser(limited.api);
    const res = await limited.api('POST', '/api/login', {
      body: { email: carol.email, password: carol.password },
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBeTruthy();
    offsetMs += 61_000;
    expect(
      (await limited.api('POST', '/api/login', { body: { email: carol.email, password: carol.password } }))
        .status,
    ).toBe(200);
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
        body: { password: 'bobs-new-pass' },
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
