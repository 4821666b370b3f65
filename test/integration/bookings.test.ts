/**
 * The booking saga over real HTTP against the real server (workers, journal, app db, simulated payment
 * provider): browse, hold, book with a promo code, pay, ticket, verify, check in, history, cancel; the
 * failure paths (declined cards, invalid cards, a hold that lapses during payment), Idempotency-Key,
 * the cancellation cut-off, and nobody touching another user's booking.
 */
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedPaymentProvider } from '../../src/payments/simulated-provider.js';
import { ADMIN, ADMIN_ENV, createShow, login, newUser } from '../helpers/catalog.js';
import { bookingEventCount } from '../helpers/records.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const HOLD_TTL_SECONDS = 60;
const GOOD_CARD = { number: '4242 4242 4242 4242', expiry: '12/34', cvc: '123' };
const DECLINED_CARD = { number: '4000 0000 0000 0002', expiry: '12/34', cvc: '123' };
const NO_FUNDS_CARD = { number: '4000 0000 0000 9995', expiry: '12/34', cvc: '123' };

let server: TestServer;
let adminToken: string;
let clockOffsetMs = 0;
const now = () => Date.now() + clockOffsetMs;

beforeAll(async () => {
  server = await startTestServer(
    { ...ADMIN_ENV, HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS), CONVENIENCE_FEE_PERCENT: '2' },
    { now },
  );
  adminToken = await login(server.api, ADMIN.email, ADMIN.password);
});
afterAll(() => server?.destroy());

type User = Awaited<ReturnType<typeof newUser>>;

async function seatStatuses(showId: string): Promise<Record<string, string>> {
  const res = await server.api('GET', `/api/shows/${showId}/seats`);
  expect(res.status).toBe(200);
  return Object.fromEntries(res.body.seats.map((s: { id: string; status: string }) => [s.id, s.status]));
}

async function expectSeats(showId: string, seats: string[], status: string) {
  const map = await seatStatuses(showId);
  expect(Object.fromEntries(seats.map((s) => [s, map[s]]))).toEqual(
    Object.fromEntries(seats.map((s) => [s, status])),
  );
}

/**
 * The seat map is served from a mirror that learns of a lapsed hold from the actor's expiry sweep (once a
 * second), so after moving the clock past an expiry the map is polled briefly.
 */
async function eventuallySeats(showId: string, seats: string[], status: string) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const map = await seatStatuses(showId);
    if (seats.every((s) => map[s] === status) || Date.now() > deadline)
      return expectSeats(showId, seats, status);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function hold(user: User, showId: string, seats: string[]) {
  const res = await server.api('POST', `/api/shows/${showId}/holds`, { body: { seats }, token: user.token });
  expect(res.status).toBe(201);
  return res.body.hold as { id: string; seats: string[]; expiresAt: string };
}

async function book(user: User, body: Record<string, unknown>, headers?: Record<string, string>) {
  return server.api('POST', '/api/bookings', { body, token: user.token, headers });
}

async function bookSeats(user: User, showId: string, seats: string[], paymentMethod = 'card') {
  const res = await book(user, { showId, seats, paymentMethod });
  expect(res.status).toBe(201);
  return res.body as { booking: { id: string; seats: string[] }; payment: { intentId: string } };
}

async function pay(user: User, bookingId: string, proof: Record<string, unknown>, key?: string) {
  return server.api('POST', '/api/payments', {
    body: { bookingId, ...proof },
    token: user.token,
    headers: key ? { 'idempotency-key': key } : undefined,
  });
}

async function payByCard(user: User, bookingId: string) {
  const res = await pay(user, bookingId, { method: 'card', card: GOOD_CARD });
  expect(res.status).toBe(200);
  return res.body.booking;
}

async function getBooking(user: { token: string }, id: string) {
  const res = await server.api('GET', `/api/bookings/${id}`, { token: user.token });
  expect(res.status).toBe(200);
  return res.body.booking;
}

function simulator(): SimulatedPaymentProvider {
  return server.deps.payments as SimulatedPaymentProvider;
}

async function createOffer(input: Record<string, unknown>) {
  const res = await server.api('POST', '/api/admin/offers', {
    token: adminToken,
    body: {
      kind: 'percent',
      value: 10,
      validFrom: new Date(Date.now() - 86_400_000).toISOString(),
      validUntil: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      ...input,
    },
  });
  expect(res.status).toBe(201);
  return res.body.offer;
}

