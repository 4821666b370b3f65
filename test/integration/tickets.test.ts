/**
 * E-tickets over real HTTP against the real server: the signed code and its QR (data URL and PNG),
 * offline verification with nothing but the published JWKS (jose directly), the verify route, check-in
 * that admits once, revocation by cancellation, key rotation, and keys that survive a restart.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, createShow, GOOD_CARD, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let server: TestServer;
let adminToken: string;

beforeAll(async () => {
  server = await startTestServer({ ...ADMIN_ENV });
  adminToken = await login(server.api, ADMIN.email, ADMIN.password);
});
afterAll(() => server?.destroy());

type User = Awaited<ReturnType<typeof newUser>>;

async function confirmedBooking(target: TestServer, user: User, showId: string, seats: string[]) {
  const created = await target.api('POST', '/api/bookings', {
    body: { showId, seats, paymentMethod: 'card' },
    token: user.token,
  });
  expect(created.status).toBe(201);
  const paid = await target.api('POST', '/api/payments', {
    body: { bookingId: created.body.booking.id, method: 'card', card: GOOD_CARD },
    token: user.token,
  });
  expect(paid.status).toBe(200);
  return paid.body.booking as { id: string; showId: string; seats: string[]; ticket: { code: string } };
}

async function jwksOf(target: TestServer): Promise<JSONWebKeySet> {
  const res = await target.api('GET', '/.well-known/jwks.json');
  expect(res.status).toBe(200);
  return res.body;
}

/** What a gate does offline: signature, issuer, type and expiry against the published keys only. */
async function verifyOffline(code: string, jwks: JSONWebKeySet) {
  return jwtVerify(code, createLocalJWKSet(jwks), {
    issuer: 'boxoffice',
    typ: 'ticket+jwt',
    algorithms: ['EdDSA'],
  });
}

async function verifyOnline(code: string, target = server) {
  const res = await target.api('POST', '/api/tickets/verify', { body: { code } });
  expect(res.status).toBe(200);
  return res.body as { valid: boolean; reason?: string; booking?: Record<string, unknown> };
}

describe('the ticket', () => {
  it('is a signed code naming booking, show, seats and holder, with a QR as a data URL or a PNG', async () => {
    const { showId } = await createShow(server.api, { adminToken, startsInMinutes: 24 * 60 });
    const alice = await newUser(server.api, { name: 'Alice Ticket' });
    const booking = await confirmedBooking(server, alice, showId, ['B2', 'B3']);
    const res = await server.api('GET', `/api/bookings/${booking.id}/ticket`, { token: alice.token });
    expect(res.status).toBe(200);
    const { code, qr } = res.body.ticket;
    expect(code).toBe(booking.ticket.code);
    expect(code.split('.')).toHaveLength(3);
    expect(code.length).toBeLessThan(1000);
    expect(qr).toMatch(/^data:image\/(svg\+xml|png);base64,/);
    const image = Buffer.from(qr.slice(qr.indexOf(',') + 1), 'base64').toString('utf8');
    if (qr.startsWith('data:image/svg+xml')) expect(image).toContain('<svg');

    const png = await fetch(`${server.url}/api/bookings/${booking.id}/ticket`, {
      headers: { authorization: `Bearer ${alice.token}`, accept: 'image/png' },
    });
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(png.headers.get('x-request-id')).toBeTruthy();
    const bytes = Buffer.from(await png.arrayBuffer());
    expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(bytes.length).toBeGreaterThan(200);

    const { payload, protectedHeader } = await verifyOffline(code, await jwksOf(server));
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', typ: 'ticket+jwt' });
    expect(payload).toMatchObject({
      iss: 'boxoffice',
      sub: booking.id,
      show: showId,
      seats: ['B2', 'B3'],
      name: 'Alice Ticket',
      uid: alice.user.id,
    });
    // Valid until well after the show starts, not forever.
    const showStartSeconds = Date.parse(payload.start as string) / 1000;
    expect(payload.exp).toBeGreaterThan(showStartSeconds);
    expect(payload.exp).toBeLessThanOrEqual(showStartSeconds + 24 * 3600);
  });

  it('publishes only public keys in the JWKS', async () => {
    const jwks = await jwksOf(server);
    expect(jwks.keys.length).toBeGreaterThanOrEqual(1);
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      expect(key.kid).toEqual(expect.any(String));
      expect(key.d).toBeUndefined();
    }
  });

  it('has no ticket while the booking awaits payment: 409', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const created = await server.api('POST', '/api/bookings', {
      body: { showId, seats: ['A1'], paymentMethod: 'card' },
      token: alice.token,
    });
    const res = await server.api('GET', `/api/bookings/${created.body.booking.id}/ticket`, {
      token: alice.token,
    });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('INVALID_STATE');
  });
});

