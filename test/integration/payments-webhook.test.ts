/**
 * The provider's webhooks over real HTTP against the real server, with the simulated provider playing
 * the bank: it settles pending UPI and wallet payments and signs the events as Stripe does. A success
 * confirms the booking, a failure releases the seats, a replay changes nothing, and a forged, tampered
 * or stale signature is refused with 400.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimulatedPaymentProvider, signWebhookPayload } from '../../src/payments/simulated-provider.js';
import { ADMIN, ADMIN_ENV, createShow, GOOD_CARD, login, newUser } from '../helpers/catalog.js';
import { bookingEventCount, notificationCount } from '../helpers/records.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const HOLD_TTL_SECONDS = 60;

let server: TestServer;
let adminToken: string;
let clockOffsetMs = 0;
const now = () => Date.now() + clockOffsetMs;

beforeAll(async () => {
  server = await startTestServer({ ...ADMIN_ENV, HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS) }, { now });
  adminToken = await login(server.api, ADMIN.email, ADMIN.password);
});
afterAll(() => server?.destroy());

type User = Awaited<ReturnType<typeof newUser>>;

function bank(): SimulatedPaymentProvider {
  return server.deps.payments as SimulatedPaymentProvider;
}

async function postWebhook(payload: string, signature?: string, header = 'boxoffice-signature') {
  return server.api('POST', '/api/payments/webhook', {
    raw: payload,
    headers: signature === undefined ? {} : { [header]: signature },
  });
}

async function seatStatuses(showId: string): Promise<Record<string, string>> {
  const res = await server.api('GET', `/api/shows/${showId}/seats`);
  return Object.fromEntries(res.body.seats.map((s: { id: string; status: string }) => [s.id, s.status]));
}

async function expectSeats(showId: string, seats: string[], status: string) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const map = await seatStatuses(showId);
    const actual = Object.fromEntries(seats.map((s) => [s, map[s]]));
    if (seats.every((s) => map[s] === status) || Date.now() > deadline) {
      expect(actual).toEqual(Object.fromEntries(seats.map((s) => [s, status])));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function getBooking(user: User, id: string) {
  const res = await server.api('GET', `/api/bookings/${id}`, { token: user.token });
  expect(res.status).toBe(200);
  return res.body.booking;
}

function eventCount(bookingId: string, status: string): Promise<number> {
  return bookingEventCount(server.deps.store, bookingId, status);
}

/** A booking paid with a method the provider leaves processing: its outcome arrives by webhook. */
async function pendingBooking(user: User, showId: string, seats: string[], method: 'upi' | 'wallet' = 'upi') {
  const created = await server.api('POST', '/api/bookings', {
    body: { showId, seats, paymentMethod: method },
    token: user.token,
  });
  expect(created.status).toBe(201);
  const proof = method === 'upi' ? { upiId: 'pending@upi' } : { walletId: 'wallet_pending' };
  const paid = await server.api('POST', '/api/payments', {
    body: { bookingId: created.body.booking.id, method, ...proof },
    token: user.token,
  });
  expect(paid.status).toBe(202);
  expect(paid.body.booking.status).toBe('pending_payment');
  expect(paid.body.payment.status).toBe('processing');
  return {
    booking: created.body.booking as { id: string },
    intentId: created.body.payment.intentId as string,
  };
}