describe('the booking journey', () => {
  it('browses, holds, books with a promo code, pays, gets a ticket, checks in, cancels and is refunded', async () => {
    const city = `Journeyville${Math.random().toString(36).slice(2, 6)}`;
    const { showId, movieId } = await createShow(server.api, { adminToken, city });
    const code = `JOURNEY${Math.random().toString(36).slice(2, 6).toUpperCase()}`;
    await createOffer({ code, kind: 'percent', value: 10, maxDiscount: 5000 });
    const alice = await newUser(server.api, { name: 'Alice Journey' });

    // Browse: the movie is listed in its city, with this show and its seat map.
    const movies = await server.api('GET', `/api/movies?city=${city}`);
    expect(movies.status).toBe(200);
    expect(movies.body.movies.map((m: { id: string }) => m.id)).toEqual([movieId]);
    const shows = await server.api('GET', `/api/movies/${movieId}/shows?city=${city}`);
    expect(shows.body.shows.map((s: { id: string }) => s.id)).toEqual([showId]);
    expect(shows.body.shows[0].seatsAvailable).toBe(30);

    // Hold, then book with the promo code: 2 × 30000, 10% capped at 5000, 2% fees on the rest.
    const held = await hold(alice, showId, ['A4', 'A5']);
    const created = await book(alice, { holdId: held.id, promoCode: code, paymentMethod: 'card' });
    expect(created.status).toBe(201);
    const { booking, payment } = created.body;
    expect(booking).toMatchObject({
      userId: alice.user.id,
      showId,
      seats: ['A4', 'A5'],
      status: 'pending_payment',
      amount: { subtotal: 60000, discount: 5000, fees: 1100, total: 56100, currency: 'INR' },
      promoCode: code,
      confirmedAt: null,
    });
    expect(booking.ticket).toBeUndefined();
    expect(payment).toMatchObject({ provider: 'simulated', amount: 56100, currency: 'INR' });
    expect(payment.intentId).toEqual(expect.any(String));
    await expectSeats(showId, ['A4', 'A5'], 'held');

    // Pay by card: confirmed, with a ticket; only brand and last four are kept.
    const paid = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD });
    expect(paid.status).toBe(200);
    expect(paid.body.booking).toMatchObject({ id: booking.id, status: 'confirmed', seats: ['A4', 'A5'] });
    expect(Date.parse(paid.body.booking.confirmedAt)).not.toBeNaN();
    expect(paid.body.booking.ticket.code).toEqual(expect.any(String));
    // The booking carries the code; the QR image is GET /ticket's `qr` (API.md), not inlined on every read.
    expect(paid.body.booking.ticket).toEqual({ code: expect.any(String) });
    await expectSeats(showId, ['A4', 'A5'], 'booked');
    const stored = await server.deps.store.get(
      'SELECT card_brand, card_last4 FROM payments WHERE booking_id = ?',
      [booking.id],
    );
    expect(stored).toEqual({ card_brand: 'visa', card_last4: '4242' });
    expect(JSON.stringify(await server.deps.store.all('SELECT * FROM payments'))).not.toContain(
      '4242424242424242',
    );

    // The ticket: JSON with a QR data URL, or the PNG itself.
    const ticket = await server.api('GET', `/api/bookings/${booking.id}/ticket`, { token: alice.token });
    expect(ticket.status).toBe(200);
    expect(ticket.body.ticket.code).toBe(paid.body.booking.ticket.code);
    expect(ticket.body.ticket.qr).toMatch(/^data:image\/(svg\+xml|png);base64,[A-Za-z0-9+/=]+$/);
    const png = await fetch(`${server.url}/api/bookings/${booking.id}/ticket`, {
      headers: { authorization: `Bearer ${alice.token}`, accept: 'image/png' },
    });
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await png.arrayBuffer());
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

    // Offline verification with nothing but the published JWKS, through jose directly.
    const jwks = await server.api('GET', '/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect(jwks.body.keys[0].d).toBeUndefined();
    const { payload, protectedHeader } = await jwtVerify(
      ticket.body.ticket.code,
      createLocalJWKSet(jwks.body),
      { issuer: 'boxoffice', algorithms: ['EdDSA'] },
    );
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload).toMatchObject({
      sub: booking.id,
      show: showId,
      seats: ['A4', 'A5'],
      name: 'Alice Journey',
    });

    // Online verification, then the gate admits once.
    const verified = await server.api('POST', '/api/tickets/verify', {
      body: { code: ticket.body.ticket.code },
    });
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({
      valid: true,
      booking: { id: booking.id, showId, seats: ['A4', 'A5'], status: 'confirmed' },
    });
    const admitted = await server.api('POST', '/api/tickets/checkin', {
      body: { code: ticket.body.ticket.code },
      token: adminToken,
    });
    expect(admitted.status).toBe(200);
    expect(admitted.body.admitted).toBe(true);
    const second = await server.api('POST', '/api/tickets/checkin', {
      body: { code: ticket.body.ticket.code },
      token: adminToken,
    });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('ALREADY_CHECKED_IN');

    // History.
    const history = await server.api('GET', '/api/me/bookings', { token: alice.token });
    expect(history.status).toBe(200);
    expect(history.body.bookings).toHaveLength(1);
    expect(history.body.bookings[0]).toMatchObject({ id: booking.id, status: 'confirmed', promoCode: code });

    // Cancel: seats back on sale, refund with the provider, the ticket no longer valid.
    const cancelled = await server.api('POST', `/api/bookings/${booking.id}/cancel`, { token: alice.token });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.booking).toMatchObject({ id: booking.id, status: 'cancelled' });
    expect(cancelled.body.booking.ticket).toBeUndefined();
    await expectSeats(showId, ['A4', 'A5'], 'available');
    const intent = await simulator().retrieve(payment.intentId);
    expect(intent).toMatchObject({ ok: true, status: 'refunded' });
    expect(
      await server.deps.store.get('SELECT status, refunded_amount FROM payments WHERE booking_id = ?', [
        booking.id,
      ]),
    ).toEqual({ status: 'refunded', refunded_amount: 56100 });
    const after = await server.api('POST', '/api/tickets/verify', {
      body: { code: ticket.body.ticket.code },
    });
    expect(after.body).toMatchObject({ valid: false, booking: { id: booking.id, status: 'cancelled' } });
    expect(after.body.reason).toEqual(expect.any(String));
    expect(
      (await server.api('GET', `/api/bookings/${booking.id}/ticket`, { token: alice.token })).status,
    ).toBe(409);
    const cancelledHistory = await server.api('GET', '/api/me/bookings?status=cancelled', {
      token: alice.token,
    });
    expect(cancelledHistory.body.bookings.map((b: { id: string }) => b.id)).toEqual([booking.id]);

    // Someone else can now book the released seats.
    const bob = await newUser(server.api);
    const rebooked = await bookSeats(bob, showId, ['A4', 'A5']);
    expect((await payByCard(bob, rebooked.booking.id)).status).toBe('confirmed');
  });

  it('holds and books in one call from a show and seats, or a show and a count', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const bySeats = await book(alice, { showId, seats: ['B1', 'B2'], paymentMethod: 'card' });
    expect(bySeats.status).toBe(201);
    expect(bySeats.body.booking).toMatchObject({
      showId,
      seats: ['B1', 'B2'],
      status: 'pending_payment',
      amount: { subtotal: 60000, discount: 0, fees: 1200, total: 61200 },
    });
    await expectSeats(showId, ['B1', 'B2'], 'held');
    const byCount = await book(alice, { showId, count: 3, category: 'SILVER', paymentMethod: 'card' });
    expect(byCount.status).toBe(201);
    expect(byCount.body.booking.seats).toHaveLength(3);
    expect(byCount.body.booking.seats.every((s: string) => s.startsWith('C'))).toBe(true);
    expect(byCount.body.booking.amount.subtotal).toBe(60000);
    await expectSeats(showId, byCount.body.booking.seats, 'held');
    expect((await payByCard(alice, byCount.body.booking.id)).status).toBe('confirmed');
    await expectSeats(showId, byCount.body.booking.seats, 'booked');
  });

  it('pays by UPI and by wallet', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const upi = await bookSeats(alice, showId, ['A1'], 'upi');
    const paidUpi = await pay(alice, upi.booking.id, { method: 'upi', upiId: 'success@upi' });
    expect(paidUpi.status).toBe(200);
    expect(paidUpi.body.booking).toMatchObject({ status: 'confirmed', paymentMethod: 'upi' });
    const wallet = await bookSeats(alice, showId, ['A2'], 'wallet');
    const paidWallet = await pay(alice, wallet.booking.id, { method: 'wallet', walletId: 'wallet_success' });
    expect(paidWallet.status).toBe(200);
    expect(paidWallet.body.booking).toMatchObject({ status: 'confirmed', paymentMethod: 'wallet' });
    await expectSeats(showId, ['A1', 'A2'], 'booked');

    const failedUpi = await bookSeats(alice, showId, ['A3'], 'upi');
    const refused = await pay(alice, failedUpi.booking.id, { method: 'upi', upiId: 'failure@upi' });
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe('PAYMENT_FAILED');
    await expectSeats(showId, ['A3'], 'available');
  });

  it('refuses a payment method other than the one the booking was made for, changing nothing', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking } = await bookSeats(alice, showId, ['A1'], 'upi');
    const res = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect((await getBooking(alice, booking.id)).status).toBe('pending_payment');
    await expectSeats(showId, ['A1'], 'held');
  });
});

