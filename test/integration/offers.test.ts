/**
 * Promo codes over real HTTP against the real server: the public list, the preview (POST
 * /api/offers/validate) and its 422 reasons, total and per-user limits under racing bookings, and uses
 * given back by failed, cancelled and expired bookings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, createShow, GOOD_CARD, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const DECLINED_CARD = { number: '4000000000000002', expiry: '12/34', cvc: '123' };
const HOLD_TTL_SECONDS = 60;
const DAY_MS = 86_400_000;

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

let codeCounter = 0;
function uniqueCode(prefix: string): string {
  return `${prefix}${++codeCounter}${Math.random().toString(36).slice(2, 6).toUpperCase()}`;
}

async function createOffer(input: Record<string, unknown>) {
  const res = await server.api('POST', '/api/admin/offers', {
    token: adminToken,
    body: {
      code: uniqueCode('OFF'),
      kind: 'percent',
      value: 10,
      validFrom: new Date(now() - DAY_MS).toISOString(),
      validUntil: new Date(now() + 7 * DAY_MS).toISOString(),
      ...input,
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.offer as { id: string; code: string; usedCount: number };
}

async function usedCount(code: string): Promise<number> {
  const res = await server.api('GET', '/api/offers');
  const offer = res.body.offers.find((o: { code: string }) => o.code === code);
  // An exhausted offer leaves the public list.
  return offer ? offer.usedCount : -1;
}

async function validate(body: Record<string, unknown>, token?: string) {
  return server.api('POST', '/api/offers/validate', { body, token });
}

async function book(user: User, body: Record<string, unknown>) {
  return server.api('POST', '/api/bookings', { body: { paymentMethod: 'card', ...body }, token: user.token });
}

async function pay(user: User, bookingId: string, card = GOOD_CARD) {
  return server.api('POST', '/api/payments', {
    body: { bookingId, method: 'card', card },
    token: user.token,
  });
}

/** Moves the clock past a hold's expiry and its grace, and lets the sweep expire pending bookings. */
async function lapse() {
  clockOffsetMs += (HOLD_TTL_SECONDS + 120) * 1000;
  await server.deps.bookings.expireStale();
}

async function bookingStatus(user: User, bookingId: string): Promise<string> {
  return (await server.api('GET', `/api/bookings/${bookingId}`, { token: user.token })).body.booking.status;
}

/** The provider's side: whether any money was taken (requires_payment: never charged). */
async function intentStatus(intentId: string): Promise<string | undefined> {
  const state = await server.deps.payments.retrieve(intentId);
  return state.ok ? state.status : undefined;
}

async function offerUses(offerId: string): Promise<number> {
  const row = await server.deps.store.get<{ n: number }>(
    'SELECT COUNT(*) AS n FROM offer_uses WHERE offer_id = ?',
    [offerId],
  );
  return row?.n ?? 0;
}

