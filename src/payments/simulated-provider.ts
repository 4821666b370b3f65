/**
 * @module payments/simulated-provider
 * The default, offline payment provider. It behaves like Stripe in test mode so the whole saga runs
 * without a network: its intents live in its own table (they survive a restart, so reconciliation works),
 * it validates card details as a card form would, and it signs webhooks in Stripe's scheme.
 *
 * Test payment details (anything else that is well formed is declined, as Stripe declines a real card
 * in test mode):
 *
 * | method | value | outcome |
 * |---|---|---|
 * | card | 4242 4242 4242 4242 (Visa), 5555 5555 5555 4444 (Mastercard), 3782 822463 10005 (Amex), 6011 1111 1111 1117 (Discover) | succeeds |
 * | card | 4000 0000 0000 0002 | declined, `card_declined` |
 * | card | 4000 0000 0000 9995 | declined, `insufficient_funds` |
 * | card | 4000 0000 0000 9987 / 9979 / 0069 / 0127 / 0119 | declined: `lost_card`, `stolen_card`, `expired_card`, `incorrect_cvc`, `processing_error` |
 * | upi | `success@upi` / `failure@upi` / `pending@upi` | succeeds / declined `upi_declined` / `processing` until `settle()` |
 * | wallet | `wallet_success` / `wallet_failure` / `wallet_insufficient` / `wallet_pending` | succeeds / `wallet_declined` / `insufficient_funds` / `processing` until `settle()` |
 *
 * A card must pass the Luhn check, carry an expiry `MM/YY` (or `MM/YYYY`) no earlier than the current
 * month, and a CVC of 3 digits (4 for Amex); otherwise the answer is `INVALID_CARD` and the intent is
 * untouched. The card number is used only inside `confirm`: only brand and last four are kept.
 *
 * @example
 * const provider = new SimulatedPaymentProvider(store, { webhookSecret: 'whsec_test' });
 * const intent = await provider.createIntent({ amountMinor: 50000, currency: 'INR', method: 'card', bookingId, idempotencyKey: `intent-${bookingId}` });
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Failure } from '../domain/failure.js';
import { newId } from '../ids.js';
import type { Queryable, Store } from '../persistence/store.js';
import {
  type ConfirmInput,
  type CreatedIntent,
  type CreateIntentInput,
  type IntentState,
  type IntentStatus,
  type LedgerInTransaction,
  type ParsedWebhook,
  type PaymentMethod,
  type PaymentProofInput,
  type PaymentProvider,
  providerFailure,
  type RefundInput,
  type RefundResult,
  toPaymentEvent,
  WEBHOOK_TOLERANCE_SECONDS,
} from './payment-provider.js';

/** Stripe's own ceiling for one charge (eight digits of minor units). */
export const MAX_AMOUNT_MINOR = 99_999_999;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Cards expiring further ahead than this are refused as mistyped. */
export const MAX_CARD_YEARS_AHEAD = 50;
/** Bound on the signatures read from one header (Stripe sends one per active secret). */
export const MAX_WEBHOOK_SIGNATURES = 8;

export interface SimulatedProviderOptions {
  /** The secret webhooks are signed with (`t=…,v1=…`, Stripe's scheme). */
  webhookSecret: string;
  /** The business clock: record times and card expiry. Webhook signatures use the wall clock, as Stripe's do. */
  now?: () => number;
  /** Refuse webhook signatures older than this; 0 disables the check. */
  webhookToleranceSeconds?: number;
}

interface IntentRow {
  id: string;
  idempotency_key: string;
  booking_id: string;
  amount_minor: number;
  currency: string;
  method: PaymentMethod;
  status: IntentStatus;
  failure_reason: string | null;
  card_brand: string | null;
  card_last4: string | null;
  refund_id: string | null;
}

/** What a proof of payment leads to, before it is written. */
interface Outcome {
  status: 'succeeded' | 'failed' | 'processing';
  failureReason?: string;
  cardBrand?: string;
  cardLast4?: string;
}

