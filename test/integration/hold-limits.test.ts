/**
 * Limits against seat hoarding, over real HTTP against the real server: a cap on the seats one customer
 * holds across all shows at once (MAX_HELD_SEATS_PER_USER), freed by release, expiry and confirmation,
 * and a per-address budget of hold creations (HOLDS_PER_ADDRESS_PER_MINUTE) shared by every route that
 * creates a hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, createShow, GOOD_CARD, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const HOLD_TTL_SECONDS = 60;
const CAP = 5;

let server: TestServer;
let adminToken: string;
let clockOffsetMs = 0;
const now = () => Date.now() + clockOffsetMs;

beforeAll(async () => {
  server = await startTestServer(
    {
      ...ADMIN_ENV,
      HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
      MAX_HELD_SEATS_PER_USER: String(CAP),
      // Every test here comes from one address; the per-address budget has its own server below.
      HOLDS_PER_ADDRESS_PER_MINUTE: '100000',
    },
    { now },
  );
  adminToken = await login(server.api, ADMIN.email, ADMIN.password);
});
afterAll(() => server?.destroy());

type User = Awaited<ReturnType<typeof newUser>>;

async function shows(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await createShow(server.api, { adminToken })).showId);
  return ids;
}

function hold(user: User, showId: string, body: Record<string, unknown>) {
  return server.api('POST', `/api/shows/${showId}/holds`, { body, token: user.token });
}

async function heldCount(showId: string): Promise<number> {
  return (await server.api('GET', `/api/shows/${showId}/seats`)).body.counts.held;
}

describe('MAX_HELD_SEATS_PER_USER', () => {
  it('caps the seats one customer holds across all shows, whichever route creates the hold', async () => {
    const [a, b, c] = await shows(3);
    const alice = await newUser(server.api);
    expect((await hold(alice, a!, { seats: ['A1', 'A2'] })).status).toBe(201);
    expect((await hold(alice, b!, { count: 2 })).status).toBe(201);
    const over = await hold(alice, c!, { seats: ['A1', 'A2'] });
    expect(over.status).toBe(422);
    expect(over.body.error).toMatchObject({
      code: 'SEAT_LIMIT_EXCEEDED',
      details: { limit: CAP, held: 4, requested: 2 },
    });
    expect((await hold(alice, c!, { count: 2 })).status).toBe(422);
    const booked = await server.api('POST', '/api/bookings', {
      body: { showId: c, seats: ['B1', 'B2'], paymentMethod: 'card' },
      token: alice.token,
    });
    expect(booked.status).toBe(422);
    expect(booked.body.error.code).toBe('SEAT_LIMIT_EXCEEDED');
    // Nothing refused was held on the way.
    expect(await heldCount(c!)).toBe(0);
    const lastOne = await server.api('POST', `/api/shows/${c}/lock-seat`, {
      body: { seatNumber: 'C1' },
      token: alice.token,
    });
    expect(lastOne.status).toBe(200);
    expect((await hold(alice, a!, { seats: ['A3'] })).status).toBe(422);
    // Another customer has a cap of their own.
    const bob = await newUser(server.api);
    expect((await hold(bob, c!, { count: CAP })).status).toBe(201);
  });

  it('lets exactly CAP seats through when many holds for different shows race', async () => {
    const ids = await shows(4);
    const alice = await newUser(server.api);
    const attempts = Array.from({ length: 12 }, (_, i) => hold(alice, ids[i % ids.length]!, { count: 1 }));
    const statuses = (await Promise.all(attempts)).map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(CAP);
    expect(statuses.filter((s) => s === 422)).toHaveLength(12 - CAP);
    let held = 0;
    for (const id of ids) held += await heldCount(id);
    expect(held).toBe(CAP);
  });

  it('frees the count when a hold is released', async () => {
    const [a, b] = await shows(2);
    const alice = await newUser(server.api);
    const first = await hold(alice, a!, { count: 3 });
    expect((await hold(alice, b!, { count: 2 })).status).toBe(201);
    expect((await hold(alice, b!, { count: 1 })).status).toBe(422);
    const released = await server.api('DELETE', `/api/holds/${first.body.hold.id}`, { token: alice.token });
    expect(released.status).toBe(204);
    expect((await hold(alice, b!, { count: 3 })).status).toBe(201);
  });

  it('frees the count when a hold expires', async () => {
    const [a, b] = await shows(2);
    const alice = await newUser(server.api);
    expect((await hold(alice, a!, { count: CAP })).status).toBe(201);
    expect((await hold(alice, b!, { count: 1 })).status).toBe(422);
    clockOffsetMs += (HOLD_TTL_SECONDS + 1) * 1000;
    expect((await hold(alice, b!, { count: CAP })).status).toBe(201);
  });

  it('frees the count when a booking is confirmed: booked seats are no longer held', async () => {
    const [a, b] = await shows(2);
    const alice = await newUser(server.api);
    const created = await server.api('POST', '/api/bookings', {
      body: { showId: a, seats: ['A1', 'A2', 'A3'], paymentMethod: 'card' },
      token: alice.token,
    });
    expect(created.status).toBe(201);
    // Pending payment, its seats are still held.
    expect((await hold(alice, b!, { count: 3 })).status).toBe(422);
    const paid = await server.api('POST', '/api/payments', {
      body: { bookingId: created.body.booking.id, method: 'card', card: GOOD_CARD },
      token: alice.token,
    });
    expect(paid.status).toBe(200);
    expect((await hold(alice, b!, { count: CAP })).status).toBe(201);
  });
});

describe('HOLDS_PER_ADDRESS_PER_MINUTE', () => {
  const PER_MINUTE = 3;
  let limited: TestServer;
  let showId: string;
  let token: string;
  beforeAll(async () => {
    limited = await startTestServer({
      ...ADMIN_ENV,
      HOLDS_PER_ADDRESS_PER_MINUTE: String(PER_MINUTE),
      TRUSTED_PROXIES: '127.0.0.1,::1',
    });
    ({ showId } = await createShow(limited.api));
    token = (await newUser(limited.api)).token;
  });
  afterAll(() => limited?.destroy());

  const from = (address: string) => ({ 'x-forwarded-for': address });

  it('budgets hold creations per client address across holds, lock-seat and hold-and-book', async () => {
    const address = from('203.0.113.20');
    const made = [
      await limited.api('POST', `/api/shows/${showId}/holds`, {
        body: { seats: ['A1'] },
        token,
        headers: address,
      }),
      await limited.api('POST', `/api/shows/${showId}/lock-seat`, {
        body: { seatNumber: 'A2' },
        token,
        headers: address,
      }),
      await limited.api('POST', '/api/bookings', {
        body: { showId, seats: ['A3'], paymentMethod: 'card' },
        token,
        headers: address,
      }),
    ];
    expect(made.map((r) => r.status)).toEqual([201, 200, 201]);
    for (const [path, body] of [
      [`/api/shows/${showId}/holds`, { seats: ['A4'] }],
      [`/api/shows/${showId}/lock-seat`, { seatNumber: 'A4' }],
      ['/api/bookings', { showId, seats: ['A4'], paymentMethod: 'card' }],
    ] as const) {
      const refused = await limited.api('POST', path, { body, token, headers: address });
      expect(refused.status, path).toBe(429);
      expect(refused.body.error.code).toBe('RATE_LIMITED');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // Booking an existing hold creates none, and another address has its own budget.
    const fromElsewhere = await limited.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A4'] },
      token,
      headers: from('203.0.113.21'),
    });
    expect(fromElsewhere.status).toBe(201);
    const bookHeld = await limited.api('POST', '/api/bookings', {
      body: { holdId: fromElsewhere.body.hold.id, paymentMethod: 'card' },
      token,
      headers: address,
    });
    expect(bookHeld.status).toBe(201);
  });
});