describe('GET /api/offers', () => {
  it('lists public offers usable now, and hides private, expired, future and withdrawn ones', async () => {
    const listed = await createOffer({ code: uniqueCode('PUB') });
    const hidden = await createOffer({ code: uniqueCode('PRIV'), isPublic: false });
    const expired = await createOffer({
      code: uniqueCode('OLD'),
      validFrom: new Date(now() - 10 * DAY_MS).toISOString(),
      validUntil: new Date(now() - DAY_MS).toISOString(),
    });
    const future = await createOffer({
      code: uniqueCode('NEW'),
      validFrom: new Date(now() + DAY_MS).toISOString(),
      validUntil: new Date(now() + 10 * DAY_MS).toISOString(),
    });
    const withdrawn = await createOffer({ code: uniqueCode('GONE') });
    expect(
      (await server.api('DELETE', `/api/admin/offers/${withdrawn.id}`, { token: adminToken })).status,
    ).toBe(204);
    const res = await server.api('GET', '/api/offers');
    expect(res.status).toBe(200);
    const codes = res.body.offers.map((o: { code: string }) => o.code);
    expect(codes).toContain(listed.code);
    for (const offer of [hidden, expired, future, withdrawn]) expect(codes).not.toContain(offer.code);
    expect(res.body.offers.find((o: { code: string }) => o.code === listed.code)).toMatchObject({
      kind: 'percent',
      value: 10,
      usedCount: 0,
      isPublic: true,
      isActive: true,
    });
  });

  it('lets only admins create, change and withdraw offers, and refuses bad ones with 4xx', async () => {
    const alice = await newUser(server.api);
    const body = {
      code: uniqueCode('ADM'),
      kind: 'flat',
      value: 5000,
      validFrom: new Date(now()).toISOString(),
      validUntil: new Date(now() + DAY_MS).toISOString(),
    };
    expect((await server.api('POST', '/api/admin/offers', { body, token: alice.token })).status).toBe(403);
    expect((await server.api('POST', '/api/admin/offers', { body })).status).toBe(401);
    const created = await server.api('POST', '/api/admin/offers', { body, token: adminToken });
    expect(created.status).toBe(201);
    const duplicate = await server.api('POST', '/api/admin/offers', {
      body: { ...body, code: body.code.toLowerCase() },
      token: adminToken,
    });
    expect(duplicate.status).toBe(409);
    for (const bad of [
      { ...body, code: 'x' },
      { ...body, code: uniqueCode('P'), kind: 'percent', value: 150 },
      { ...body, code: uniqueCode('W'), validUntil: body.validFrom },
      { ...body, code: uniqueCode('S'), scope: { daysOfWeek: [7] } },
      { ...body, code: uniqueCode('N'), value: -1 },
    ]) {
      const res = await server.api('POST', '/api/admin/offers', { body: bad, token: adminToken });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      // Rules across fields too (dates, a percent's range) name the field to change.
      expect(Object.keys(res.body.error.details.fields ?? {}), JSON.stringify(bad)).not.toEqual([]);
    }
    // A PATCH is checked on the offer it would make: the value alone cannot make a percent offer 150%.
    const percent = await server.api('POST', '/api/admin/offers', {
      body: { ...body, code: uniqueCode('PCT'), kind: 'percent', value: 10 },
      token: adminToken,
    });
    expect(percent.status).toBe(201);
    const over = await server.api('PATCH', `/api/admin/offers/${percent.body.offer.id}`, {
      body: { value: 150 },
      token: adminToken,
    });
    expect(over.status).toBe(400);
    expect(over.body.error).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { fields: { value: expect.any(String) } },
    });
    const backwards = await server.api('PATCH', `/api/admin/offers/${percent.body.offer.id}`, {
      body: { validUntil: body.validFrom },
      token: adminToken,
    });
    expect(backwards.body.error).toMatchObject({ details: { fields: { validUntil: expect.any(String) } } });
    const listedNow = (await server.api('GET', '/api/offers')).body.offers as {
      code: string;
      value: number;
    }[];
    expect(listedNow.find((o) => o.code === percent.body.offer.code)?.value).toBe(10);
    const patched = await server.api('PATCH', `/api/admin/offers/${created.body.offer.id}`, {
      body: { value: 7000 },
      token: adminToken,
    });
    expect(patched.status).toBe(200);
    expect(patched.body.offer.value).toBe(7000);
    // A PATCH changes what it names and nothing else: a private, withdrawn, scoped offer stays so.
    const kept = await server.api('POST', '/api/admin/offers', {
      body: {
        ...body,
        code: uniqueCode('KEPT'),
        description: 'staff only',
        minAmount: 20000,
        scope: { cities: ['Mumbai'] },
        isPublic: false,
        isActive: false,
      },
      token: adminToken,
    });
    expect(kept.status).toBe(201);
    const repriced = await server.api('PATCH', `/api/admin/offers/${kept.body.offer.id}`, {
      body: { value: 600 },
      token: adminToken,
    });
    expect(repriced.status).toBe(200);
    expect(repriced.body.offer).toMatchObject({
      value: 600,
      description: 'staff only',
      minAmount: 20000,
      scope: { cities: ['Mumbai'] },
      isPublic: false,
      isActive: false,
    });
    const listed = await server.api('GET', '/api/offers');
    expect(listed.body.offers.map((o: { code: string }) => o.code)).not.toContain(kept.body.offer.code);
    expect(
      (await server.api('PATCH', '/api/admin/offers/ofr_nope', { body: { value: 1 }, token: adminToken }))
        .status,
    ).toBe(404);
  });
});