describe('failed payments', () => {
  for (const [name, card, reason] of [
    ['is declined', DECLINED_CARD, 'card_declined'],
    ['has insufficient funds', NO_FUNDS_CARD, 'insufficient_funds'],
  ] as const) {
    it(`answers 402 when the card ${name} and puts the seats back on sale`, async () => {
      const { showId } = await createShow(server.api, { adminToken });
      const alice = await newUser(server.api);
      const { booking } = await bookSeats(alice, showId, ['B3', 'B4']);
      await expectSeats(showId, ['B3', 'B4'], 'held');
      const res = await pay(alice, booking.id, { method: 'card', card });
      expect(res.status).toBe(402);
      expect(res.body.error.code).toBe('PAYMENT_FAILED');
      expect(JSON.stringify(res.body)).toContain(reason);
      await expectSeats(showId, ['B3', 'B4'], 'available');
      const failed = await getBooking(alice, booking.id);
      expect(failed.status).toBe('failed');
      expect(failed.ticket).toBeUndefined();
      // A failed booking cannot be paid again; the seats are free for anyone.
      const again = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD });
      expect(again.status).toBe(409);
      expect((await getBooking(alice, booking.id)).status).toBe('failed');
      const bob = await newUser(server.api);
      await bookSeats(bob, showId, ['B3', 'B4']);
    });
  }

  for (const [field, card] of [
    ['number', { number: '4242 4242 4242 4241', expiry: '12/34', cvc: '123' }],
    ['expiry', { number: '4242 4242 4242 4242', expiry: '01/20', cvc: '123' }],
    ['expiry', { number: '4242 4242 4242 4242', expiry: '13/30', cvc: '123' }],
    ['cvc', { number: '4242 4242 4242 4242', expiry: '12/34', cvc: '12a' }],
  ] as const) {
    it(`answers 400 naming the ${field} for an invalid card (${card.number} ${card.expiry} ${card.cvc}) and changes nothing`, async () => {
      const { showId } = await createShow(server.api, { adminToken });
      const alice = await newUser(server.api);
      const { booking, payment } = await bookSeats(alice, showId, ['C1']);
      const res = await pay(alice, booking.id, { method: 'card', card });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_CARD');
      expect(res.body.error.details.fields).toHaveProperty(field);
      expect(JSON.stringify(res.body)).not.toContain(card.number.replace(/ /g, ''));
      expect((await getBooking(alice, booking.id)).status).toBe('pending_payment');
      expect(await simulator().retrieve(payment.intentId)).toMatchObject({ status: 'requires_payment' });
      await expectSeats(showId, ['C1'], 'held');
      // The booking can still be paid with a good card.
      expect((await payByCard(alice, booking.id)).status).toBe('confirmed');
    });
  }

  it('answers 400 for a payment without card details and for malformed bodies', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking } = await bookSeats(alice, showId, ['C2']);
    for (const body of [
      { bookingId: booking.id, method: 'card' },
      { bookingId: booking.id, method: 'cash' },
      { bookingId: booking.id, method: 'card', card: { number: '4242424242424242' } },
      { method: 'card', card: GOOD_CARD },
      { bookingId: booking.id, method: 'card', card: GOOD_CARD, extra: true },
    ]) {
      const res = await server.api('POST', '/api/payments', { body, token: alice.token });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toMatch(/^(VALIDATION_FAILED|INVALID_CARD)$/);
    }
    const notJson = await server.api('POST', '/api/payments', { raw: '{"bookingId":', token: alice.token });
    expect(notJson.status).toBe(400);
    expect((await getBooking(alice, booking.id)).status).toBe('pending_payment');
    await expectSeats(showId, ['C2'], 'held');
  });
});