describe('a payment completed by webhook', () => {
  it('confirms a pending@upi booking, and a replay of the webhook changes nothing', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking, intentId } = await pendingBooking(alice, showId, ['A1', 'A2']);
    await expectSeats(showId, ['A1', 'A2'], 'held');

    const { payload, signature } = await bank().settle(intentId, 'succeeded');
    const delivered = await postWebhook(payload, signature);
    expect(delivered.status).toBe(200);
    const confirmed = await getBooking(alice, booking.id);
    expect(confirmed).toMatchObject({ status: 'confirmed', seats: ['A1', 'A2'] });
    expect(confirmed.ticket.code).toEqual(expect.any(String));
    await expectSeats(showId, ['A1', 'A2'], 'booked');

    // Providers deliver at least once: replays, some of them at the same time.
    const replays = await Promise.all(Array.from({ length: 5 }, () => postWebhook(payload, signature)));
    for (const r of replays) expect(r.status).toBe(200);
    const after = await getBooking(alice, booking.id);
    expect(after).toEqual(confirmed);
    expect(await eventCount(booking.id, 'confirmed')).toBe(1);
    const map = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(map.body.counts).toMatchObject({ booked: 2, held: 0 });
    expect(await notificationCount(server.deps.store, booking.id, 'booking_confirmed')).toBe(2);
  });

  it('fails a pending wallet booking and releases its seats; a replay changes nothing', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking, intentId } = await pendingBooking(alice, showId, ['B1'], 'wallet');
    const { payload, signature } = await bank().settle(intentId, 'failed', 'insufficient_funds');
    expect((await postWebhook(payload, signature)).status).toBe(200);
    expect((await getBooking(alice, booking.id)).status).toBe('failed');
    await expectSeats(showId, ['B1'], 'available');
    const bob = await newUser(server.api);
    const taken = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['B1'] },
      token: bob.token,
    });
    expect(taken.status).toBe(201);
    expect((await postWebhook(payload, signature)).status).toBe(200);
    expect((await getBooking(alice, booking.id)).status).toBe('failed');
    await expectSeats(showId, ['B1'], 'held');
  });

  it('accepts the success webhook of a card payment the client already confirmed, idempotently', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const created = await server.api('POST', '/api/bookings', {
      body: { showId, seats: ['C1'], paymentMethod: 'card' },
      token: alice.token,
    });
    const paid = await server.api('POST', '/api/payments', {
      body: { bookingId: created.body.booking.id, method: 'card', card: GOOD_CARD },
      token: alice.token,
    });
    expect(paid.status).toBe(200);
    const { payload, signature } = await bank().webhookFor(created.body.payment.intentId);
    expect((await postWebhook(payload, signature, 'stripe-signature')).status).toBe(200);
    expect(await getBooking(alice, created.body.booking.id)).toEqual(paid.body.booking);
    expect(await eventCount(created.body.booking.id, 'confirmed')).toBe(1);

    // The refund of a cancellation is reported too; the booking stays cancelled.
    const cancelled = await server.api('POST', `/api/bookings/${created.body.booking.id}/cancel`, {
      token: alice.token,
    });
    expect(cancelled.status).toBe(200);
    const refund = await bank().webhookFor(created.body.payment.intentId);
    expect(JSON.parse(refund.payload).type).toBe('charge.refunded');
    expect((await postWebhook(refund.payload, refund.signature)).status).toBe(200);
    // A late replay of the success webhook does not bring the cancelled booking back.
    expect((await postWebhook(payload, signature)).status).toBe(200);
    expect((await getBooking(alice, created.body.booking.id)).status).toBe('cancelled');
    await expectSeats(showId, ['C1'], 'available');
  });
});