const SUCCEEDING_CARDS = new Set([
  '4242424242424242',
  '5555555555554444',
  '378282246310005',
  '6011111111111117',
]);
const DECLINING_CARDS: ReadonlyMap<string, string> = new Map([
  ['4000000000000002', 'card_declined'],
  ['4000000000009995', 'insufficient_funds'],
  ['4000000000009987', 'lost_card'],
  ['4000000000009979', 'stolen_card'],
  ['4000000000000069', 'expired_card'],
  ['4000000000000127', 'incorrect_cvc'],
  ['4000000000000119', 'processing_error'],
]);
const UPI_OUTCOMES: ReadonlyMap<string, Outcome> = new Map([
  ['success@upi', { status: 'succeeded' }],
  ['failure@upi', { status: 'failed', failureReason: 'upi_declined' }],
  ['pending@upi', { status: 'processing' }],
]);
const WALLET_OUTCOMES: ReadonlyMap<string, Outcome> = new Map([
  ['wallet_success', { status: 'succeeded' }],
  ['wallet_failure', { status: 'failed', failureReason: 'wallet_declined' }],
  ['wallet_insufficient', { status: 'failed', failureReason: 'insufficient_funds' }],
  ['wallet_pending', { status: 'processing' }],
]);
const UPI_ID = /^[A-Za-z0-9._-]{2,256}@[A-Za-z][A-Za-z0-9]{1,63}$/;
const WALLET_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** Only an unpaid (or, for settle, processing) intent moves: a second confirm can never overwrite an outcome. */
const SETTLE = `UPDATE simulated_payment_intents SET status = ?, failure_reason = ?, card_brand = ?, card_last4 = ?,
  updated_at = ? WHERE id = ? AND status = ?`;

export class SimulatedPaymentProvider implements PaymentProvider {
  readonly name = 'simulated';
  readonly #now: () => number;
  readonly #secret: string;
  readonly #toleranceSeconds: number;
  readonly #store: Store;

  constructor(store: Store, options: SimulatedProviderOptions) {
    if (!options.webhookSecret) throw new Error('the simulated provider needs a webhook secret');
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#secret = options.webhookSecret;
    this.#toleranceSeconds = options.webhookToleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  }

  /** The same calls on the caller's transaction: the booking saga runs them inside its own. */
  readonly inTransaction: LedgerInTransaction = {
    createIntent: (tx, input) => this.#createIntent(tx, input),
    confirm: (tx, input) => this.#confirm(tx, input),
  };

  /** On its own transaction: the idempotency key's read decides the insert. */
  createIntent(input: CreateIntentInput): Promise<CreatedIntent | Failure> {
    return this.#store.transaction((tx) => this.#createIntent(tx, input));
  }

  async #createIntent(q: Queryable, input: CreateIntentInput): Promise<CreatedIntent | Failure> {
    const { amountMinor, idempotencyKey } = input;
    if (!Number.isInteger(amountMinor) || amountMinor < 0 || amountMinor > MAX_AMOUNT_MINOR)
      return providerFailure(
        'VALIDATION_FAILED',
        `amount must be a whole number of minor units up to ${MAX_AMOUNT_MINOR}`,
      );
    if (!/^[A-Za-z]{3}$/.test(input.currency))
      return providerFailure('VALIDATION_FAILED', 'currency must be ISO 4217');
    if (!idempotencyKey || idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH)
      return providerFailure('VALIDATION_FAILED', 'an idempotency key is required');
    const currency = input.currency.toUpperCase();
    const id = newId('pi_sim');
    const at = this.#iso();
    // Racing requests with one key: the key's unique index lets one insert; the others read its row.
    const inserted = await q.run(
      `INSERT INTO simulated_payment_intents (id, idempotency_key, booking_id, amount_minor, currency, method, status,
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'requires_payment', ?, ?)
       ON CONFLICT (idempotency_key) DO NOTHING`,
      [id, idempotencyKey, input.bookingId, amountMinor, currency, input.method, at, at],
    );
    if (inserted.changes === 0) {
      const existing = (await q.get<IntentRow>(
        'SELECT * FROM simulated_payment_intents WHERE idempotency_key = ?',
        [idempotencyKey],
      ))!;
      const isSameRequest =
        existing.amount_minor === amountMinor &&
        existing.currency === currency &&
        existing.method === input.method &&
        existing.booking_id === input.bookingId;
      if (!isSameRequest)
        return providerFailure(
          'IDEMPOTENCY_KEY_REUSED',
          'this idempotency key was used for another payment intent',
        );
      return { ok: true, provider: this.name, intentId: existing.id, status: existing.status };
    }
    return { ok: true, provider: this.name, intentId: id, status: 'requires_payment' };
  }

  /** On its own transaction: the intent's state decides the outcome written. */
  confirm(input: ConfirmInput): Promise<IntentState | Failure> {
    return this.#store.transaction((tx) => this.#confirm(tx, input));
  }