describe('a hold that lapses during payment', () => {
  it('re-holds the same seats when they are still free, and confirms', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking } = await bookSeats(alice, showId, ['A7', 'A8']);
    clockOffsetMs += (HOLD_TTL_SECONDS + 5) * 1000;
    await eventuallySeats(showId, ['A7', 'A8'], 'available');
    const paid = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD });
    expect(paid.status).toBe(200);
    expect(paid.body.booking).toMatchObject({ status: 'confirmed', seats: ['A7', 'A8'] });
    expect(paid.body.booking.ticket.code).toEqual(expect.any(String));
    await expectSeats(showId, ['A7', 'A8'], 'booked');
  });

  it('answers 410 HOLD_EXPIRED and refunds the capture when someone else took the seats', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const { booking, payment } = await bookSeats(alice, showId, ['B7', 'B8']);
    clockOffsetMs += (HOLD_TTL_SECONDS + 5) * 1000;
    await hold(bob, showId, ['B8', 'B9']);
    const paid = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD });
    expect(paid.status).toBe(410);
    expect(paid.body.error.code).toBe('HOLD_EXPIRED');
    expect(paid.body.error.details.seats).toEqual(['B8']);
    expect(await simulator().retrieve(payment.intentId)).toMatchObject({ ok: true, status: 'refunded' });
    const lost = await getBooking(alice, booking.id);
    expect(lost.status).toBe('expired');
    expect(lost.ticket).toBeUndefined();
    const seats = await seatStatuses(showId);
    expect([seats.B7, seats.B8, seats.B9]).toEqual(['available', 'held', 'held']);
    // Paying again answers the same, and refunds nothing twice.
    const again = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD });
    expect(again.status).toBe(410);
    expect(again.body.error.code).toBe('HOLD_EXPIRED');
    expect(await bookingEventCount(server.deps.store, booking.id, 'refunded')).toBe(1);
    expect((await getBooking(alice, booking.id)).status).toBe('expired');
  });

  it('marks a pending booking expired once its hold has lapsed, and it cannot be paid afterwards if the seats are gone', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const { booking } = await bookSeats(alice, showId, ['C9']);
    clockOffsetMs += (HOLD_TTL_SECONDS + 120) * 1000;
    expect(await server.deps.bookings.expireStale()).toBeGreaterThanOrEqual(1);
    expect((await getBooking(alice, booking.id)).status).toBe('expired');
    await eventuallySeats(showId, ['C9'], 'available');
    await bookSeats(bob, showId, ['C9']);
    const late = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD });
    expect(late.status).toBe(410);
    expect((await getBooking(alice, booking.id)).status).toBe('expired');
  });
});