describe('a webhook after the hold lapsed', () => {
  it('re-holds and confirms when the seats are still free', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking, intentId } = await pendingBooking(alice, showId, ['A5']);
    clockOffsetMs += (HOLD_TTL_SECONDS + 5) * 1000;
    await expectSeats(showId, ['A5'], 'available');
    const { payload, signature } = await bank().settle(intentId, 'succeeded');
    expect((await postWebhook(payload, signature)).status).toBe(200);
    expect((await getBooking(alice, booking.id)).status).toBe('confirmed');
    await expectSeats(showId, ['A5'], 'booked');
  });

  it('refunds when someone else took the seats, and a replay never books them without money', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const { booking, intentId } = await pendingBooking(alice, showId, ['A7', 'A8']);
    clockOffsetMs += (HOLD_TTL_SECONDS + 5) * 1000;
    const bobs = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A8'] },
      token: bob.token,
    });
    expect(bobs.status).toBe(201);
    const { payload, signature } = await bank().settle(intentId, 'succeeded');
    expect((await postWebhook(payload, signature)).status).toBe(200);
    const lost = await getBooking(alice, booking.id);
    expect(lost.status).toBe('expired');
    expect(lost.ticket).toBeUndefined();
    expect(await bank().retrieve(intentId)).toMatchObject({ ok: true, status: 'refunded' });
    expect(await eventCount(booking.id, 'refunded')).toBe(1);

    // Bob lets go; the replayed success webhook must not book the seats for a refunded payment.
    expect((await server.api('DELETE', `/api/holds/${bobs.body.hold.id}`, { token: bob.token })).status).toBe(
      204,
    );
    expect((await postWebhook(payload, signature)).status).toBe(200);
    expect((await getBooking(alice, booking.id)).status).toBe('expired');
    await expectSeats(showId, ['A7', 'A8'], 'available');
    expect(await eventCount(booking.id, 'refunded')).toBe(1);
    // Nor does the customer paying again.
    const retry = await server.api('POST', '/api/payments', {
      body: { bookingId: booking.id, method: 'upi', upiId: 'success@upi' },
      token: alice.token,
    });
    expect(retry.status).toBe(410);
    await expectSeats(showId, ['A7', 'A8'], 'available');
  });
});

describe('a webhook for a lapsed booking with a promo code', () => {
  it('refunds instead of confirming when the last use of the code went to someone else meanwhile', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const offer = await server.api('POST', '/api/admin/offers', {
      token: adminToken,
      body: {
        code: `LAST${Math.random().toString(36).slice(2, 8).toUpperCase()}`,
        kind: 'flat',
        value: 5000,
        totalLimit: 1,
        validFrom: new Date(now() - 86_400_000).toISOString(),
        validUntil: new Date(now() + 7 * 86_400_000).toISOString(),
      },
    });
    expect(offer.status).toBe(201);
    const { code, id: offerId } = offer.body.offer;
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    const created = await server.api('POST', '/api/bookings', {
      body: { showId, seats: ['C5'], paymentMethod: 'upi', promoCode: code },
      token: alice.token,
    });
    expect(created.status).toBe(201);
    const paying = await server.api('POST', '/api/payments', {
      body: { bookingId: created.body.booking.id, method: 'upi', upiId: 'pending@upi' },
      token: alice.token,
    });
    expect(paying.status).toBe(202);
    clockOffsetMs += (HOLD_TTL_SECONDS + 120) * 1000;
    await server.deps.bookings.expireStale();
    expect((await getBooking(alice, created.body.booking.id)).status).toBe('expired');
    const bobs = await server.api('POST', '/api/bookings', {
      body: { showId, seats: ['C6'], paymentMethod: 'card', promoCode: code },
      token: bob.token,
    });
    expect(bobs.status).toBe(201);

    const { payload, signature } = await bank().settle(created.body.payment.intentId, 'succeeded');
    expect((await postWebhook(payload, signature)).status).toBe(200);
    expect((await getBooking(alice, created.body.booking.id)).status).toBe('expired');
    expect(await bank().retrieve(created.body.payment.intentId)).toMatchObject({
      ok: true,
      status: 'refunded',
    });
    const uses = await server.deps.store.all<{ user_id: string }>(
      'SELECT user_id FROM offer_uses WHERE offer_id = ?',
      [offerId],
    );
    expect(uses.map((u) => u.user_id)).toEqual([bob.user.id]);
    await expectSeats(showId, ['C5'], 'available');
  });
});