describe('verification', () => {
  it('refuses tampered codes, codes signed by another key, and garbage, offline and online', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { ticket } = await confirmedBooking(server, alice, showId, ['C1']);
    const jwks = await jwksOf(server);
    const [header, payload, signature] = ticket.code.split('.') as [string, string, string];

    const claims = decodeJwt(ticket.code);
    const moreSeats = Buffer.from(JSON.stringify({ ...claims, seats: ['C1', 'C2', 'C3'] })).toString(
      'base64url',
    );
    const tampered = `${header}.${moreSeats}.${signature}`;

    const { privateKey } = generateKeyPairSync('ed25519');
    const forgedInput = `${header}.${payload}`;
    const forged = `${forgedInput}.${sign(null, Buffer.from(forgedInput), privateKey).toString('base64url')}`;
    expect(decodeProtectedHeader(forged).kid).toBe(decodeProtectedHeader(ticket.code).kid);

    for (const code of [tampered, forged]) {
      await expect(verifyOffline(code, jwks)).rejects.toThrow();
      const online = await verifyOnline(code);
      expect(online.valid).toBe(false);
      expect(online.reason).toBe('invalid signature');
      expect(online.booking).toBeUndefined();
    }
    for (const code of ['not-a-ticket', 'a.b.c', `${header}.${payload}.`]) {
      const online = await verifyOnline(code);
      expect(online.valid).toBe(false);
      expect(online.reason).toEqual(expect.any(String));
    }
    const tooLong = await server.api('POST', '/api/tickets/verify', { body: { code: 'x'.repeat(5000) } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.code).toBe('VALIDATION_FAILED');
    expect((await server.api('POST', '/api/tickets/verify', { body: {} })).status).toBe(400);
    expect((await verifyOnline(ticket.code)).valid).toBe(true);
  });

  it('answers invalid for the code of a cancelled booking, though its signature still verifies offline', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const booking = await confirmedBooking(server, alice, showId, ['A5']);
    expect(await verifyOnline(booking.ticket.code)).toMatchObject({
      valid: true,
      booking: { id: booking.id, status: 'confirmed', seats: ['A5'], checkedInAt: null },
    });
    const cancelled = await server.api('POST', `/api/bookings/${booking.id}/cancel`, { token: alice.token });
    expect(cancelled.status).toBe(200);
    const online = await verifyOnline(booking.ticket.code);
    expect(online).toMatchObject({ valid: false, booking: { id: booking.id, status: 'cancelled' } });
    expect(online.reason).toContain('cancelled');
    await expect(verifyOffline(booking.ticket.code, await jwksOf(server))).resolves.toBeDefined();
    const checkin = await server.api('POST', '/api/tickets/checkin', {
      body: { code: booking.ticket.code },
      token: adminToken,
    });
    expect(checkin.status).toBe(422);
  });
});

describe('check-in', () => {
  it('admits once (admin only) and answers 409 on the second scan', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const booking = await confirmedBooking(server, alice, showId, ['A8', 'A9']);
    const body = { code: booking.ticket.code };
    expect((await server.api('POST', '/api/tickets/checkin', { body })).status).toBe(401);
    const byUser = await server.api('POST', '/api/tickets/checkin', { body, token: alice.token });
    expect(byUser.status).toBe(403);
    const first = await server.api('POST', '/api/tickets/checkin', { body, token: adminToken });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ admitted: true, booking: { id: booking.id, seats: ['A8', 'A9'] } });
    expect(Date.parse(first.body.booking.checkedInAt)).not.toBeNaN();
    const second = await server.api('POST', '/api/tickets/checkin', { body, token: adminToken });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('ALREADY_CHECKED_IN');
    expect(second.body.error.details.checkedInAt).toBe(first.body.booking.checkedInAt);
    // Still a valid ticket, now marked as used.
    expect(await verifyOnline(booking.ticket.code)).toMatchObject({
      valid: true,
      booking: { checkedInAt: first.body.booking.checkedInAt },
    });
  });

  it('admits exactly one of many simultaneous scans', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const booking = await confirmedBooking(server, alice, showId, ['B9']);
    const scans = await Promise.all(
      Array.from({ length: 8 }, () =>
        server.api('POST', '/api/tickets/checkin', {
          body: { code: booking.ticket.code },
          token: adminToken,
        }),
      ),
    );
    expect(scans.filter((s) => s.status === 200)).toHaveLength(1);
    expect(scans.filter((s) => s.status === 409)).toHaveLength(7);
  });

  it('refuses an invalid code with 422', async () => {
    const res = await server.api('POST', '/api/tickets/checkin', {
      body: { code: 'not-a-ticket' },
      token: adminToken,
    });
    expect(res.status).toBe(422);
    expect(res.body.error.details.reason).toEqual(expect.any(String));
  });
});

describe('keys', () => {
  it('keeps verifying tickets signed before a rotation, and signs new ones with the new key', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const before = await confirmedBooking(server, alice, showId, ['C8']);
    const oldKid = decodeProtectedHeader(before.ticket.code).kid;
    const newKid = server.deps.tickets.rotate();
    expect(newKid).not.toBe(oldKid);
    const jwks = await jwksOf(server);
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect(jwks.keys[0]!.kid).toBe(newKid);
    const after = await confirmedBooking(server, alice, showId, ['C9']);
    expect(decodeProtectedHeader(after.ticket.code).kid).toBe(newKid);
    for (const code of [before.ticket.code, after.ticket.code]) {
      await expect(verifyOffline(code, jwks)).resolves.toBeDefined();
      expect((await verifyOnline(code)).valid).toBe(true);
    }
  });

  it('keeps its key in the data directory: tickets verify after a restart', async () => {
    const first = await startTestServer({ ...ADMIN_ENV });
    let second: TestServer | undefined;
    try {
      const admin = await login(first.api, ADMIN.email, ADMIN.password);
      const { showId } = await createShow(first.api, { adminToken: admin });
      const alice = await newUser(first.api);
      const booking = await confirmedBooking(first, alice, showId, ['A1']);
      const jwksBefore = await jwksOf(first);
      await first.close();
      second = await startTestServer({ ...ADMIN_ENV, DATA_DIR: first.dataDir });
      expect(await jwksOf(second)).toEqual(jwksBefore);
      expect(await verifyOnline(booking.ticket.code, second)).toMatchObject({
        valid: true,
        booking: { id: booking.id },
      });
    } finally {
      await (second ?? first).destroy();
    }
  });
});
