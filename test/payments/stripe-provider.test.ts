/**
 * The Stripe adapter through the real `stripe` client, against a local stand-in for Stripe's API on
 * 127.0.0.1 that answers the calls we make with Stripe's JSON shapes (PaymentIntent, Refund, errors),
 * replays idempotent requests, and webhooks signed by the stripe package's own test signer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StripePaymentProvider, statusOf, stripeEndpoint } from '../../src/payments/stripe-provider.js';

const SECRET_KEY = 'sk_test_boxoffice_local';
const WEBHOOK_SECRET = 'whsec_boxoffice_local';

interface Recorded {
  method: string;
  path: string;
  params: URLSearchParams;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
}

/** Stripe's test PaymentMethods: what each one does at confirmation. */
const TEST_METHODS: Record<
  string,
  { brand: string; last4: string; decline?: { code: string; decline_code: string } }
> = {
  pm_card_visa: { brand: 'visa', last4: '4242' },
  pm_card_mastercard: { brand: 'mastercard', last4: '4444' },
  pm_card_chargeDeclined: {
    brand: 'visa',
    last4: '0002',
    decline: { code: 'card_declined', decline_code: 'generic_decline' },
  },
  pm_card_chargeDeclinedInsufficientFunds: {
    brand: 'visa',
    last4: '9995',
    decline: { code: 'card_declined', decline_code: 'insufficient_funds' },
  },
};

/** The fields of a PaymentIntent the stand-in changes; the rest are passed through as created. */
interface FakeIntent {
  id: string;
  amount: number;
  currency: string | null;
  status: string;
  amount_received: number;
  latest_charge: string | null;
  payment_method: string | null;
  last_payment_error: unknown;
  refunded?: boolean;
  [field: string]: unknown;
}