describe('webhook signatures', () => {
  it('refuses a forged, tampered, stale or missing signature with 400 and changes nothing', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking, intentId } = await pendingBooking(alice, showId, ['B5']);
    const { payload, signature } = await bank().settle(intentId, 'succeeded');
    const nowSeconds = Math.floor(Date.now() / 1000);
    const stale = await bank().webhookFor(intentId, nowSeconds - 600);
    const fromTheFuture = await bank().webhookFor(intentId, nowSeconds + 600);
    const tamperedPayload = payload.replace(intentId, `${intentId}x`);
    const cases: [string, string, string | undefined][] = [
      ['forged', payload, signWebhookPayload(payload, 'whsec_not_the_secret', nowSeconds)],
      ['tampered', tamperedPayload, signature],
      ['stale', stale.payload, stale.signature],
      ['future', fromTheFuture.payload, fromTheFuture.signature],
      ['missing', payload, undefined],
      ['malformed', payload, 'v1=deadbeef'],
      ['not json', 'not json', bank().signWebhook('not json')],
      ['not an event', '{"hello":1}', bank().signWebhook('{"hello":1}')],
    ];
    for (const [name, body, sig] of cases) {
      const res = await postWebhook(body, sig);
      expect(res.status, name).toBe(400);
      expect(res.body.error.code, name).toBe('INVALID_SIGNATURE');
      expect(res.body.error.message).toEqual(expect.any(String));
    }
    expect((await getBooking(alice, booking.id)).status).toBe('pending_payment');
    await expectSeats(showId, ['B5'], 'held');
    // The genuine delivery still works afterwards.
    expect((await postWebhook(payload, signature)).status).toBe(200);
    expect((await getBooking(alice, booking.id)).status).toBe('confirmed');
  });

  it('acknowledges events for unknown intents and kinds the saga ignores', async () => {
    const unknown = JSON.stringify({
      id: 'evt_unknown',
      object: 'event',
      type: 'payment_intent.succeeded',
      data: { object: { id: 'pi_sim_nope', object: 'payment_intent' } },
    });
    expect((await postWebhook(unknown, bank().signWebhook(unknown))).status).toBe(200);
    const ignored = JSON.stringify({
      id: 'evt_created',
      object: 'event',
      type: 'customer.created',
      data: { object: { id: 'cus_1', object: 'customer' } },
    });
    const res = await postWebhook(ignored, bank().signWebhook(ignored));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: true });
  });
});

/**
 * A small stand-in for Stripe's API on 127.0.0.1: PaymentIntents (create, confirm with a test
 * PaymentMethod, retrieve), refunds, idempotent replays by Idempotency-Key, in Stripe's JSON shapes. The
 * adapter's own unit tests cover the API in depth; here it lets the whole server run with
 * PAYMENT_PROVIDER=stripe.
 */
interface StandInIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  currency: string | null;
  status: string;
  client_secret: string;
  metadata: Record<string, string | null>;
  last_payment_error: unknown;
  payment_method: string | null;
}

class StripeStandIn {
  readonly intents = new Map<string, StandInIntent>();
  readonly refunds: { intentId: string; idempotencyKey: string | undefined }[] = [];
  readonly #replies = new Map<string, { status: number; body: unknown }>();
  #counter = 0;
  #server?: http.Server;
  url = '';