describe('a hold extended after booking', () => {
  it('keeps the booking pending while the extended hold lives, and expires it after', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const held = await hold(alice, showId, ['B9']);
    const created = await book(alice, { holdId: held.id, paymentMethod: 'card' });
    expect(created.status).toBe(201);
    const id = created.body.booking.id;
    let expiresAt = held.expiresAt;
    for (let i = 0; i < 2; i++) {
      clockOffsetMs += 50_000;
      const extended = await server.api('POST', `/api/holds/${held.id}/extend`, { token: alice.token });
      expect(extended.status).toBe(200);
      expect(Date.parse(extended.body.hold.expiresAt)).toBeGreaterThan(Date.parse(expiresAt));
      expiresAt = extended.body.hold.expiresAt;
    }
    // Past the first expiry and its grace, but the hold still lives: the booking stays payable.
    clockOffsetMs += 25_000;
    await server.deps.bookings.expireStale();
    const still = await getBooking(alice, id);
    expect(still.status).toBe('pending_payment');
    expect(still.holdExpiresAt).toBe(expiresAt);
    await expectSeats(showId, ['B9'], 'held');
    // Once the extended hold has lapsed too, the sweep expires the booking.
    clockOffsetMs += (HOLD_TTL_SECONDS + 65) * 1000;
    await server.deps.bookings.expireStale();
    expect((await getBooking(alice, id)).status).toBe('expired');
    await eventuallySeats(showId, ['B9'], 'available');
  });
});

describe('Idempotency-Key', () => {
  it('answers a retried booking with the first answer, and refuses the key with another body', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const headers = { 'idempotency-key': `bk-${Math.random()}` };
    const body = { showId, seats: ['A1', 'A2'], paymentMethod: 'card' };
    const first = await book(alice, body, headers);
    expect(first.status).toBe(201);
    const second = await book(alice, body, headers);
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    const history = await server.api('GET', '/api/me/bookings', { token: alice.token });
    expect(history.body.bookings).toHaveLength(1);
    const reused = await book(alice, { ...body, seats: ['A3'] }, headers);
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    await expectSeats(showId, ['A3'], 'available');
    // Keys are per user: another user's identical key is a new request.
    const bob = await newUser(server.api);
    const bobs = await book(bob, { showId, seats: ['A5'], paymentMethod: 'card' }, headers);
    expect(bobs.status).toBe(201);
  });

  it('creates one booking when retries with the same key arrive at the same time', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const headers = { 'idempotency-key': `race-${Math.random()}`, 'x-request-id': 'retry-1' };
    const body = { showId, seats: ['C1', 'C2'], paymentMethod: 'card' };
    const results = await Promise.all(Array.from({ length: 6 }, () => book(alice, body, headers)));
    const created = results.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const r of created) expect(r.body).toEqual(created[0]!.body);
    for (const r of results.filter((r) => r.status !== 201))
      expect(r.body.error.code).toBe('IDEMPOTENCY_KEY_IN_USE');
    const history = await server.api('GET', '/api/me/bookings', { token: alice.token });
    expect(history.body.bookings.map((b: { id: string }) => b.id)).toEqual([created[0]!.body.booking.id]);
    const replay = await book(alice, body, headers);
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(created[0]!.body);
    expect(replay.headers.get('x-request-id')).toBe('retry-1');
    const map = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(map.body.counts.held).toBe(2);
  });

  it('answers a retried payment with the first answer, success or failure', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking } = await bookSeats(alice, showId, ['B1']);
    const key = `pay-${Math.random()}`;
    const first = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD }, key);
    expect(first.status).toBe(200);
    const retry = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD }, key);
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    const other = await pay(alice, booking.id, { method: 'card', card: DECLINED_CARD }, key);
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await getBooking(alice, booking.id)).status).toBe('confirmed');

    const declined = await bookSeats(alice, showId, ['B2']);
    const failKey = `pay-${Math.random()}`;
    const no = await pay(alice, declined.booking.id, { method: 'card', card: DECLINED_CARD }, failKey);
    expect(no.status).toBe(402);
    const noAgain = await pay(alice, declined.booking.id, { method: 'card', card: DECLINED_CARD }, failKey);
    expect(noAgain.status).toBe(402);
    expect(noAgain.body).toEqual(no.body);
  });

  it('does not keep a 400: the client may fix its input and resend with the same key', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const bookingKey = { 'idempotency-key': `fix-${Math.random()}` };
    const typo = await book(alice, { showId, seats: ['B7'], paymentMethod: 'crad' }, bookingKey);
    expect(typo.status).toBe(400);
    const fixed = await book(alice, { showId, seats: ['B7'], paymentMethod: 'card' }, bookingKey);
    expect(fixed.status).toBe(201);
    const payKey = `fix-pay-${Math.random()}`;
    const badExpiry = await pay(
      alice,
      fixed.body.booking.id,
      { method: 'card', card: { ...GOOD_CARD, expiry: '01/21' } },
      payKey,
    );
    expect(badExpiry.status).toBe(400);
    expect(badExpiry.body.error.code).toBe('INVALID_CARD');
    const paid = await pay(alice, fixed.body.booking.id, { method: 'card', card: GOOD_CARD }, payKey);
    expect(paid.status).toBe(200);
    expect(paid.body.booking.status).toBe('confirmed');
    // Once answered, the key is bound to that request.
    const other = await pay(alice, fixed.body.booking.id, { method: 'card', card: DECLINED_CARD }, payKey);
    expect(other.status).toBe(409);
  });

  it('answers a retried cancellation with the first answer, and refunds once', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking } = await bookSeats(alice, showId, ['C3']);
    await payByCard(alice, booking.id);
    const headers = { 'idempotency-key': `cx-${Math.random()}` };
    const first = await server.api('POST', `/api/bookings/${booking.id}/cancel`, {
      token: alice.token,
      headers,
    });
    const second = await server.api('POST', `/api/bookings/${booking.id}/cancel`, {
      token: alice.token,
      headers,
    });
    expect(first.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(await bookingEventCount(server.deps.store, booking.id, 'refunded')).toBe(1);
  });

  it('refuses an empty or oversized key with 400', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    for (const key of ['', 'x'.repeat(256)]) {
      const res = await book(
        alice,
        { showId, seats: ['A9'], paymentMethod: 'card' },
        { 'idempotency-key': key },
      );
      expect(res.status).toBe(400);
    }
    await expectSeats(showId, ['A9'], 'available');
  });
});