  async #confirm(q: Queryable, input: ConfirmInput): Promise<IntentState | Failure> {
    // The usual case in one statement: a well-formed proof moves an unpaid intent of its method, and
    // RETURNING gives the state it wrote. Only an unpaid intent moves: of racing confirms, the conditional
    // UPDATE lets one write its outcome, and the others answer the state it wrote (read after it, below,
    // as a repeated confirm would). So is anything else: no such intent, another method, a bad proof.
    const evaluated = this.#evaluate(input);
    if (evaluated.ok) {
      const { status, failureReason, cardBrand, cardLast4 } = evaluated.outcome;
      const moved = await q.get<IntentRow>(`${SETTLE} AND method = ? RETURNING *`, [
        status,
        failureReason ?? null,
        cardBrand ?? null,
        cardLast4 ?? null,
        this.#iso(),
        input.intentId,
        'requires_payment',
        input.method,
      ]);
      if (moved) return stateOf(moved);
    }
    const row = await this.#row(q, input.intentId);
    if (!row) return providerFailure('NOT_FOUND', `no payment intent ${input.intentId}`);
    // Idempotent by state: an intent that already has an outcome answers it again.
    if (row.status !== 'requires_payment') return stateOf(row);
    if (input.method !== row.method)
      return providerFailure('VALIDATION_FAILED', `this payment intent is paid by ${row.method}`, {
        fields: { method: `must be ${row.method}` },
      });
    if (!evaluated.ok) return evaluated;
    // Unpaid, of this method, with a good proof, and yet the UPDATE above matched nothing: nothing moves
    // an intent back to unpaid, so this is a bug.
    throw new Error(`assertion failed: payment intent ${row.id} is unpaid but could not be moved`);
  }

  async retrieve(intentId: string): Promise<IntentState | Failure> {
    const row = await this.#row(this.#store, intentId);
    return row ? stateOf(row) : providerFailure('NOT_FOUND', `no payment intent ${intentId}`);
  }

  async refund(input: RefundInput): Promise<RefundResult | Failure> {
    const row = await this.#row(this.#store, input.intentId);
    if (!row) return providerFailure('NOT_FOUND', `no payment intent ${input.intentId}`);
    if (row.status === 'refunded' && row.refund_id)
      return { ok: true, refundId: row.refund_id, status: 'succeeded', amountMinor: row.amount_minor };
    if (row.status !== 'succeeded')
      return providerFailure(
        'INVALID_STATE',
        `payment intent ${row.id} is ${row.status}; only a succeeded payment is refunded`,
      );
    const refundId = newId('re_sim');
    // Racing refunds: the conditional UPDATE records one refund; a loser answers the one recorded.
    const marked = await this.#store.run(
      `UPDATE simulated_payment_intents SET status = 'refunded', refund_id = ?, updated_at = ?
       WHERE id = ? AND status = 'succeeded'`,
      [refundId, this.#iso(), row.id],
    );
    if (marked.changes === 0) {
      const now = await this.#row(this.#store, row.id);
      if (now?.status === 'refunded' && now.refund_id)
        return { ok: true, refundId: now.refund_id, status: 'succeeded', amountMinor: now.amount_minor };
      return providerFailure('INVALID_STATE', `payment intent ${row.id} is ${now?.status ?? 'missing'}`);
    }
    return { ok: true, refundId, status: 'succeeded', amountMinor: row.amount_minor };
  }

  parseWebhook(rawBody: string, signature: string | undefined): ParsedWebhook {
    const checked = verifyWebhookSignature(
      rawBody,
      signature,
      this.#secret,
      this.#toleranceSeconds,
      Math.floor(Date.now() / 1000),
    );
    if (!checked.ok) return checked;
    let event: unknown;
    try {
      event = JSON.parse(rawBody);
    } catch {
      return { ok: false, message: 'the webhook body is not JSON' };
    }
    if (!event || typeof event !== 'object')
      return { ok: false, message: 'the webhook body is not an event' };
    return toPaymentEvent(event);
  }

  /**
   * Completes a `processing` intent (`pending@upi`, `wallet_pending`) as the customer's bank would, and
   * returns the signed webhook that reports it, ready to POST to /api/payments/webhook.
   */
  async settle(
    intentId: string,
    outcome: 'succeeded' | 'failed',
    failureReason = 'declined',
  ): Promise<SignedWebhook> {
    const row = await this.#row(this.#store, intentId);
    if (!row) throw new Error(`no payment intent ${intentId}`);
    if (row.status !== 'processing')
      throw new Error(`payment intent ${intentId} is ${row.status}, not processing`);
    const reason = outcome === 'failed' ? failureReason : null;
    await this.#store.run(SETTLE, [
      outcome,
      reason,
      row.card_brand,
      row.card_last4,
      this.#iso(),
      row.id,
      'processing',
    ]);
    return this.webhookFor(intentId);
  }

  /**
   * The signed Stripe-shaped event describing an intent's current state (succeeded, failed or refunded):
   * what a provider's servers would send. For demos and tests of the webhook path.
   */
  async webhookFor(
    intentId: string,
    timestampSeconds = Math.floor(Date.now() / 1000),
  ): Promise<SignedWebhook> {
    const row = await this.#row(this.#store, intentId);
    if (!row) throw new Error(`no payment intent ${intentId}`);
    const payload = JSON.stringify(eventOf(row, timestampSeconds));
    return { payload, signature: signWebhookPayload(payload, this.#secret, timestampSeconds) };
  }

  /** The header value for a body, as the provider signs it (`t=…,v1=…`). */
  signWebhook(payload: string, timestampSeconds = Math.floor(Date.now() / 1000)): string {
    return signWebhookPayload(payload, this.#secret, timestampSeconds);
  }

  #row(q: Queryable, id: string): Promise<IntentRow | undefined> {
    return q.get<IntentRow>('SELECT * FROM simulated_payment_intents WHERE id = ?', [id]);
  }

  #iso(): string {
    return new Date(this.#now()).toISOString();
  }

  #evaluate(proof: PaymentProofInput): { ok: true; outcome: Outcome } | Failure {
    switch (proof.method) {
      case 'card': {
        if (!proof.card)
          return providerFailure('INVALID_CARD', 'card details are required', {
            fields: { card: 'required' },
          });
        const card = checkCard(proof.card, this.#now());
        if (!card.ok) return card;
        const declined = DECLINING_CARDS.get(card.digits);
        const isTestSuccess = SUCCEEDING_CARDS.has(card.digits);
        const failureReason = declined ?? (isTestSuccess ? undefined : 'test_mode_live_card');
        return {
          ok: true,
          outcome: {
            status: failureReason ? 'failed' : 'succeeded',
            ...(failureReason ? { failureReason } : {}),
            cardBrand: card.brand,
            cardLast4: card.last4,
          },
        };
      }
      case 'upi': {
        const upiId = proof.upiId?.trim().toLowerCase();
        if (!upiId || !UPI_ID.test(upiId))
          return providerFailure('VALIDATION_FAILED', 'a UPI id such as name@bank is required', {
            fields: { upiId: 'must look like name@bank' },
          });
        return {
          ok: true,
          outcome: UPI_OUTCOMES.get(upiId) ?? { status: 'failed', failureReason: 'upi_unknown_vpa' },
        };
      }
      case 'wallet': {
        const walletId = proof.walletId?.trim();
        if (!walletId || !WALLET_ID.test(walletId))
          return providerFailure('VALIDATION_FAILED', 'a wallet id is required', {
            fields: { walletId: 'letters, digits, dot, dash or underscore' },
          });
        return {
          ok: true,
          outcome: WALLET_OUTCOMES.get(walletId) ?? { status: 'failed', failureReason: 'wallet_unknown' },
        };
      }
    }
  }
}

export interface SignedWebhook {
  payload: string;
  /** The `boxoffice-signature` (or `stripe-signature`) header value. */
  signature: string;
}

function stateOf(row: IntentRow): IntentState {
  return {
    ok: true,
    intentId: row.id,
    status: row.status,
    amountMinor: row.amount_minor,
    currency: row.currency,
    ...(row.failure_reason ? { failureReason: row.failure_reason } : {}),
    ...(row.card_brand ? { cardBrand: row.card_brand } : {}),
    ...(row.card_last4 ? { cardLast4: row.card_last4 } : {}),
  };
}

/** A Stripe-shaped event for an intent's state, so one parser reads both providers' webhooks. */
function eventOf(row: IntentRow, created: number): object {
  const id = newId('evt_sim');
  if (row.status === 'refunded')
    return {
      id,
      object: 'event',
      created,
      type: 'charge.refunded',
      data: {
        object: {
          id: `ch_sim_${row.id.slice('pi_sim_'.length)}`,
          object: 'charge',
          payment_intent: row.id,
          amount: row.amount_minor,
          amount_refunded: row.amount_minor,
          refunded: true,
        },
      },
    };
  const type =
    row.status === 'succeeded'
      ? 'payment_intent.succeeded'
      : row.status === 'failed'
        ? 'payment_intent.payment_failed'
        : `payment_intent.${row.status}`;
  return {
    id,
    object: 'event',
    created,
    type,
    data: {
      object: {
        id: row.id,
        object: 'payment_intent',
        amount: row.amount_minor,
        currency: row.currency.toLowerCase(),
        status: row.status,
        metadata: { bookingId: row.booking_id },
        last_payment_error: row.failure_reason
          ? { code: row.failure_reason, decline_code: row.failure_reason }
          : null,
      },
    },
  };
}

export type CardCheck = { ok: true; digits: string; brand: string; last4: string } | Failure;

/**
 * Validates a card as a payment form would: digits (spaces and dashes allowed), Luhn, expiry not
 * before the current month (UTC), CVC length for the brand. The failure names the bad fields and never
 * echoes the number.
 */
export function checkCard(card: { number: string; expiry: string; cvc: string }, nowMs: number): CardCheck {
  const fields: Record<string, string> = {};
  const digits = card.number.replace(/[\s-]/g, '');
  const isNumberWellFormed = /^\d{12,19}$/.test(digits) && passesLuhn(digits);
  if (!isNumberWellFormed) fields.number = 'not a valid card number';
  const brand = isNumberWellFormed ? brandOf(digits) : 'unknown';
  const expiry = /^(\d{1,2})\s*\/\s*(\d{2}|\d{4})$/.exec(card.expiry.trim());
  if (!expiry) fields.expiry = 'must be MM/YY';
  else {
    const month = Number(expiry[1]);
    const year = expiry[2]!.length === 2 ? 2000 + Number(expiry[2]) : Number(expiry[2]);
    const now = new Date(nowMs);
    const monthsAhead = (year - now.getUTCFullYear()) * 12 + (month - 1 - now.getUTCMonth());
    if (month < 1 || month > 12) fields.expiry = 'month must be 01 to 12';
    // A card is good through the last day of its expiry month.
    else if (monthsAhead < 0) fields.expiry = 'the card has expired';
    else if (monthsAhead > MAX_CARD_YEARS_AHEAD * 12) fields.expiry = 'the expiry is too far ahead';
  }
  const cvcLength = brand === 'amex' ? 4 : 3;
  if (!new RegExp(`^\\d{${cvcLength}}$`).test(card.cvc.trim())) fields.cvc = `must be ${cvcLength} digits`;
  if (Object.keys(fields).length > 0)
    return providerFailure('INVALID_CARD', `invalid card details: ${Object.keys(fields).join(', ')}`, {
      fields,
    });
  return { ok: true, digits, brand, last4: digits.slice(-4) };
}

export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** The card network by number prefix (IIN ranges), as Stripe reports `card.brand`. */
export function brandOf(digits: string): string {
  const two = Number(digits.slice(0, 2));
  const four = Number(digits.slice(0, 4));
  if (digits.startsWith('4')) return 'visa';
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return 'mastercard';
  if (two === 34 || two === 37) return 'amex';
  if (digits.startsWith('6011') || digits.startsWith('65') || (four >= 6440 && four <= 6499))
    return 'discover';
  if (two === 60 || two === 81 || two === 82 || digits.startsWith('508')) return 'rupay';
  if (two === 35) return 'jcb';
  if (two === 36 || two === 38 || two === 39 || (four >= 3000 && four <= 3059)) return 'diners';
  return 'unknown';
}

/** Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">`. */
export function signWebhookPayload(payload: string, secret: string, timestampSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${payload}`, 'utf8').digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/** Checks a `t=…,v1=…` header against the body: any v1 may match, and the timestamp must be recent. */
export function verifyWebhookSignature(
  payload: string,
  header: string | undefined,
  secret: string,
  toleranceSeconds: number,
  nowSeconds: number,
): { ok: true } | { ok: false; message: string } {
  if (!header) return { ok: false, message: 'the webhook signature header is missing' };
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',').slice(0, 2 + MAX_WEBHOOK_SIGNATURES)) {
    const [key, value] = part.trim().split('=', 2);
    if (key === 't' && value && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && value && /^[0-9a-f]{64}$/.test(value))
      signatures.push(Buffer.from(value, 'hex'));
  }
  if (timestamp === undefined || signatures.length === 0)
    return { ok: false, message: 'the webhook signature header is malformed' };
  const expected = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest();
  if (!signatures.some((s) => timingSafeEqual(s, expected)))
    return { ok: false, message: 'the webhook signature does not match the body' };
  if (toleranceSeconds > 0 && Math.abs(nowSeconds - timestamp) > toleranceSeconds)
    return { ok: false, message: 'the webhook signature is outside the tolerance window' };
  return { ok: true };
}

/**
 * The simulator's webhook secret: kept in the data directory (mode 0600) so a restart keeps it, made on
 * first use. Tests and demos read it from the provider (`signWebhook`, `webhookFor`), not from disk.
 */
export function loadSimulatedWebhookSecret(dataDir: string): string {
  const file = path.join(dataDir, 'secrets', 'simulated-webhook-secret');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const secret = `whsec_sim_${randomBytes(24).toString('base64url')}`;
  fs.writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}