  async start(): Promise<void> {
    this.#server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk) => {
        raw += chunk;
      });
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const params = req.method === 'GET' ? url.searchParams : new URLSearchParams(raw);
        const key = req.headers['idempotency-key'] as string | undefined;
        const replayKey = key && req.method === 'POST' ? `${url.pathname} ${key}` : undefined;
        const reply =
          (replayKey && this.#replies.get(replayKey)) ||
          this.#handle(req.method ?? '', url.pathname, params, key);
        if (replayKey) this.#replies.set(replayKey, reply);
        res.writeHead(reply.status, {
          'content-type': 'application/json',
          'request-id': `req_${++this.#counter}`,
        });
        res.end(JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server!.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /** What Stripe.js does in the customer's browser with the client secret: the intent succeeds. */
  payInBrowser(intentId: string): StandInIntent {
    const intent = this.intents.get(intentId)!;
    intent.status = 'succeeded';
    intent.payment_method = 'pm_card_visa';
    return intent;
  }

  #handle(method: string, path: string, params: URLSearchParams, key: string | undefined) {
    if (method === 'POST' && path === '/v1/payment_intents') {
      const id = `pi_${++this.#counter}standin`;
      const intent: StandInIntent = {
        id,
        object: 'payment_intent',
        amount: Number(params.get('amount')),
        currency: params.get('currency'),
        status: 'requires_payment_method',
        client_secret: `${id}_secret_${this.#counter}`,
        metadata: { bookingId: params.get('metadata[bookingId]') },
        last_payment_error: null,
        payment_method: null,
      };
      this.intents.set(id, intent);
      return { status: 200, body: intent };
    }
    const match = /^\/v1\/payment_intents\/([^/]+)(\/confirm)?$/.exec(path);
    const intent = match && this.intents.get(match[1]!);
    if (match && !intent)
      return stripeError(404, 'invalid_request_error', 'resource_missing', 'No such payment_intent');
    if (intent && method === 'GET') return { status: 200, body: withMethod(intent) };
    if (intent && method === 'POST' && match?.[2]) {
      if (intent.status !== 'requires_payment_method')
        return stripeError(
          400,
          'invalid_request_error',
          'payment_intent_unexpected_state',
          'unexpected state',
        );
      const pm = params.get('payment_method');
      if (pm !== 'pm_card_visa' && pm !== 'pm_card_chargeDeclined')
        return stripeError(
          400,
          'invalid_request_error',
          'resource_missing',
          'No such PaymentMethod',
          'payment_method',
        );
      intent.payment_method = pm;
      if (pm === 'pm_card_chargeDeclined') {
        intent.last_payment_error = {
          type: 'card_error',
          code: 'card_declined',
          decline_code: 'generic_decline',
        };
        return {
          status: 402,
          body: {
            error: {
              type: 'card_error',
              code: 'card_declined',
              decline_code: 'generic_decline',
              message: 'Your card was declined.',
              payment_intent: withMethod(intent),
            },
          },
        };
      }
      intent.status = 'succeeded';
      return { status: 200, body: withMethod(intent) };
    }
    if (method === 'POST' && path === '/v1/refunds') {
      const refunded = this.intents.get(params.get('payment_intent') ?? '');
      if (refunded?.status !== 'succeeded')
        return stripeError(400, 'invalid_request_error', 'charge_not_refundable', 'nothing to refund');
      this.refunds.push({ intentId: refunded.id, idempotencyKey: key });
      return {
        status: 200,
        body: { id: `re_${++this.#counter}`, object: 'refund', amount: refunded.amount, status: 'succeeded' },
      };
    }
    return stripeError(
      404,
      'invalid_request_error',
      undefined,
      `Unrecognized request URL (${method}: ${path})`,
    );
  }
}

function withMethod(intent: StandInIntent) {
  const pm = intent.payment_method;
  const last4 = pm === 'pm_card_visa' ? '4242' : '0002';
  return {
    ...intent,
    payment_method: pm && { id: pm, object: 'payment_method', type: 'card', card: { brand: 'visa', last4 } },
  };
}

function stripeError(
  status: number,
  type: string,
  code: string | undefined,
  message: string,
  param?: string,
) {
  return {
    status,
    body: { error: { type, message, ...(code ? { code } : {}), ...(param ? { param } : {}) } },
  };
}