describe('cancellation', () => {
  it('closes at the cut-off before the show: 422 CANCELLATION_CLOSED, nothing changes', async () => {
    const { showId } = await createShow(server.api, { adminToken, startsInMinutes: 90 });
    const alice = await newUser(server.api);
    const { booking, payment } = await bookSeats(alice, showId, ['A1', 'A2']);
    await payByCard(alice, booking.id);
    const res = await server.api('POST', `/api/bookings/${booking.id}/cancel`, { token: alice.token });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('CANCELLATION_CLOSED');
    expect(Date.parse(res.body.error.details.cutoff)).toBeLessThan(now());
    const still = await getBooking(alice, booking.id);
    expect(still.status).toBe('confirmed');
    expect(still.ticket).toBeDefined();
    await expectSeats(showId, ['A1', 'A2'], 'booked');
    expect(await simulator().retrieve(payment.intentId)).toMatchObject({ status: 'succeeded' });
  });

  it('cancels once when cancellations race: one refund, seats released once', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking, payment } = await bookSeats(alice, showId, ['C6', 'C7']);
    await payByCard(alice, booking.id);
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        server.api('POST', `/api/bookings/${booking.id}/cancel`, { token: alice.token }),
      ),
    );
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.booking.status).toBe('cancelled');
    }
    const count = (status: string) => bookingEventCount(server.deps.store, booking.id, status);
    expect(await count('cancelled')).toBe(1);
    expect(await count('refunded')).toBe(1);
    expect(await simulator().retrieve(payment.intentId)).toMatchObject({ status: 'refunded' });
    await expectSeats(showId, ['C6', 'C7'], 'available');
    const map = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(map.body.counts).toMatchObject({ booked: 0, held: 0, available: 30 });
  });

  it('is open until the cut-off', async () => {
    const { showId } = await createShow(server.api, { adminToken, startsInMinutes: 150 });
    const alice = await newUser(server.api);
    const { booking } = await bookSeats(alice, showId, ['A1']);
    await payByCard(alice, booking.id);
    const res = await server.api('POST', `/api/bookings/${booking.id}/cancel`, { token: alice.token });
    expect(res.status).toBe(200);
    expect(res.body.booking.status).toBe('cancelled');
  });

  it('cancels a pending booking: its seats go back on sale at once', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking, payment } = await bookSeats(alice, showId, ['B5']);
    const res = await server.api('POST', `/api/bookings/${booking.id}/cancel`, { token: alice.token });
    expect(res.status).toBe(200);
    // API.md's cancel row: `cancelled`, paid or not (the customer ended it; nothing failed).
    expect(res.body.booking).toMatchObject({ status: 'cancelled', cancelledAt: expect.any(String) });
    expect((await getBooking(alice, booking.id)).status).toBe('cancelled');
    await expectSeats(showId, ['B5'], 'available');
    // The abandoned intent cannot be paid afterwards.
    const late = await pay(alice, booking.id, { method: 'card', card: GOOD_CARD });
    expect(late.status).toBe(409);
    expect(await simulator().retrieve(payment.intentId)).toMatchObject({ status: 'requires_payment' });
  });
});

