/**
 * Seat maps and holds over real HTTP against the real server (workers, journal, app db).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let clockOffsetMs = 0;
const now = () => Date.now() + clockOffsetMs;

beforeAll(async () => {
  server = await startTestServer(
    { ...ADMIN_ENV, HOLD_TTL_SECONDS: '60', HOLD_MAX_SECONDS: '120', MAX_SEATS_PER_USER: '6' },
    { now },
  );
});
afterAll(() => server?.destroy());

async function seatStatus(showId: string, seat: string) {
  const res = await server.api('GET', `/api/shows/${showId}/seats`);
  return res.body.seats.find((s: { id: string }) => s.id === seat)?.status;
}

describe('seat map', () => {
  it('lists every seat with row, number, category, price and status, and counts', async () => {
    const { showId } = await createShow(server.api);
    const res = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(res.status).toBe(200);
    expect(res.body.showId).toBe(showId);
    expect(res.body.seats).toHaveLength(30);
    expect(res.body.seats[0]).toEqual({
      id: 'A1',
      row: 'A',
      number: 1,
      column: 0,
      category: 'GOLD',
      price: 30000,
      status: 'available',
    });
    expect(res.body.counts).toEqual({ available: 30, held: 0, booked: 0, blocked: 0 });
  });

  it('places seats on the screen grid, aisles as empty columns, for drawing the map', async () => {
    const { showId } = await createShow(server.api);
    const res = await server.api('GET', `/api/shows/${showId}/seats`);
    const column = (id: string) => res.body.seats.find((s: { id: string }) => s.id === id)?.column;
    // Row C has an aisle after seat 5: C6 sits one column further right than A6.
    expect([column('A5'), column('A6'), column('C5'), column('C6'), column('C10')]).toEqual([4, 5, 4, 6, 10]);
    expect(res.body.layout).toEqual({ rows: ['A', 'B', 'C'], columns: 11, centreColumn: 5 });
  });

  it('answers 404 in the contract shape for an unknown show', async () => {
    const res = await server.api('GET', '/api/shows/shw_nope/seats');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('SHOW_NOT_FOUND');
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });
});

describe('holds', () => {
  it('holds explicit seats all or nothing and names the taken ones on conflict', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const first = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A1', 'A2'] },
      token: alice.token,
    });
    expect(first.status).toBe(201);
    expect(first.body.hold).toMatchObject({ showId, seats: ['A1', 'A2'] });
    expect(Date.parse(first.body.hold.expiresAt)).toBeGreaterThan(now());
    const clash = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A2', 'A3'] },
      token: bob.token,
    });
    expect(clash.status).toBe(409);
    expect(clash.body.error).toMatchObject({ code: 'SEATS_UNAVAILABLE', details: { seats: ['A2'] } });
    expect(await seatStatus(showId, 'A3')).toBe('available');
    expect(await seatStatus(showId, 'A2')).toBe('held');
  });

  it('refuses unknown seat labels with 400 and changes nothing', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const res = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A1', 'Z99'] },
      token: alice.token,
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'UNKNOWN_SEAT', details: { seats: ['Z99'] } });
    expect(await seatStatus(showId, 'A1')).toBe('available');
  });

  it('needs a token, and hides holds from other users', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const mallory = await newUser(server.api);
    expect((await server.api('POST', `/api/shows/${showId}/holds`, { body: { seats: ['B1'] } })).status).toBe(
      401,
    );
    const { body } = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['B1'] },
      token: alice.token,
    });
    const holdId = body.hold.id;
    expect((await server.api('GET', `/api/holds/${holdId}`, { token: mallory.token })).status).toBe(403);
    expect((await server.api('DELETE', `/api/holds/${holdId}`, { token: mallory.token })).status).toBe(403);
    expect((await server.api('POST', `/api/holds/${holdId}/extend`, { token: mallory.token })).status).toBe(
      403,
    );
    expect(await seatStatus(showId, 'B1')).toBe('held');
    const own = await server.api('GET', `/api/holds/${holdId}`, { token: alice.token });
    expect(own.status).toBe(200);
    expect(own.body.hold.seats).toEqual(['B1']);
  });

  it('releases seats at once and extends within the maximum', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const { body } = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['C1'] },
      token: alice.token,
    });
    clockOffsetMs += 30_000;
    const extended = await server.api('POST', `/api/holds/${body.hold.id}/extend`, { token: alice.token });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.body.hold.expiresAt)).toBeGreaterThan(Date.parse(body.hold.expiresAt));
    expect(Date.parse(extended.body.hold.expiresAt)).toBeLessThanOrEqual(
      Date.parse(body.hold.createdAt) + 120_000,
    );
    const released = await server.api('DELETE', `/api/holds/${body.hold.id}`, { token: alice.token });
    expect(released.status).toBe(204);
    expect(await seatStatus(showId, 'C1')).toBe('available');
    expect((await server.api('GET', `/api/holds/${body.hold.id}`, { token: alice.token })).status).toBe(404);
  });

  it('extends by HOLD_TTL_SECONDS from the current expiry, capped at HOLD_MAX_SECONDS from creation', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const { body } = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['C2'] },
      token: alice.token,
    });
    const createdAtMs = Date.parse(body.hold.createdAt);
    expect(Date.parse(body.hold.expiresAt)).toBe(createdAtMs + 60_000);
    clockOffsetMs += 10_000;
    const extend = () => server.api('POST', `/api/holds/${body.hold.id}/extend`, { token: alice.token });
    const first = await extend();
    expect(first.status).toBe(200);
    // The current expiry plus the TTL, not now plus the TTL (which would be 10 s earlier).
    expect(Date.parse(first.body.hold.expiresAt)).toBe(createdAtMs + 120_000);
    const second = await extend();
    expect(second.status).toBe(200);
    expect(Date.parse(second.body.hold.expiresAt)).toBe(createdAtMs + 120_000);
    expect((await server.api('GET', `/api/holds/${body.hold.id}`, { token: alice.token })).body.hold).toEqual(
      second.body.hold,
    );
  });

  it('frees an expired hold for the next customer before any sweep has run', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const { body } = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A9'] },
      token: alice.token,
    });
    clockOffsetMs += 61_000;
    const taken = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A9'] },
      token: bob.token,
    });
    expect(taken.status).toBe(201);
    // The actor has swept the hold away; it is still reported as expired (410), not unknown.
    const id = body.hold.id;
    for (const [method, path] of [
      ['GET', `/api/holds/${id}`],
      ['POST', `/api/holds/${id}/extend`],
      ['DELETE', `/api/holds/${id}`],
    ] as const) {
      const res = await server.api(method, path, { token: alice.token });
      expect(res.status, `${method} ${path}`).toBe(410);
      expect(res.body.error.code).toBe('HOLD_EXPIRED');
    }
    const booking = await server.api('POST', '/api/bookings', {
      body: { holdId: id, paymentMethod: 'card' },
      token: alice.token,
    });
    expect(booking.status).toBe(410);
    expect((await server.api('GET', `/api/holds/${id}`, { token: bob.token })).status).toBe(403);
    expect(
      (await server.api('GET', `/api/holds/hld_neverwas.${showId}`, { token: alice.token })).status,
    ).toBe(404);
  });

  it('picks adjacent best-available seats in one row by count and category', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const res = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { count: 3, category: 'SILVER' },
      token: alice.token,
    });
    expect(res.status).toBe(201);
    const seats: string[] = res.body.hold.seats;
    expect(seats).toHaveLength(3);
    expect(new Set(seats.map((s) => s[0]))).toEqual(new Set(['C']));
    const numbers = seats.map((s) => Number(s.slice(1))).sort((a, b) => a - b);
    expect(numbers[2]! - numbers[0]!).toBe(2);
  });

  it('enforces the per-user seat limit with 422', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const ok = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { count: 4 },
      token: alice.token,
    });
    expect(ok.status).toBe(201);
    const over = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { count: 3 },
      token: alice.token,
    });
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe('SEAT_LIMIT_EXCEEDED');
  });

  it('refuses a hold that strands a single seat when the show forbids it', async () => {
    const { showId } = await createShow(server.api, { forbidSingleSeatGaps: true });
    const alice = await newUser(server.api);
    const res = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A2', 'A3'] },
      token: alice.token,
    });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'SINGLE_SEAT_STRANDED', details: { seats: ['A1'] } });
  });

  it('keeps the seed design route lock-seat', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const res = await server.api('POST', `/api/shows/${showId}/lock-seat`, {
      body: { seatNumber: 'B5' },
      token: alice.token,
    });
    expect(res.status).toBe(200);
    expect(res.body.hold.seats).toEqual(['B5']);
    expect(res.body.message).toContain('B5');
    const again = await server.api('POST', `/api/shows/${showId}/lock-seat`, {
      body: { seatNumber: 'B5' },
      token: bob.token,
    });
    expect(again.status).toBe(409);
  });

  it('lets exactly one of many racing clients win each seat', async () => {
    const { showId } = await createShow(server.api);
    const users = await Promise.all(Array.from({ length: 40 }, () => newUser(server.api)));
    const results = await Promise.all(
      users.map((u, i) =>
        server.api('POST', `/api/shows/${showId}/holds`, {
          body: { seats: i % 2 === 0 ? ['A5', 'A6'] : ['A6', 'A7'] },
          token: u.token,
        }),
      ),
    );
    const winners = results.filter((r) => r.status === 201);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(39);
    const map = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(map.body.counts.held).toBe(2);
  });
});

describe('Idempotency-Key on creating routes', () => {
  it('answers a retried hold with the first hold, and refuses the key with another body', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const headers = { 'idempotency-key': 'hold-retry-1' };
    const first = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['C1', 'C2'] },
      token: alice.token,
      headers,
    });
    expect(first.status).toBe(201);
    // The same request serialized differently (key order, spacing) is the same request.
    const retry = await server.api('POST', `/api/shows/${showId}/holds`, {
      raw: ' { "seats" : [ "C1", "C2" ] } ',
      token: alice.token,
      headers,
    });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.hold.id).toBe(first.body.hold.id);
    const other = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['C5'] },
      token: alice.token,
      headers,
    });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const map = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(map.body.counts.held).toBe(2);
  });

  it('answers a retried registration with the first account, not EMAIL_TAKEN', async () => {
    const body = { name: 'Retry Rao', email: `retry-${Date.now()}@example.test`, password: 'password-123' };
    const headers = { 'idempotency-key': `register-${Date.now()}` };
    const first = await server.api('POST', '/api/register', { body, headers });
    expect(first.status).toBe(201);
    const retry = await server.api('POST', '/api/register', { body, headers });
    expect(retry.status).toBe(201);
    expect(retry.body.user.id).toBe(first.body.user.id);
    expect((await server.api('POST', '/api/register', { body })).status).toBe(409);
  });
});
