/**
 * The simulated provider: Stripe-test-mode outcomes for cards, UPI and wallets, card validation, a ledger
 * that survives a restart, refunds, and webhooks signed in Stripe's scheme.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IntentState } from '../../src/payments/payment-provider.js';
import {
  brandOf,
  checkCard,
  loadSimulatedWebhookSecret,
  passesLuhn,
  SimulatedPaymentProvider,
} from '../../src/payments/simulated-provider.js';
import { openAppDb } from '../../src/persistence/app-db.js';
import { SqliteStore, type Store } from '../../src/persistence/store.js';
import { APP_STORES } from '../helpers/app-stores.js';

const SECRET = 'whsec_simulated_test_secret';
// A fixed business clock: 15 March 2030, so expiry checks do not depend on the day the suite runs.
const NOW = Date.UTC(2030, 2, 15, 12, 0, 0);
const GOOD_EXPIRY = '12/34';

let store: Store;
let provider: SimulatedPaymentProvider;

let sequence = 0;
async function newIntent(method: 'card' | 'upi' | 'wallet' = 'card', amountMinor = 61200) {
  const bookingId = `bkg_test_${++sequence}`;
  const intent = await provider.createIntent({
    amountMinor,
    currency: 'INR',
    method,
    bookingId,
    idempotencyKey: `intent-${bookingId}`,
  });
  if (!intent.ok) throw new Error(intent.message);
  return { ...intent, bookingId };
}

function payCard(intentId: string, number: string, expiry = GOOD_EXPIRY, cvc = '123') {
  return provider.confirm({
    intentId,
    method: 'card',
    card: { number, expiry, cvc },
    idempotencyKey: `confirm-${intentId}`,
  });
}

function expectState(result: Awaited<ReturnType<typeof provider.confirm>>): IntentState {
  if (!result.ok) throw new Error(`expected a state, got ${result.code}: ${result.message}`);
  return result;
}

describe.each(APP_STORES)('the simulated provider on $name', (fixture) => {
  beforeEach(async () => {
    store = await fixture.open('simulated-provider');
    provider = new SimulatedPaymentProvider(store, { webhookSecret: SECRET, now: () => NOW });
  });

  afterEach(async () => {
    await store.close();
  });

  describe('payment intents', () => {
    it('creates an intent awaiting payment, and the same idempotency key returns the same intent', async () => {
      const first = await provider.createIntent({
        amountMinor: 50000,
        currency: 'inr',
        method: 'card',
        bookingId: 'bkg_1',
        idempotencyKey: 'intent-bkg_1',
      });
      expect(first).toMatchObject({ ok: true, provider: 'simulated', status: 'requires_payment' });
      expect(first.ok && first.clientSecret).toBeFalsy();
      const again = await provider.createIntent({
        amountMinor: 50000,
        currency: 'INR',
        method: 'card',
        bookingId: 'bkg_1',
        idempotencyKey: 'intent-bkg_1',
      });
      expect(again.ok && again.intentId).toBe(first.ok && first.intentId);
      const retrieved = expectState(await provider.retrieve(first.ok ? first.intentId : ''));
      expect(retrieved).toMatchObject({ status: 'requires_payment', amountMinor: 50000, currency: 'INR' });
    });

    it('refuses an idempotency key reused for a different payment', async () => {
      const base = {
        currency: 'INR',
        method: 'card' as const,
        bookingId: 'bkg_2',
        idempotencyKey: 'intent-bkg_2',
      };
      expect((await provider.createIntent({ ...base, amountMinor: 100 })).ok).toBe(true);
      expect(await provider.createIntent({ ...base, amountMinor: 200 })).toMatchObject({
        ok: false,
        code: 'IDEMPOTENCY_KEY_REUSED',
      });
    });

    it('refuses amounts that are not whole minor units within the limit, and bad currencies', async () => {
      const base = { currency: 'INR', method: 'card' as const, bookingId: 'bkg_3' };
      for (const amountMinor of [-1, 10.5, 100_000_000, Number.NaN])
        expect(
          await provider.createIntent({ ...base, amountMinor, idempotencyKey: `k-${amountMinor}` }),
        ).toMatchObject({
          ok: false,
          code: 'VALIDATION_FAILED',
        });
      expect(
        await provider.createIntent({ ...base, amountMinor: 1, currency: 'RUPEES', idempotencyKey: 'k-cur' }),
      ).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
    });

    it('answers NOT_FOUND for an unknown intent', async () => {
      expect(await provider.retrieve('pi_sim_nope')).toMatchObject({ ok: false, code: 'NOT_FOUND' });
      expect(await payCard('pi_sim_nope', '4242424242424242')).toMatchObject({
        ok: false,
        code: 'NOT_FOUND',
      });
    });
  });

  describe('paying by card (Stripe test cards)', () => {
    it('succeeds with 4242 4242 4242 4242 and keeps only brand and last four', async () => {
      const { intentId } = await newIntent();
      const state = expectState(await payCard(intentId, '4242 4242 4242 4242'));
      expect(state).toMatchObject({
        status: 'succeeded',
        cardBrand: 'visa',
        cardLast4: '4242',
        amountMinor: 61200,
      });
      expect(state.failureReason).toBeUndefined();
      const rows = JSON.stringify(await store.all('SELECT * FROM simulated_payment_intents'));
      expect(rows).not.toContain('4242424242424242');
      expect(rows).not.toContain('4242 4242 4242 4242');
    });

    it('declines 4000 0000 0000 0002 and reports insufficient funds for 4000 0000 0000 9995', async () => {
      const declined = expectState(await payCard((await newIntent()).intentId, '4000000000000002'));
      expect(declined).toMatchObject({ status: 'failed', failureReason: 'card_declined', cardLast4: '0002' });
      const poor = expectState(await payCard((await newIntent()).intentId, '4000-0000-0000-9995'));
      expect(poor).toMatchObject({
        status: 'failed',
        failureReason: 'insufficient_funds',
        cardBrand: 'visa',
      });
    });

    it('succeeds with the other networks’ test cards (Amex takes a 4-digit CVC)', async () => {
      expect(expectState(await payCard((await newIntent()).intentId, '5555555555554444'))).toMatchObject({
        status: 'succeeded',
        cardBrand: 'mastercard',
      });
      expect(
        expectState(await payCard((await newIntent()).intentId, '378282246310005', GOOD_EXPIRY, '1234')),
      ).toMatchObject({ status: 'succeeded', cardBrand: 'amex', cardLast4: '0005' });
    });

    it('declines a well-formed card that is not a test card, as Stripe test mode does', async () => {
      expect(expectState(await payCard((await newIntent()).intentId, '4111111111111111'))).toMatchObject({
        status: 'failed',
        failureReason: 'test_mode_live_card',
      });
    });

    it('answers INVALID_CARD for a number failing Luhn, and leaves the intent payable', async () => {
      const { intentId } = await newIntent();
      const refused = await payCard(intentId, '4242424242424241');
      expect(refused).toMatchObject({
        ok: false,
        code: 'INVALID_CARD',
        details: { fields: { number: expect.any(String) } },
      });
      expect(JSON.stringify(refused)).not.toContain('4242424242424241');
      expect(expectState(await provider.retrieve(intentId)).status).toBe('requires_payment');
      expect(expectState(await payCard(intentId, '4242424242424242')).status).toBe('succeeded');
    });

    it('answers INVALID_CARD for an expired card, a malformed expiry or a wrong CVC', async () => {
      const { intentId } = await newIntent();
      expect(await payCard(intentId, '4242424242424242', '02/30')).toMatchObject({
        code: 'INVALID_CARD',
        details: { fields: { expiry: 'the card has expired' } },
      });
      expect(await payCard(intentId, '4242424242424242', '13/31')).toMatchObject({
        code: 'INVALID_CARD',
        details: { fields: { expiry: expect.any(String) } },
      });
      expect(await payCard(intentId, '4242424242424242', '2031-01')).toMatchObject({ code: 'INVALID_CARD' });
      expect(await payCard(intentId, '4242424242424242', GOOD_EXPIRY, '12')).toMatchObject({
        code: 'INVALID_CARD',
        details: { fields: { cvc: 'must be 3 digits' } },
      });
      expect(await payCard(intentId, '378282246310005', GOOD_EXPIRY, '123')).toMatchObject({
        code: 'INVALID_CARD',
        details: { fields: { cvc: 'must be 4 digits' } },
      });
      // The expiry month itself is still good: a card is valid through the end of its month.
      expect(expectState(await payCard(intentId, '4242424242424242', '03/2030')).status).toBe('succeeded');
    });

    it('requires card details for a card intent, and the method the intent was made for', async () => {
      const { intentId } = await newIntent();
      expect(await provider.confirm({ intentId, method: 'card', idempotencyKey: 'k' })).toMatchObject({
        code: 'INVALID_CARD',
      });
      expect(
        await provider.confirm({ intentId, method: 'upi', upiId: 'success@upi', idempotencyKey: 'k' }),
      ).toMatchObject({
        code: 'VALIDATION_FAILED',
        details: { fields: { method: 'must be card' } },
      });
    });

    it('answers a paid intent again on a repeated confirm, whatever card the repeat carries', async () => {
      const { intentId } = await newIntent();
      const first = expectState(await payCard(intentId, '4242424242424242'));
      const repeat = expectState(await payCard(intentId, '4000000000000002'));
      expect(repeat).toEqual(first);
      const failed = (await newIntent()).intentId;
      expect(expectState(await payCard(failed, '4000000000009995')).status).toBe('failed');
      expect(expectState(await payCard(failed, '4242424242424242'))).toMatchObject({
        status: 'failed',
        failureReason: 'insufficient_funds',
      });
    });
  });

  describe('paying by UPI and wallet', () => {
    it('succeeds with success@upi and fails with failure@upi', async () => {
      const ok = await newIntent('upi');
      expect(
        expectState(
          await provider.confirm({
            intentId: ok.intentId,
            method: 'upi',
            upiId: 'success@upi',
            idempotencyKey: 'a',
          }),
        ),
      ).toMatchObject({ status: 'succeeded' });
      const ko = await newIntent('upi');
      expect(
        expectState(
          await provider.confirm({
            intentId: ko.intentId,
            method: 'upi',
            upiId: 'failure@upi',
            idempotencyKey: 'b',
          }),
        ),
      ).toMatchObject({ status: 'failed', failureReason: 'upi_declined' });
    });

    it('refuses a malformed UPI id without touching the intent', async () => {
      const { intentId } = await newIntent('upi');
      expect(
        await provider.confirm({ intentId, method: 'upi', upiId: 'not-a-vpa', idempotencyKey: 'c' }),
      ).toMatchObject({
        ok: false,
        code: 'VALIDATION_FAILED',
        details: { fields: { upiId: expect.any(String) } },
      });
      expect(expectState(await provider.retrieve(intentId)).status).toBe('requires_payment');
    });

    it('succeeds with wallet_success and fails with wallet_failure', async () => {
      const ok = await newIntent('wallet');
      expect(
        expectState(
          await provider.confirm({
            intentId: ok.intentId,
            method: 'wallet',
            walletId: 'wallet_success',
            idempotencyKey: 'd',
          }),
        ).status,
      ).toBe('succeeded');
      const ko = await newIntent('wallet');
      expect(
        expectState(
          await provider.confirm({
            intentId: ko.intentId,
            method: 'wallet',
            walletId: 'wallet_failure',
            idempotencyKey: 'e',
          }),
        ),
      ).toMatchObject({ status: 'failed', failureReason: 'wallet_declined' });
    });

    it('leaves pending@upi processing until settled, then reports it by a signed webhook', async () => {
      const { intentId } = await newIntent('upi');
      expect(
        expectState(
          await provider.confirm({ intentId, method: 'upi', upiId: 'pending@upi', idempotencyKey: 'f' }),
        ).status,
      ).toBe('processing');
      const webhook = await provider.settle(intentId, 'succeeded');
      expect(expectState(await provider.retrieve(intentId)).status).toBe('succeeded');
      const parsed = provider.parseWebhook(webhook.payload, webhook.signature);
      expect(parsed).toMatchObject({ ok: true, event: { type: 'payment_succeeded', intentId } });
    });
  });

  describe('refunds', () => {
    it('refunds a succeeded payment once; a repeat answers the same refund', async () => {
      const { intentId } = await newIntent();
      await payCard(intentId, '4242424242424242');
      const refund = await provider.refund({ intentId, idempotencyKey: 'refund-1' });
      expect(refund).toMatchObject({
        ok: true,
        status: 'succeeded',
        amountMinor: 61200,
        refundId: expect.stringMatching(/^re_sim_/),
      });
      expect(await provider.refund({ intentId, idempotencyKey: 'refund-1' })).toEqual(refund);
      expect(expectState(await provider.retrieve(intentId)).status).toBe('refunded');
    });

    it('refuses to refund a payment that never succeeded', async () => {
      const { intentId } = await newIntent();
      expect(await provider.refund({ intentId, idempotencyKey: 'refund-2' })).toMatchObject({
        ok: false,
        code: 'INVALID_STATE',
      });
      await payCard(intentId, '4000000000000002');
      expect(await provider.refund({ intentId, idempotencyKey: 'refund-2' })).toMatchObject({
        ok: false,
        code: 'INVALID_STATE',
      });
    });
  });

  describe('webhooks', () => {
    async function paidIntent() {
      const { intentId } = await newIntent();
      await payCard(intentId, '4242424242424242');
      return intentId;
    }

    it('accepts an event signed in Stripe’s scheme (the stripe package’s own test signer agrees)', async () => {
      const intentId = await paidIntent();
      const { payload } = await provider.webhookFor(intentId);
      const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
      expect(provider.parseWebhook(payload, signature)).toMatchObject({
        ok: true,
        event: { type: 'payment_succeeded', providerType: 'payment_intent.succeeded', intentId },
      });
    });

    it('reports a declined payment with its reason, and a refund', async () => {
      const { intentId } = await newIntent();
      await payCard(intentId, '4000000000009995');
      const failed = await provider.webhookFor(intentId);
      expect(provider.parseWebhook(failed.payload, failed.signature)).toMatchObject({
        ok: true,
        event: { type: 'payment_failed', intentId, failureReason: 'insufficient_funds' },
      });
      const paid = await paidIntent();
      await provider.refund({ intentId: paid, idempotencyKey: 'r' });
      const refunded = await provider.webhookFor(paid);
      expect(provider.parseWebhook(refunded.payload, refunded.signature)).toMatchObject({
        ok: true,
        event: { type: 'refunded', providerType: 'charge.refunded', intentId: paid },
      });
    });

    it('refuses a forged signature, a tampered body, a stale signature and a missing header', async () => {
      const intentId = await paidIntent();
      const { payload, signature } = await provider.webhookFor(intentId);
      const forged = Stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_someone_else' });
      expect(provider.parseWebhook(payload, forged)).toMatchObject({ ok: false });
      expect(provider.parseWebhook(payload.replace('succeeded', 'failed'), signature)).toMatchObject({
        ok: false,
      });
      const stale = provider.signWebhook(payload, Math.floor(Date.now() / 1000) - 600);
      expect(provider.parseWebhook(payload, stale)).toMatchObject({
        ok: false,
        message: expect.stringMatching(/tolerance/),
      });
      expect(provider.parseWebhook(payload, undefined)).toMatchObject({ ok: false });
      expect(provider.parseWebhook(payload, 't=abc,v1=zz')).toMatchObject({ ok: false });
    });

    it('acknowledges event kinds the saga has no transition for as ignored', () => {
      const payload = JSON.stringify({
        id: 'evt_1',
        type: 'customer.created',
        data: { object: { id: 'cus_1', object: 'customer' } },
      });
      expect(provider.parseWebhook(payload, provider.signWebhook(payload))).toEqual({
        ok: true,
        event: { id: 'evt_1', providerType: 'customer.created', type: 'ignored', intentId: '' },
      });
      const notJson = 'hello';
      expect(provider.parseWebhook(notJson, provider.signWebhook(notJson))).toMatchObject({ ok: false });
    });
  });

  describe('under concurrency', () => {
    it('creates one intent for racing requests with one idempotency key, and captures it once', async () => {
      // PostgreSQL runs these on separate connections; SQLite queues them behind its one connection.
      const input = { amountMinor: 500, currency: 'INR', method: 'card' as const, bookingId: 'bkg_race' };
      const intents = await Promise.all(
        Array.from({ length: 12 }, () => provider.createIntent({ ...input, idempotencyKey: 'intent-race' })),
      );
      const ids = new Set(intents.map((i) => (i.ok ? i.intentId : i.code)));
      expect(ids.size).toBe(1);
      const [intentId] = [...ids] as [string];
      expect(intentId).toMatch(/^pi_sim_/);
      const rows = await store.all<{ n: number }>(
        'SELECT COUNT(*) AS n FROM simulated_payment_intents WHERE idempotency_key = ?',
        ['intent-race'],
      );
      expect(rows[0]?.n).toBe(1);
      // A good and a declined card race: whichever lands first decides, and every answer is that outcome.
      const cards = Array.from({ length: 10 }, (_, i) => (i % 2 ? '4000000000000002' : '4242424242424242'));
      const states = (await Promise.all(cards.map((card) => payCard(intentId, card)))).map(expectState);
      const final = expectState(await provider.retrieve(intentId));
      for (const state of states) expect(state.status).toBe(final.status);
      const refunds = await Promise.all(
        Array.from({ length: 8 }, () => provider.refund({ intentId, idempotencyKey: 'refund-race' })),
      );
      if (final.status === 'succeeded') {
        const refundIds = new Set(refunds.map((r) => (r.ok ? r.refundId : r.code)));
        expect(refundIds.size).toBe(1);
        expect([...refundIds][0]).toMatch(/^re_sim_/);
      }
    });
  });
});

describe('a restart and the file (SQLite)', () => {
  let dir: string;
  let db: ReturnType<typeof openAppDb>;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-simpay-'));
    db = openAppDb(path.join(dir, 'app.db'));
    store = new SqliteStore(db);
    provider = new SimulatedPaymentProvider(store, { webhookSecret: SECRET, now: () => NOW });
  });

  afterEach(() => {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('never writes the card number to the database file', async () => {
    const { intentId } = await newIntent();
    expectState(await payCard(intentId, '4242 4242 4242 4242'));
    db.pragma('wal_checkpoint(TRUNCATE)');
    expect(fs.readFileSync(path.join(dir, 'app.db')).includes('4242424242424242')).toBe(false);
  });

  it('keeps every intent and its outcome (reconciliation asks the provider after a crash)', async () => {
    const { intentId } = await newIntent();
    await payCard(intentId, '4242424242424242');
    db.close();
    db = openAppDb(path.join(dir, 'app.db'));
    store = new SqliteStore(db);
    provider = new SimulatedPaymentProvider(store, { webhookSecret: SECRET, now: () => NOW });
    expect(expectState(await provider.retrieve(intentId))).toMatchObject({
      status: 'succeeded',
      cardBrand: 'visa',
      cardLast4: '4242',
    });
  });

  it('keeps the generated webhook secret in the data directory', () => {
    const first = loadSimulatedWebhookSecret(dir);
    expect(first).toMatch(/^whsec_sim_/);
    expect(loadSimulatedWebhookSecret(dir)).toBe(first);
    expect(fs.statSync(path.join(dir, 'secrets', 'simulated-webhook-secret')).mode & 0o777).toBe(0o600);
  });
});

describe('card checks', () => {
  it('knows the Luhn check and the networks by prefix', () => {
    expect(passesLuhn('4242424242424242')).toBe(true);
    expect(passesLuhn('4242424242424243')).toBe(false);
    expect(passesLuhn('378282246310005')).toBe(true);
    expect(brandOf('4242424242424242')).toBe('visa');
    expect(brandOf('5555555555554444')).toBe('mastercard');
    expect(brandOf('2223003122003222')).toBe('mastercard');
    expect(brandOf('378282246310005')).toBe('amex');
    expect(brandOf('6011111111111117')).toBe('discover');
    expect(brandOf('6080000000000001')).toBe('rupay');
  });

  it('names every bad field at once and accepts MM/YYYY', () => {
    expect(checkCard({ number: '1234', expiry: '00/20', cvc: 'abc' }, NOW)).toMatchObject({
      ok: false,
      code: 'INVALID_CARD',
      details: {
        fields: { number: expect.any(String), expiry: expect.any(String), cvc: expect.any(String) },
      },
    });
    expect(checkCard({ number: '4242424242424242', expiry: '04/2031', cvc: '999' }, NOW)).toEqual({
      ok: true,
      digits: '4242424242424242',
      brand: 'visa',
      last4: '4242',
    });
    expect(checkCard({ number: '4242424242424242', expiry: '01/99', cvc: '999' }, NOW)).toMatchObject({
      ok: false,
      details: { fields: { expiry: 'the expiry is too far ahead' } },
    });
  });
});