describe('a show cancelled by the theater', () => {
  async function eventually(check: () => Promise<boolean>) {
    const deadline = Date.now() + 5000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the cancelled show to settle');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const eventCount = (bookingId: string, status: string) =>
    bookingEventCount(server.deps.store, bookingId, status);

  it('cancels and refunds its paid bookings even past the cut-off, fails unpaid ones, and tells customers why', async () => {
    // 90 minutes away: past the cut-off, so the customer could no longer cancel it themselves.
    const { showId } = await createShow(server.api, { adminToken, startsInMinutes: 90 });
    const { showId: otherShowId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api, { phone: '+919800000001' });
    const bob = await newUser(server.api);
    const paid = await bookSeats(alice, showId, ['A1', 'A2']);
    const ticket = (await payByCard(alice, paid.booking.id)).ticket as { code: string };
    const unpaid = await bookSeats(bob, showId, ['B1']);
    const elsewhere = await bookSeats(alice, otherShowId, ['A1']);
    await payByCard(alice, elsewhere.booking.id);

    const res = await server.api('DELETE', `/api/admin/shows/${showId}`, { token: adminToken });
    expect(res.status).toBe(204);
    await eventually(
      async () =>
        (await getBooking(alice, paid.booking.id)).status === 'cancelled' &&
        (await getBooking(bob, unpaid.booking.id)).status === 'failed' &&
        (await eventCount(paid.booking.id, 'refunded')) === 1,
    );
    expect(await simulator().retrieve(paid.payment.intentId)).toMatchObject({ status: 'refunded' });
    const verified = await server.api('POST', '/api/tickets/verify', { body: { code: ticket.code } });
    expect(verified.body).toMatchObject({ valid: false, booking: { status: 'cancelled' } });
    const notices = await server.deps.store.all<{ channel: string; data: string }>(
      "SELECT channel, data FROM notifications WHERE booking_id = ? AND template = 'booking_cancelled' ORDER BY channel",
      [paid.booking.id],
    );
    expect(notices.map((n) => n.channel)).toEqual(['email', 'sms']);
    for (const n of notices) expect(JSON.parse(n.data).reason).toMatch(/cancelled by the theater/);
    const reminders = await server.deps.store.all<{ status: string }>(
      "SELECT status FROM notifications WHERE booking_id = ? AND template = 'show_reminder'",
      [paid.booking.id],
    );
    expect(reminders.map((r) => r.status)).toEqual(expect.not.arrayContaining(['queued']));
    // The other show's booking is untouched; a second DELETE refunds nothing more.
    expect((await getBooking(alice, elsewhere.booking.id)).status).toBe('confirmed');
    expect((await server.api('DELETE', `/api/admin/shows/${showId}`, { token: adminToken })).status).toBe(
      204,
    );
    await server.deps.bookings.cancelForShow(showId);
    expect(await eventCount(paid.booking.id, 'refunded')).toBe(1);
    expect(await eventCount(paid.booking.id, 'cancelled')).toBe(1);
  });

  it('refuses to cancel a show that has already been played: 409, its tickets stay valid', async () => {
    const { showId } = await createShow(server.api, { adminToken, startsInMinutes: 200 });
    const alice = await newUser(server.api);
    const paid = await bookSeats(alice, showId, ['A3']);
    await payByCard(alice, paid.booking.id);
    const show = (await server.api('GET', `/api/shows/${showId}`)).body.show as { endTime: string };
    clockOffsetMs = Date.parse(show.endTime) - Date.now() + 60_000;
    try {
      // Hours later: the admin logs in again (the old token has expired by this clock).
      const laterToken = await login(server.api, ADMIN.email, ADMIN.password);
      const res = await server.api('DELETE', `/api/admin/shows/${showId}`, { token: laterToken });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('INVALID_STATE');
    } finally {
      clockOffsetMs = 0;
    }
    expect((await server.api('GET', `/api/shows/${showId}`)).body.show.status).toBe('scheduled');
    expect((await getBooking(alice, paid.booking.id)).status).toBe('confirmed');
    expect(await simulator().retrieve(paid.payment.intentId)).toMatchObject({ status: 'succeeded' });
  });

  it('settles bookings a stop left open on a cancelled show, through the sweep', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const paid = await bookSeats(alice, showId, ['C1']);
    await payByCard(alice, paid.booking.id);
    // The show is marked cancelled but the process stops before settling its bookings.
    expect((await server.deps.catalog.cancelShow(showId)).ok).toBe(true);
    expect((await getBooking(alice, paid.booking.id)).status).toBe('confirmed');
    // What the 10-second sweep (and the start-up reconciliation) runs; it may have run already.
    await server.deps.bookings.settleCancelledShows();
    expect((await getBooking(alice, paid.booking.id)).status).toBe('cancelled');
    expect(await simulator().retrieve(paid.payment.intentId)).toMatchObject({ status: 'refunded' });
    expect(await server.deps.bookings.settleCancelledShows()).toBe(0);
  });
});

describe('ownership', () => {
  it("nobody can read, pay for, cancel or fetch the ticket of another user's booking", async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const mallory = await newUser(server.api);
    const pending = await bookSeats(alice, showId, ['C4']);
    const confirmed = await bookSeats(alice, showId, ['C5']);
    await payByCard(alice, confirmed.booking.id);

    for (const { booking } of [pending, confirmed]) {
      const read = await server.api('GET', `/api/bookings/${booking.id}`, { token: mallory.token });
      expect(read.status).toBe(403);
      expect(read.body.error.code).toBe('FORBIDDEN');
      const ticket = await server.api('GET', `/api/bookings/${booking.id}/ticket`, { token: mallory.token });
      expect(ticket.status).toBe(403);
      const cancel = await server.api('POST', `/api/bookings/${booking.id}/cancel`, { token: mallory.token });
      expect(cancel.status).toBe(403);
      const paid = await pay(mallory, booking.id, { method: 'card', card: GOOD_CARD });
      expect(paid.status).toBe(403);
      expect(JSON.stringify([read.body, ticket.body, cancel.body, paid.body])).not.toContain(alice.email);
    }
    expect((await getBooking(alice, pending.booking.id)).status).toBe('pending_payment');
    expect((await getBooking(alice, confirmed.booking.id)).status).toBe('confirmed');
    await expectSeats(showId, ['C4'], 'held');
    await expectSeats(showId, ['C5'], 'booked');
    expect(await simulator().retrieve(pending.payment.intentId)).toMatchObject({
      status: 'requires_payment',
    });

    // Nor book someone else's hold, nor see their history.
    const aliceHold = await hold(alice, showId, ['C6']);
    const stolen = await book(mallory, { holdId: aliceHold.id, paymentMethod: 'card' });
    expect(stolen.status).toBe(403);
    const history = await server.api('GET', '/api/me/bookings', { token: mallory.token });
    expect(history.body.bookings).toEqual([]);

    // Without a token: 401; an unknown booking: 404; an admin may read any.
    expect((await server.api('GET', `/api/bookings/${pending.booking.id}`)).status).toBe(401);
    expect(
      (await server.api('POST', '/api/bookings', { body: { showId, seats: ['C7'], paymentMethod: 'card' } }))
        .status,
    ).toBe(401);
    const unknown = await server.api('GET', '/api/bookings/bkg_nope', { token: alice.token });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('BOOKING_NOT_FOUND');
    expect((await pay(alice, 'bkg_nope', { method: 'card', card: GOOD_CARD })).status).toBe(404);
    expect((await server.api('POST', '/api/bookings/bkg_nope/cancel', { token: alice.token })).status).toBe(
      404,
    );
    expect((await getBooking({ token: adminToken }, pending.booking.id)).id).toBe(pending.booking.id);
  });
});