describe('with PAYMENT_PROVIDER=stripe', () => {
  const WEBHOOK_SECRET = 'whsec_boxoffice_integration';
  const stripe = new StripeStandIn();
  let stripeServer: TestServer;

  beforeAll(async () => {
    await stripe.start();
    stripeServer = await startTestServer({
      ...ADMIN_ENV,
      PAYMENT_PROVIDER: 'stripe',
      STRIPE_SECRET_KEY: 'sk_test_boxoffice_integration',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_BASE: stripe.url,
    });
  });
  afterAll(async () => {
    await stripeServer?.destroy();
    await stripe.stop();
  });

  function stripeEvent(type: string, object: unknown, timestamp?: number) {
    const payload = JSON.stringify({
      id: `evt_${Math.random().toString(36).slice(2)}`,
      object: 'event',
      type,
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      data: { object },
    });
    const signature = Stripe.webhooks.generateTestHeaderString({
      payload,
      secret: WEBHOOK_SECRET,
      ...(timestamp ? { timestamp } : {}),
    });
    return { payload, signature };
  }

  async function deliver(event: { payload: string; signature: string }) {
    return stripeServer.api('POST', '/api/payments/webhook', {
      raw: event.payload,
      headers: { 'stripe-signature': event.signature },
    });
  }

  async function stripeBooking(user: User, showId: string, seats: string[]) {
    const res = await stripeServer.api('POST', '/api/bookings', {
      body: { showId, seats, paymentMethod: 'card' },
      token: user.token,
    });
    expect(res.status).toBe(201);
    return res.body as {
      booking: { id: string };
      payment: { provider: string; intentId: string; clientSecret: string };
    };
  }

  async function statusOfSeats(showId: string) {
    const res = await stripeServer.api('GET', `/api/shows/${showId}/seats`);
    return Object.fromEntries(res.body.seats.map((s: { id: string; status: string }) => [s.id, s.status]));
  }

  it('confirms a booking the browser paid when payment_intent.succeeded arrives, once', async () => {
    const admin = await login(stripeServer.api, ADMIN.email, ADMIN.password);
    const { showId } = await createShow(stripeServer.api, { adminToken: admin });
    const alice = await newUser(stripeServer.api);
    const { booking, payment } = await stripeBooking(alice, showId, ['A1', 'A2']);
    expect(payment.provider).toBe('stripe');
    expect(payment.clientSecret).toMatch(/_secret_/);
    expect(stripe.intents.get(payment.intentId)).toMatchObject({ amount: 61200, currency: 'inr' });

    const event = stripeEvent('payment_intent.succeeded', stripe.payInBrowser(payment.intentId));
    const forged = {
      payload: event.payload,
      signature: event.signature.replace(/v1=[0-9a-f]{4}/, 'v1=0000'),
    };
    const stale = stripeEvent(
      'payment_intent.succeeded',
      stripe.intents.get(payment.intentId),
      Math.floor(Date.now() / 1000) - 3600,
    );
    for (const bad of [forged, stale, { payload: event.payload, signature: '' }]) {
      const res = await deliver(bad);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_SIGNATURE');
    }
    const pending = await stripeServer.api('GET', `/api/bookings/${booking.id}`, { token: alice.token });
    expect(pending.body.booking.status).toBe('pending_payment');

    expect((await deliver(event)).status).toBe(200);
    const confirmed = await stripeServer.api('GET', `/api/bookings/${booking.id}`, { token: alice.token });
    expect(confirmed.body.booking).toMatchObject({ status: 'confirmed', seats: ['A1', 'A2'] });
    expect(confirmed.body.booking.ticket.code).toEqual(expect.any(String));
    expect((await deliver(event)).status).toBe(200);
    const again = await stripeServer.api('GET', `/api/bookings/${booking.id}`, { token: alice.token });
    expect(again.body.booking).toEqual(confirmed.body.booking);
    const seats = await statusOfSeats(showId);
    expect([seats.A1, seats.A2]).toEqual(['booked', 'booked']);
  });

  it('pays server-side with a PaymentMethod id, refunds on cancel, and releases seats on a decline', async () => {
    const admin = await login(stripeServer.api, ADMIN.email, ADMIN.password);
    const { showId } = await createShow(stripeServer.api, { adminToken: admin });
    const alice = await newUser(stripeServer.api);
    const { booking, payment } = await stripeBooking(alice, showId, ['B1']);
    const withCard = await stripeServer.api('POST', '/api/payments', {
      body: { bookingId: booking.id, method: 'card', card: GOOD_CARD },
      token: alice.token,
    });
    expect(withCard.status).toBe(400);
    const paid = await stripeServer.api('POST', '/api/payments', {
      body: { bookingId: booking.id, method: 'card', paymentMethodId: 'pm_card_visa' },
      token: alice.token,
    });
    expect(paid.status).toBe(200);
    expect(paid.body.booking.status).toBe('confirmed');
    expect(
      await stripeServer.deps.store.get('SELECT card_brand, card_last4 FROM payments WHERE booking_id = ?', [
        booking.id,
      ]),
    ).toEqual({ card_brand: 'visa', card_last4: '4242' });
    const cancelled = await stripeServer.api('POST', `/api/bookings/${booking.id}/cancel`, {
      token: alice.token,
    });
    expect(cancelled.status).toBe(200);
    expect(stripe.refunds).toContainEqual({
      intentId: payment.intentId,
      idempotencyKey: `refund-${booking.id}`,
    });
    expect((await statusOfSeats(showId)).B1).toBe('available');

    const declined = await stripeBooking(alice, showId, ['B2']);
    const refused = await stripeServer.api('POST', '/api/payments', {
      body: { bookingId: declined.booking.id, method: 'card', paymentMethodId: 'pm_card_chargeDeclined' },
      token: alice.token,
    });
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe('PAYMENT_FAILED');
    expect((await statusOfSeats(showId)).B2).toBe('available');
  });

  it('fails the booking and releases its seats on payment_intent.payment_failed', async () => {
    const admin = await login(stripeServer.api, ADMIN.email, ADMIN.password);
    const { showId } = await createShow(stripeServer.api, { adminToken: admin });
    const alice = await newUser(stripeServer.api);
    const { booking, payment } = await stripeBooking(alice, showId, ['C3']);
    const intent = {
      ...stripe.intents.get(payment.intentId),
      last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds' },
    };
    expect((await deliver(stripeEvent('payment_intent.payment_failed', intent))).status).toBe(200);
    const failed = await stripeServer.api('GET', `/api/bookings/${booking.id}`, { token: alice.token });
    expect(failed.body.booking.status).toBe('failed');
    expect((await statusOfSeats(showId)).C3).toBe('available');
  });
});