class FakeStripe {
  readonly intents = new Map<string, FakeIntent>();
  readonly requests: Recorded[] = [];
  readonly #replies = new Map<string, { status: number; body: unknown }>();
  #counter = 0;
  server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const params = req.method === 'GET' ? url.searchParams : new URLSearchParams(body);
        const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
        this.requests.push({
          method: req.method ?? '',
          path: url.pathname,
          params,
          idempotencyKey,
          authorization: req.headers.authorization,
        });
        const replayKey =
          idempotencyKey && req.method === 'POST' ? `${url.pathname} ${idempotencyKey}` : undefined;
        const reply =
          (replayKey && this.#replies.get(replayKey)) || this.#handle(req.method ?? '', url.pathname, params);
        if (replayKey && reply.status !== 500) this.#replies.set(replayKey, reply);
        res.writeHead(reply.status, {
          'content-type': 'application/json',
          'request-id': `req_${++this.#counter}`,
        });
        res.end(JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The PaymentIntent object as Stripe returns it, `payment_method` expanded when asked. */
  view(intent: FakeIntent, params: URLSearchParams) {
    const expand = [...params.entries()].filter(([k]) => k.startsWith('expand[')).map(([, v]) => v);
    const method = intent.payment_method;
    return {
      ...intent,
      payment_method: method && expand.includes('payment_method') ? paymentMethodObject(method) : method,
    };
  }

  #handle(method: string, path: string, params: URLSearchParams): { status: number; body: unknown } {
    if (method === 'POST' && path === '/v1/payment_intents') {
      const id = `pi_${++this.#counter}${'x'.repeat(8)}`;
      const types = [...params.entries()]
        .filter(([k]) => k.startsWith('allowed_payment_method_types['))
        .map(([, v]) => v);
      const intent: FakeIntent = {
        id,
        object: 'payment_intent',
        amount: Number(params.get('amount')),
        amount_received: 0,
        currency: params.get('currency'),
        status: 'requires_payment_method',
        client_secret: `${id}_secret_${this.#counter}`,
        created: Math.floor(Date.now() / 1000),
        livemode: false,
        capture_method: 'automatic',
        confirmation_method: 'automatic',
        description: params.get('description'),
        metadata: { bookingId: params.get('metadata[bookingId]'), method: params.get('metadata[method]') },
        allowed_payment_method_types: types,
        payment_method_types: types,
        last_payment_error: null,
        latest_charge: null,
        payment_method: null,
        next_action: null,
      };
      this.intents.set(id, intent);
      return { status: 200, body: intent };
    }
    const match = /^\/v1\/payment_intents\/([^/]+)(\/confirm)?$/.exec(path);
    if (match) {
      const intent = this.intents.get(match[1]!);
      if (!intent) return missing(`No such payment_intent: '${match[1]}'`);
      if (method === 'GET') return { status: 200, body: this.view(intent, params) };
      if (method === 'POST' && match[2]) return this.#confirm(intent, params);
    }
    if (method === 'POST' && path === '/v1/refunds') {
      const intent = this.intents.get(params.get('payment_intent') ?? '');
      if (!intent)
        return missing(`No such payment_intent: '${params.get('payment_intent')}'`, 'payment_intent');
      if (intent.status !== 'succeeded')
        return invalid(
          'charge_not_refundable',
          'This PaymentIntent does not have a successful charge to refund.',
        );
      if (intent.refunded)
        return invalid(
          'charge_already_refunded',
          `Charge ${intent.latest_charge} has already been refunded.`,
        );
      intent.refunded = true;
      return {
        status: 200,
        body: {
          id: `re_${++this.#counter}`,
          object: 'refund',
          amount: intent.amount,
          currency: intent.currency,
          charge: intent.latest_charge,
          payment_intent: intent.id,
          reason: params.get('reason'),
          status: 'succeeded',
          created: Math.floor(Date.now() / 1000),
          metadata: {},
        },
      };
    }
    return {
      status: 404,
      body: {
        error: { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path})` },
      },
    };
  }

  #confirm(intent: FakeIntent, params: URLSearchParams) {
    if (intent.status !== 'requires_payment_method' && intent.status !== 'requires_confirmation')
      return invalid(
        'payment_intent_unexpected_state',
        `You cannot confirm this PaymentIntent because it has a status of ${intent.status}.`,
        this.view(intent, params),
      );
    const pm = params.get('payment_method') ?? '';
    const card = TEST_METHODS[pm];
    if (!card) return missing(`No such PaymentMethod: '${pm}'`, 'payment_method');
    intent.payment_method = pm;
    intent.latest_charge = `ch_${++this.#counter}`;
    if (card.decline) {
      intent.status = 'requires_payment_method';
      intent.last_payment_error = {
        type: 'card_error',
        ...card.decline,
        message: 'Your card was declined.',
        charge: intent.latest_charge,
        payment_method: paymentMethodObject(pm),
      };
      return {
        status: 402,
        body: {
          error: {
            type: 'card_error',
            ...card.decline,
            message: 'Your card was declined.',
            charge: intent.latest_charge,
            payment_intent: this.view(intent, new URLSearchParams()),
            payment_method: paymentMethodObject(pm),
          },
        },
      };
    }
    intent.status = 'succeeded';
    intent.amount_received = intent.amount;
    intent.last_payment_error = null;
    return { status: 200, body: this.view(intent, params) };
  }
}

function paymentMethodObject(id: string) {
  const card = TEST_METHODS[id];
  return {
    id,
    object: 'payment_method',
    type: 'card',
    card: card
      ? {
          brand: card.brand,
          last4: card.last4,
          exp_month: 12,
          exp_year: 2034,
          funding: 'credit',
          country: 'US',
        }
      : null,
  };
}

function missing(message: string, param?: string) {
  return {
    status: 404,
    body: {
      error: {
        type: 'invalid_request_error',
        code: 'resource_missing',
        message,
        ...(param ? { param } : {}),
      },
    },
  };
}

function invalid(code: string, message: string, paymentIntent?: unknown) {
  return {
    status: 400,
    body: {
      error: {
        type: 'invalid_request_error',
        code,
        message,
        ...(paymentIntent ? { payment_intent: paymentIntent } : {}),
      },
    },
  };
}

const stripe = new FakeStripe();
let provider: StripePaymentProvider;

beforeAll(async () => {
  await stripe.start();
  provider = new StripePaymentProvider({
    secretKey: SECRET_KEY,
    webhookSecret: WEBHOOK_SECRET,
    apiBase: stripe.url,
    maxNetworkRetries: 0,
  });
});
afterAll(() => stripe.stop());
beforeEach(() => {
  stripe.requests.length = 0;
});

let sequence = 0;
async function newIntent(method: 'card' | 'upi' | 'wallet' = 'card') {
  const bookingId = `bkg_stripe_${++sequence}`;
  const intent = await provider.createIntent({
    amountMinor: 61200,
    currency: 'INR',
    method,
    bookingId,
    idempotencyKey: `intent-${bookingId}`,
  });
  if (!intent.ok) throw new Error(intent.message);
  return { ...intent, bookingId };
}

describe('creating payment intents', () => {
  it('creates a PaymentIntent with amount, currency, method, booking metadata and our idempotency key', async () => {
    const intent = await newIntent();
    expect(intent).toMatchObject({ ok: true, provider: 'stripe', status: 'requires_payment' });
    expect(intent.clientSecret).toMatch(new RegExp(`^${intent.intentId}_secret_`));
    const [request] = stripe.requests;
    expect(request).toMatchObject({
      method: 'POST',
      path: '/v1/payment_intents',
      idempotencyKey: `intent-${intent.bookingId}`,
    });
    expect(request!.authorization).toBe(`Bearer ${SECRET_KEY}`);
    expect(request!.params.get('amount')).toBe('61200');
    expect(request!.params.get('currency')).toBe('inr');
    expect(request!.params.get('allowed_payment_method_types[0]')).toBe('card');
    expect(request!.params.get('metadata[bookingId]')).toBe(intent.bookingId);
  });

  it('returns the same intent when the same idempotency key is sent again', async () => {
    const input = {
      amountMinor: 500,
      currency: 'INR',
      method: 'card' as const,
      bookingId: 'bkg_same',
      idempotencyKey: 'intent-bkg_same',
    };
    const first = await provider.createIntent(input);
    const second = await provider.createIntent(input);
    expect(first.ok && second.ok && second.intentId === first.intentId).toBe(true);
  });

  it('asks for UPI for a UPI booking, and for cards (where Apple and Google Pay live) for a wallet', async () => {
    await newIntent('upi');
    await newIntent('wallet');
    expect(stripe.requests.map((r) => r.params.get('allowed_payment_method_types[0]'))).toEqual([
      'upi',
      'card',
    ]);
  });

  it('reports PROVIDER_UNAVAILABLE when Stripe cannot be reached', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = new StripePaymentProvider({
      secretKey: SECRET_KEY,
      webhookSecret: WEBHOOK_SECRET,
      apiBase: `http://127.0.0.1:${port}`,
      maxNetworkRetries: 0,
    });
    expect(
      await unreachable.createIntent({
        amountMinor: 100,
        currency: 'INR',
        method: 'card',
        bookingId: 'b',
        idempotencyKey: 'k',
      }),
    ).toMatchObject({ ok: false, code: 'PROVIDER_UNAVAILABLE' });
  });
});

describe('confirming', () => {
  it('succeeds with pm_card_visa and reads brand and last four from the PaymentMethod', async () => {
    const { intentId } = await newIntent();
    const state = await provider.confirm({
      intentId,
      method: 'card',
      paymentMethodId: 'pm_card_visa',
      idempotencyKey: 'confirm-1',
    });
    expect(state).toEqual({
      ok: true,
      intentId,
      status: 'succeeded',
      amountMinor: 61200,
      currency: 'INR',
      cardBrand: 'visa',
      cardLast4: '4242',
    });
    const request = stripe.requests.at(-1)!;
    expect(request).toMatchObject({
      path: `/v1/payment_intents/${intentId}/confirm`,
      idempotencyKey: 'confirm-1',
    });
    expect(request.params.get('payment_method')).toBe('pm_card_visa');
  });

  it('turns a card decline (402) into a failed intent with the decline code', async () => {
    const declined = await newIntent();
    expect(
      await provider.confirm({
        intentId: declined.intentId,
        method: 'card',
        paymentMethodId: 'pm_card_chargeDeclined',
        idempotencyKey: 'confirm-2',
      }),
    ).toMatchObject({ ok: true, status: 'failed', failureReason: 'generic_decline', cardLast4: '0002' });
    const poor = await newIntent();
    expect(
      await provider.confirm({
        intentId: poor.intentId,
        method: 'card',
        paymentMethodId: 'pm_card_chargeDeclinedInsufficientFunds',
        idempotencyKey: 'confirm-3',
      }),
    ).toMatchObject({ ok: true, status: 'failed', failureReason: 'insufficient_funds' });
    expect(await provider.retrieve(poor.intentId)).toMatchObject({
      ok: true,
      status: 'failed',
      failureReason: 'insufficient_funds',
    });
  });

  it('answers the state of an intent that already succeeded instead of an error', async () => {
    const { intentId } = await newIntent();
    await provider.confirm({
      intentId,
      method: 'card',
      paymentMethodId: 'pm_card_visa',
      idempotencyKey: 'confirm-4',
    });
    expect(
      await provider.confirm({
        intentId,
        method: 'card',
        paymentMethodId: 'pm_card_mastercard',
        idempotencyKey: 'confirm-4b',
      }),
    ).toMatchObject({ ok: true, status: 'succeeded', cardBrand: 'visa' });
  });

  it('never sends a raw card number to Stripe', async () => {
    const { intentId } = await newIntent();
    stripe.requests.length = 0;
    const refused = await provider.confirm({
      intentId,
      method: 'card',
      card: { number: '4242424242424242', expiry: '12/34', cvc: '123' },
      idempotencyKey: 'confirm-5',
    });
    expect(refused).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
    expect(stripe.requests).toHaveLength(0);
  });

  it('reads the state when the browser confirmed with the client secret, and asks for a method when nothing was paid', async () => {
    const paid = await newIntent();
    // Stripe.js confirmed on the customer's device:
    Object.assign(stripe.intents.get(paid.intentId)!, {
      status: 'succeeded',
      payment_method: 'pm_card_visa',
    });
    expect(
      await provider.confirm({ intentId: paid.intentId, method: 'card', idempotencyKey: 'confirm-6' }),
    ).toMatchObject({
      ok: true,
      status: 'succeeded',
      cardLast4: '4242',
    });
    const unpaid = await newIntent();
    expect(
      await provider.confirm({ intentId: unpaid.intentId, method: 'card', idempotencyKey: 'confirm-7' }),
    ).toMatchObject({
      ok: false,
      code: 'VALIDATION_FAILED',
      details: { fields: { paymentMethodId: 'required' } },
    });
  });

  it('refuses an unknown PaymentMethod as bad input, and an unknown intent as not found', async () => {
    const { intentId } = await newIntent();
    expect(
      await provider.confirm({
        intentId,
        method: 'card',
        paymentMethodId: 'pm_bogus',
        idempotencyKey: 'confirm-8',
      }),
    ).toMatchObject({ ok: false, code: 'VALIDATION_FAILED', details: { param: 'payment_method' } });
    expect(await provider.retrieve('pi_missing')).toMatchObject({ ok: false, code: 'NOT_FOUND' });
  });
});

describe('refunds', () => {
  it('refunds a succeeded intent with our idempotency key, and a retry with the key answers the same refund', async () => {
    const { intentId } = await newIntent();
    await provider.confirm({
      intentId,
      method: 'card',
      paymentMethodId: 'pm_card_visa',
      idempotencyKey: 'confirm-9',
    });
    const refund = await provider.refund({ intentId, idempotencyKey: 'refund-bkg' });
    expect(refund).toMatchObject({
      ok: true,
      status: 'succeeded',
      amountMinor: 61200,
      refundId: expect.stringMatching(/^re_/),
    });
    expect(stripe.requests.at(-1)).toMatchObject({ path: '/v1/refunds', idempotencyKey: 'refund-bkg' });
    expect(stripe.requests.at(-1)!.params.get('payment_intent')).toBe(intentId);
    expect(await provider.refund({ intentId, idempotencyKey: 'refund-bkg' })).toEqual(refund);
  });

  it('reports a refund Stripe refuses', async () => {
    const { intentId } = await newIntent();
    expect(await provider.refund({ intentId, idempotencyKey: 'refund-unpaid' })).toMatchObject({
      ok: false,
      code: 'INVALID_STATE',
    });
  });
});

describe('webhooks', () => {
  const event = (type: string, object: Record<string, unknown>) =>
    JSON.stringify({
      id: `evt_${type}`,
      object: 'event',
      type,
      api_version: Stripe.API_VERSION,
      data: { object },
    });
  const sign = (payload: string, secret = WEBHOOK_SECRET, timestamp?: number) =>
    Stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });

  it('reads payment_intent.succeeded, payment_intent.payment_failed and charge.refunded', () => {
    const succeeded = event('payment_intent.succeeded', {
      id: 'pi_1',
      object: 'payment_intent',
      status: 'succeeded',
    });
    expect(provider.parseWebhook(succeeded, sign(succeeded))).toEqual({
      ok: true,
      event: {
        id: 'evt_payment_intent.succeeded',
        providerType: 'payment_intent.succeeded',
        type: 'payment_succeeded',
        intentId: 'pi_1',
      },
    });
    const failed = event('payment_intent.payment_failed', {
      id: 'pi_2',
      object: 'payment_intent',
      status: 'requires_payment_method',
      last_payment_error: { type: 'card_error', code: 'card_declined', decline_code: 'insufficient_funds' },
    });
    expect(provider.parseWebhook(failed, sign(failed))).toMatchObject({
      ok: true,
      event: { type: 'payment_failed', intentId: 'pi_2', failureReason: 'insufficient_funds' },
    });
    const refunded = event('charge.refunded', {
      id: 'ch_3',
      object: 'charge',
      payment_intent: 'pi_3',
      refunded: true,
      amount_refunded: 100,
    });
    expect(provider.parseWebhook(refunded, sign(refunded))).toMatchObject({
      ok: true,
      event: { type: 'refunded', intentId: 'pi_3' },
    });
  });

  it('ignores a partial refund and event kinds the saga does not act on', () => {
    const partial = event('charge.refunded', {
      id: 'ch_4',
      object: 'charge',
      payment_intent: 'pi_4',
      refunded: false,
    });
    expect(provider.parseWebhook(partial, sign(partial))).toMatchObject({
      ok: true,
      event: { type: 'ignored' },
    });
    const created = event('payment_intent.created', { id: 'pi_5', object: 'payment_intent' });
    expect(provider.parseWebhook(created, sign(created))).toMatchObject({
      ok: true,
      event: { type: 'ignored', intentId: 'pi_5' },
    });
  });

  it('refuses a forged signature, a stale one, a tampered body and a missing header', () => {
    const payload = event('payment_intent.succeeded', { id: 'pi_6', object: 'payment_intent' });
    expect(provider.parseWebhook(payload, sign(payload, 'whsec_forger'))).toMatchObject({ ok: false });
    const tenMinutesAgo = Math.floor(Date.now() / 1000) - 600;
    expect(provider.parseWebhook(payload, sign(payload, WEBHOOK_SECRET, tenMinutesAgo))).toMatchObject({
      ok: false,
      message: expect.stringMatching(/tolerance/i),
    });
    expect(provider.parseWebhook(payload.replace('pi_6', 'pi_7'), sign(payload))).toMatchObject({
      ok: false,
    });
    expect(provider.parseWebhook(payload, undefined)).toMatchObject({ ok: false });
  });
});

describe('helpers', () => {
  it('turns STRIPE_API_BASE into the client’s host, port and protocol', () => {
    expect(stripeEndpoint(undefined)).toEqual({});
    expect(stripeEndpoint('http://127.0.0.1:12111')).toEqual({
      host: '127.0.0.1',
      port: 12111,
      protocol: 'http',
    });
    expect(stripeEndpoint('https://stripe-proxy.internal')).toEqual({
      host: 'stripe-proxy.internal',
      port: 443,
      protocol: 'https',
    });
  });

  it('maps Stripe statuses onto the port’s', () => {
    expect(statusOf({ status: 'requires_payment_method', last_payment_error: null })).toBe(
      'requires_payment',
    );
    expect(
      statusOf({ status: 'requires_payment_method', last_payment_error: { type: 'card_error' } as never }),
    ).toBe('failed');
    expect(statusOf({ status: 'requires_action', last_payment_error: null })).toBe('requires_action');
    expect(statusOf({ status: 'requires_capture', last_payment_error: null })).toBe('processing');
    expect(statusOf({ status: 'canceled', last_payment_error: null })).toBe('canceled');
  });
});