describe('bad requests to POST /api/bookings', () => {
  it('answers 4xx in the contract shape and holds nothing', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const cases: [Record<string, unknown>, number, string][] = [
      [{ showId, seats: ['A1'], count: 1, paymentMethod: 'card' }, 400, 'VALIDATION_FAILED'],
      [{ showId, paymentMethod: 'card' }, 400, 'VALIDATION_FAILED'],
      [{ showId, seats: ['A1'] }, 400, 'VALIDATION_FAILED'],
      [{ showId, seats: ['A1'], paymentMethod: 'cheque' }, 400, 'VALIDATION_FAILED'],
      [{ showId, seats: ['A1', 'Z99'], paymentMethod: 'card' }, 400, 'UNKNOWN_SEAT'],
      [{ showId: 'shw_nope', seats: ['A1'], paymentMethod: 'card' }, 404, 'SHOW_NOT_FOUND'],
      [{ holdId: 'hld_nope', paymentMethod: 'card' }, 404, 'HOLD_NOT_FOUND'],
      [{ holdId: `hld_nope.${showId}`, paymentMethod: 'card' }, 404, 'HOLD_NOT_FOUND'],
      [{ showId, seats: ['A1'], paymentMethod: 'card', promoCode: 'NOSUCHCODE' }, 422, 'OFFER_INVALID'],
      [{ showId, count: 11, paymentMethod: 'card' }, 422, 'SEAT_LIMIT_EXCEEDED'],
    ];
    for (const [body, status, code] of cases) {
      const res = await book(alice, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.code, JSON.stringify(body)).toBe(code);
      expect(res.body.error.message).toEqual(expect.any(String));
    }
    const map = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(map.body.counts).toMatchObject({ available: 30, held: 0, booked: 0 });
    const history = await server.api('GET', '/api/me/bookings', { token: alice.token });
    expect(history.body.bookings).toEqual([]);
  });

  it('refuses a second booking of the same hold with 409', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const held = await hold(alice, showId, ['B6']);
    const first = await book(alice, { holdId: held.id, paymentMethod: 'card' });
    expect(first.status).toBe(201);
    const second = await book(alice, { holdId: held.id, paymentMethod: 'upi' });
    expect(second.status).toBe(409);
    expect(second.body.error.details.bookingId).toBe(first.body.booking.id);
  });

  it('refuses seats someone else holds with 409 naming them', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    await hold(bob, showId, ['A2']);
    const res = await book(alice, { showId, seats: ['A1', 'A2'], paymentMethod: 'card' });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'SEATS_UNAVAILABLE', details: { seats: ['A2'] } });
    await expectSeats(showId, ['A1'], 'available');
  });
});

describe("the seed design's book-seat", () => {
  it('books the seat the caller locked, and pays for it', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const locked = await server.api('POST', `/api/shows/${showId}/lock-seat`, {
      body: { seatNumber: 'B5' },
      token: alice.token,
    });
    expect(locked.status).toBe(200);
    const notMine = await server.api('POST', `/api/shows/${showId}/book-seat`, {
      body: { seatNumber: 'B5' },
      token: bob.token,
    });
    expect(notMine.status).toBe(404);
    const booked = await server.api('POST', `/api/shows/${showId}/book-seat`, {
      body: { seatNumber: 'B5' },
      token: alice.token,
    });
    expect(booked.status).toBe(201);
    expect(booked.body.booking).toMatchObject({
      showId,
      seats: ['B5'],
      status: 'pending_payment',
      holdId: locked.body.hold.id,
    });
    expect(booked.body.payment.intentId).toEqual(expect.any(String));
    expect((await payByCard(alice, booked.body.booking.id)).status).toBe('confirmed');
    await expectSeats(showId, ['B5'], 'booked');
    const unlocked = await server.api('POST', `/api/shows/${showId}/book-seat`, {
      body: { seatNumber: 'B6' },
      token: alice.token,
    });
    expect(unlocked.status).toBe(404);
    expect(unlocked.body.error.code).toBe('HOLD_NOT_FOUND');
  });
});