describe('POST /api/offers/validate', () => {
  it('previews the discount for seats (percent with a cap) or an amount (flat), case-insensitively', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const percent = await createOffer({ kind: 'percent', value: 20, maxDiscount: 10000 });
    const bySeats = await validate({ code: percent.code, showId, seats: ['A1', 'C1'] });
    expect(bySeats.status).toBe(200);
    // 30000 + 20000 = 50000; 20% is 10000, exactly the cap; fees 2% of 40000.
    expect(bySeats.body).toMatchObject({
      valid: true,
      offer: { code: percent.code },
      amount: { subtotal: 50000, discount: 10000, fees: 800, total: 40800, currency: 'INR' },
    });
    const capped = await validate({ code: percent.code.toLowerCase(), showId, seats: ['A1', 'A2', 'A3'] });
    expect(capped.status).toBe(200);
    expect(capped.body.amount).toMatchObject({ subtotal: 90000, discount: 10000, total: 81600 });
    const flat = await createOffer({ kind: 'flat', value: 7500 });
    const byAmount = await validate({ code: flat.code, showId, amount: 40000 });
    expect(byAmount.status).toBe(200);
    expect(byAmount.body.amount).toMatchObject({ subtotal: 40000, discount: 7500, fees: 650, total: 33150 });
    // Previewing takes no use.
    expect(await usedCount(percent.code)).toBe(0);
  });

  it('answers 422 OFFER_INVALID with the reason', async () => {
    const { showId, movieId, theaterId } = await createShow(server.api, { adminToken, city: 'Pune' });
    const { show } = (await server.api('GET', `/api/shows/${showId}`)).body;
    const showStartDay = new Date(show.startTime).getUTCDay();
    const otherDay = (showStartDay + 3) % 7;
    const cases: [string, Record<string, unknown>][] = [
      [
        'expired',
        {
          validFrom: new Date(now() - 10 * DAY_MS).toISOString(),
          validUntil: new Date(now() - DAY_MS).toISOString(),
        },
      ],
      [
        'not_started',
        {
          validFrom: new Date(now() + DAY_MS).toISOString(),
          validUntil: new Date(now() + 10 * DAY_MS).toISOString(),
        },
      ],
      ['below_minimum', { minAmount: 100000 }],
      ['out_of_scope', { scope: { cities: ['Chennai'] } }],
      ['out_of_scope', { scope: { movieIds: ['mov_other'] } }],
      ['out_of_scope', { scope: { theaterIds: ['thr_other'] } }],
      ['out_of_scope', { scope: { daysOfWeek: [otherDay] } }],
    ];
    for (const [reason, input] of cases) {
      const offer = await createOffer(input);
      const res = await validate({ code: offer.code, showId, seats: ['A1'] });
      expect(res.status, `${reason} ${JSON.stringify(input)}`).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'OFFER_INVALID', details: { reason } });
      expect(res.body.error.message).toEqual(expect.any(String));
    }
    const unknown = await validate({ code: 'NO-SUCH-CODE', showId, seats: ['A1'] });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.details.reason).toBe('unknown_code');
    // The same scopes that match this show are accepted.
    for (const scope of [
      { cities: ['pune'] },
      { movieIds: [movieId] },
      { theaterIds: [theaterId] },
      { daysOfWeek: [showStartDay] },
    ]) {
      const offer = await createOffer({ scope });
      expect(
        (await validate({ code: offer.code, showId, seats: ['A1'] })).status,
        JSON.stringify(scope),
      ).toBe(200);
    }
  });

  it('answers the per-user limit for the caller when a token is given', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ perUserLimit: 1 });
    const alice = await newUser(server.api);
    const created = await book(alice, { showId, seats: ['A1'], promoCode: offer.code });
    expect(created.status).toBe(201);
    const mine = await validate({ code: offer.code, showId, seats: ['A2'] }, alice.token);
    expect(mine.status).toBe(422);
    expect(mine.body.error.details.reason).toBe('user_limit');
    expect((await validate({ code: offer.code, showId, seats: ['A2'] })).status).toBe(200);
  });

  it('answers 400 or 404 for bad input, in the contract shape', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({});
    const cases: [Record<string, unknown>, number, string][] = [
      [{ code: offer.code, showId, seats: ['A1'], amount: 100 }, 400, 'VALIDATION_FAILED'],
      [{ code: offer.code, showId }, 400, 'VALIDATION_FAILED'],
      [{ code: offer.code, showId, amount: -5 }, 400, 'VALIDATION_FAILED'],
      [{ code: '', showId, amount: 100 }, 400, 'VALIDATION_FAILED'],
      [{ code: offer.code, showId, seats: ['Z99'] }, 400, 'UNKNOWN_SEAT'],
      [{ code: offer.code, showId: 'shw_nope', amount: 100 }, 404, 'SHOW_NOT_FOUND'],
    ];
    for (const [body, status, code] of cases) {
      const res = await validate(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.code).toBe(code);
    }
    const badToken = await validate({ code: offer.code, showId, amount: 1000 }, 'not-a-jwt');
    expect(badToken.status).toBe(401);
    expect(badToken.body.error.code).toBe('UNAUTHENTICATED');
  });
});