describe('a payment that completes after its show was cancelled', () => {
  async function cancelShow(showId: string) {
    expect((await server.api('DELETE', `/api/admin/shows/${showId}`, { token: adminToken })).status).toBe(
      204,
    );
    await server.deps.bookings.settleCancelledShows();
  }

  it('is refunded when its webhook arrives, and books nothing', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking, intentId } = await pendingBooking(alice, showId, ['C1', 'C2']);
    await cancelShow(showId);
    expect((await getBooking(alice, booking.id)).status).toBe('failed');
    const { payload, signature } = await bank().settle(intentId, 'succeeded');
    expect((await postWebhook(payload, signature)).status).toBe(200);
    const after = await getBooking(alice, booking.id);
    expect(after.status).toBe('failed');
    expect(after.ticket).toBeUndefined();
    expect(await bank().retrieve(intentId)).toMatchObject({ status: 'refunded' });
    expect(await eventCount(booking.id, 'confirmed')).toBe(0);
    expect(await eventCount(booking.id, 'refunded')).toBe(1);
    expect(await notificationCount(server.deps.store, booking.id, 'booking_confirmed')).toBe(0);
  });

  it('is refunded by reconciliation at start when its webhook was lost', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const alice = await newUser(server.api);
    const { booking, intentId } = await pendingBooking(alice, showId, ['C3']);
    await cancelShow(showId);
    await bank().settle(intentId, 'succeeded'); // the bank captured it; its webhook never arrives
    const reconciled = await server.deps.bookings.reconcile();
    expect(reconciled.settled).toBe(0);
    expect(await bank().retrieve(intentId)).toMatchObject({ status: 'refunded' });
    expect((await getBooking(alice, booking.id)).status).toBe('failed');
    expect(
      await server.deps.store.get('SELECT status FROM payments WHERE booking_id = ?', [booking.id]),
    ).toEqual({ status: 'refunded' });
  });
});