describe('limits', () => {
  it('gives the last use of an offer to exactly one of 10 racing bookings', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ kind: 'flat', value: 5000, totalLimit: 1 });
    const users = await Promise.all(Array.from({ length: 10 }, () => newUser(server.api)));
    const seats = ['A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8', 'A9', 'A10'];
    const results = await Promise.all(
      users.map((u, i) => book(u, { showId, seats: [seats[i]], promoCode: offer.code })),
    );
    const winners = results.filter((r) => r.status === 201);
    expect(winners).toHaveLength(1);
    expect(winners[0]!.body.booking.amount).toMatchObject({ subtotal: 30000, discount: 5000, total: 25500 });
    expect(winners[0]!.body.payment.amount).toBe(25500);
    const losers = results.filter((r) => r.status !== 201);
    expect(losers).toHaveLength(9);
    for (const r of losers)
      expect(r.body.error).toMatchObject({ code: 'OFFER_INVALID', details: { reason: 'exhausted' } });
    // The losers' seats, held for the attempt, are back on sale.
    const map = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(map.body.counts).toMatchObject({ held: 1, available: 29 });
    const offers = await server.api('GET', '/api/offers');
    expect(offers.body.offers.map((o: { code: string }) => o.code)).not.toContain(offer.code);
  });

  it('gives a user at most their per-user uses, even when their bookings race', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ perUserLimit: 1, totalLimit: 100 });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const racing = await Promise.all(
      ['A1', 'A2', 'A3', 'A4'].map((seat) => book(alice, { showId, seats: [seat], promoCode: offer.code })),
    );
    expect(racing.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of racing.filter((r) => r.status !== 201))
      expect(r.body.error).toMatchObject({ code: 'OFFER_INVALID', details: { reason: 'user_limit' } });
    expect((await book(bob, { showId, seats: ['B1'], promoCode: offer.code })).status).toBe(201);
    expect(await usedCount(offer.code)).toBe(2);
    // Without the code, alice can still book.
    expect((await book(alice, { showId, seats: ['A5'] })).status).toBe(201);
  });

  it('gives the use back when the payment fails', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ totalLimit: 1 });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const first = await book(alice, { showId, seats: ['A1'], promoCode: offer.code });
    expect(first.status).toBe(201);
    expect((await book(bob, { showId, seats: ['A2'], promoCode: offer.code })).status).toBe(422);
    expect((await pay(alice, first.body.booking.id, DECLINED_CARD)).status).toBe(402);
    expect(await usedCount(offer.code)).toBe(0);
    const second = await book(bob, { showId, seats: ['A2'], promoCode: offer.code });
    expect(second.status).toBe(201);
    expect((await pay(bob, second.body.booking.id)).status).toBe(200);
    expect((await book(alice, { showId, seats: ['A3'], promoCode: offer.code })).status).toBe(422);
  });

  it('gives the use back when a confirmed booking is cancelled', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ totalLimit: 1, perUserLimit: 1 });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const first = await book(alice, { showId, seats: ['A1'], promoCode: offer.code });
    expect((await pay(alice, first.body.booking.id)).status).toBe(200);
    expect((await book(bob, { showId, seats: ['A2'], promoCode: offer.code })).status).toBe(422);
    const cancelled = await server.api('POST', `/api/bookings/${first.body.booking.id}/cancel`, {
      token: alice.token,
    });
    expect(cancelled.status).toBe(200);
    expect(await usedCount(offer.code)).toBe(0);
    expect((await book(bob, { showId, seats: ['A2'], promoCode: offer.code })).status).toBe(201);
    // Alice's own per-user use came back too (the total is now taken by bob).
    const preview = await validate({ code: offer.code, showId, seats: ['A3'] }, alice.token);
    expect(preview.body.error.details.reason).toBe('exhausted');
  });

  it('gives the use back when a pending booking is cancelled or expires', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ totalLimit: 1 });
    const alice = await newUser(server.api);
    const first = await book(alice, { showId, seats: ['A1'], promoCode: offer.code });
    expect(first.status).toBe(201);
    const abandoned = await server.api('POST', `/api/bookings/${first.body.booking.id}/cancel`, {
      token: alice.token,
    });
    expect(abandoned.status).toBe(200);
    expect(await usedCount(offer.code)).toBe(0);

    const second = await book(alice, { showId, seats: ['A2'], promoCode: offer.code });
    expect(second.status).toBe(201);
    expect(await usedCount(offer.code)).toBe(-1);
    clockOffsetMs += (HOLD_TTL_SECONDS + 120) * 1000;
    await server.deps.bookings.expireStale();
    const expired = await server.api('GET', `/api/bookings/${second.body.booking.id}`, {
      token: alice.token,
    });
    expect(expired.body.booking.status).toBe('expired');
    expect(await usedCount(offer.code)).toBe(0);
  });

  it('keeps the discount of a booking paid late only while the offer still grants the use', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ kind: 'flat', value: 5000, totalLimit: 2 });
    const alice = await newUser(server.api);
    const first = await book(alice, { showId, seats: ['A1'], promoCode: offer.code });
    await lapse();
    expect(await usedCount(offer.code)).toBe(0);
    // Alice pays late: her seat is still free and the offer has uses left, so she gets the quoted price.
    const late = await pay(alice, first.body.booking.id);
    expect(late.status).toBe(200);
    expect(late.body.booking).toMatchObject({ status: 'confirmed', amount: { discount: 5000 } });
    expect(await usedCount(offer.code)).toBe(1);
  });

  it('refuses a late payment before charging when the last use went to someone else', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ kind: 'flat', value: 5000, totalLimit: 1 });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const first = await book(alice, { showId, seats: ['A1'], promoCode: offer.code });
    await lapse();
    const second = await book(bob, { showId, seats: ['B1'], promoCode: offer.code });
    expect(second.status).toBe(201);
    const late = await pay(alice, first.body.booking.id);
    expect(late.status).toBe(422);
    expect(late.body.error).toMatchObject({
      code: 'OFFER_INVALID',
      details: { reason: 'exhausted', code: offer.code },
    });
    expect(await bookingStatus(alice, first.body.booking.id)).toBe('expired');
    expect(await intentStatus(first.body.payment.intentId)).toBe('requires_payment');
    expect(await offerUses(offer.id)).toBe(1);
  });

  it('does not let lapsed bookings paid late take a one-use-per-user code three times', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ kind: 'percent', value: 50, perUserLimit: 1 });
    const alice = await newUser(server.api);
    const lapsed: { id: string; intentId: string }[] = [];
    for (const seat of ['C1', 'C2']) {
      const res = await book(alice, { showId, seats: [seat], promoCode: offer.code });
      expect(res.status).toBe(201);
      lapsed.push({ id: res.body.booking.id, intentId: res.body.payment.intentId });
      await lapse();
      expect(await bookingStatus(alice, res.body.booking.id)).toBe('expired');
    }
    const third = await book(alice, { showId, seats: ['C3'], promoCode: offer.code });
    expect(third.status).toBe(201);
    expect((await pay(alice, third.body.booking.id)).status).toBe(200);
    for (const { id, intentId } of lapsed) {
      const late = await pay(alice, id);
      expect(late.status).toBe(422);
      expect(late.body.error).toMatchObject({ code: 'OFFER_INVALID', details: { reason: 'user_limit' } });
      expect(await bookingStatus(alice, id)).toBe('expired');
      expect(await intentStatus(intentId)).toBe('requires_payment');
    }
    expect(await offerUses(offer.id)).toBe(1);
    expect(await usedCount(offer.code)).toBe(1);
  });

  it('refuses a late payment when the offer was withdrawn meanwhile', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ kind: 'flat', value: 5000 });
    const alice = await newUser(server.api);
    const first = await book(alice, { showId, seats: ['B5'], promoCode: offer.code });
    await lapse();
    const withdrawn = await server.api('DELETE', `/api/admin/offers/${offer.id}`, { token: adminToken });
    expect(withdrawn.status).toBe(204);
    const late = await pay(alice, first.body.booking.id);
    expect(late.status).toBe(422);
    expect(late.body.error.details.reason).toBe('withdrawn');
    expect(await intentStatus(first.body.payment.intentId)).toBe('requires_payment');
  });

  it('answers 410 HOLD_EXPIRED to a late payment whose seats are gone, keeps no charge and no use', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await createOffer({ kind: 'flat', value: 5000 });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const first = await book(alice, { showId, seats: ['C9'], promoCode: offer.code });
    await lapse();
    const taken = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['C9'] },
      token: bob.token,
    });
    expect(taken.status).toBe(201);
    const late = await pay(alice, first.body.booking.id);
    expect(late.status).toBe(410);
    expect(late.body.error.code).toBe('HOLD_EXPIRED');
    expect(await intentStatus(first.body.payment.intentId)).toBe('refunded');
    expect(await bookingStatus(alice, first.body.booking.id)).toBe('expired');
    expect(await offerUses(offer.id)).toBe(0);
    expect(await usedCount(offer.code)).toBe(0);
  });
});

describe('guessing promo codes', () => {
  it('answers an anonymous check of a private code exactly as one of a code that does not exist', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const staff = await createOffer({ code: uniqueCode('STAFF'), value: 100, isPublic: false });
    const missing = uniqueCode('STAFF');
    const answer = async (code: string, token?: string) => {
      const res = await validate({ code, showId, amount: 50000 }, token);
      const text = JSON.stringify(res.body).replaceAll(code, '<code>');
      return { status: res.status, body: JSON.parse(text) };
    };
    const privateAnswer = await answer(staff.code);
    expect(privateAnswer.status).toBe(422);
    expect(privateAnswer.body.error).toMatchObject({
      code: 'OFFER_INVALID',
      details: { reason: 'unknown_code' },
    });
    expect(privateAnswer).toEqual(await answer(missing));
    // Signed in, the customer who was given the code can use it.
    const alice = await newUser(server.api);
    const signedIn = await validate({ code: staff.code, showId, amount: 50000 }, alice.token);
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.amount.discount).toBe(50000);
  });

  describe('with OFFER_VALIDATE_MAX_PER_MINUTE=3', () => {
    const PER_MINUTE = 3;
    let limited: TestServer;
    let showId: string;
    beforeAll(async () => {
      limited = await startTestServer({
        ...ADMIN_ENV,
        OFFER_VALIDATE_MAX_PER_MINUTE: String(PER_MINUTE),
        TRUSTED_PROXIES: '127.0.0.1,::1',
      });
      ({ showId } = await createShow(limited.api));
    });
    afterAll(() => limited?.destroy());

    const check = (from: string, token?: string) =>
      limited.api('POST', '/api/offers/validate', {
        body: { code: 'STAFF100', showId, amount: 50000 },
        token,
        headers: { 'x-forwarded-for': from },
      });

    it('limits checks per client address, answering 429 RATE_LIMITED with retry-after', async () => {
      for (let i = 0; i < PER_MINUTE; i++) expect((await check('203.0.113.10')).status).toBe(422);
      const refused = await check('203.0.113.10');
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('RATE_LIMITED');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Another address still has its own budget.
      expect((await check('203.0.113.11')).status).toBe(422);
    });

    it('limits checks per user whatever address they come from', async () => {
      const mallory = await newUser(limited.api);
      for (let i = 0; i < PER_MINUTE; i++)
        expect((await check(`198.51.100.${i}`, mallory.token)).status).toBe(422);
      const refused = await check('198.51.100.99', mallory.token);
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('RATE_LIMITED');
      expect(refused.headers.get('retry-after')).toBeTruthy();
    });
  });
});
