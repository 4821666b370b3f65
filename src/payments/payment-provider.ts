/**
 * @module payments/payment-provider
 * The `PaymentProvider` port the booking saga pays through, and the types both adapters share (the
 * Stripe adapter and the offline simulator). Amounts are integer minor units. Expected failures (bad card
 * details, provider down) are `Failure` values; a decline is not a failure of the call but an intent whose
 * status is `failed`, so the saga can tell "try again" from "the bank said no".
 */
import type { ErrorCode, Failure } from '../domain/failure.js';
import type { Queryable } from '../persistence/store.js';

export type PaymentMethod = 'card' | 'upi' | 'wallet';

/**
 * Where a payment intent stands, in the port's words (the Stripe adapter maps Stripe's statuses onto it).
 * - `requires_payment`: created, nothing paid yet (Stripe: requires_payment_method without an error,
 *   requires_confirmation).
 * - `requires_action`: the customer must finish something with the provider (3-D Secure, a UPI app); the
 *   webhook reports the outcome.
 * - `processing`: the provider is still deciding; the webhook reports the outcome.
 * - `succeeded`: the money is captured. `failed`: declined. `refunded`: captured, then given back.
 * - `canceled`: abandoned before any capture.
 */
export type IntentStatus =
  | 'requires_payment'
  | 'requires_action'
  | 'processing'
  | 'succeeded'
  | 'failed'
  | 'refunded'
  | 'canceled';

export interface CreateIntentInput {
  amountMinor: number;
  /** ISO 4217, any case; adapters normalise it. */
  currency: string;
  method: PaymentMethod;
  bookingId: string;
  /** The same key always yields the same intent (a retried request never charges twice). */
  idempotencyKey: string;
}

export interface CreatedIntent {
  ok: true;
  provider: string;
  intentId: string;
  /** What a browser SDK needs to confirm the intent itself (Stripe.js); absent for the simulator. */
  clientSecret?: string;
  status: IntentStatus;
}

/** The customer's proof of payment, as POST /api/payments carries it. */
export interface PaymentProofInput {
  method: PaymentMethod;
  /** Simulator only: a raw test card. Never stored, never logged; only brand and last four are kept. */
  card?: { number: string; expiry: string; cvc: string };
  upiId?: string;
  walletId?: string;
  /** Stripe: a PaymentMethod id made by Stripe.js (or a test one such as `pm_card_visa`). */
  paymentMethodId?: string;
}

export interface ConfirmInput extends PaymentProofInput {
  intentId: string;
  idempotencyKey: string;
}

export interface IntentState {
  ok: true;
  intentId: string;
  status: IntentStatus;
  amountMinor: number;
  currency: string;
  /** Set when `status` is `failed`: a short machine reason such as `card_declined` or `insufficient_funds`. */
  failureReason?: string;
  cardBrand?: string;
  cardLast4?: string;
}

export interface RefundInput {
  intentId: string;
  idempotencyKey: string;
}

export interface RefundResult {
  ok: true;
  refundId: string;
  /** `pending` refunds complete later; the provider's webhook says when. */
  status: 'succeeded' | 'pending';
  amountMinor: number;
}

/**
 * What a verified webhook means for the saga. `ignored` is an event the saga has no transition for
 * (Stripe sends many kinds); the endpoint still answers 200 so the provider stops retrying it.
 */
export type PaymentEventType = 'payment_succeeded' | 'payment_failed' | 'refunded' | 'ignored';

export interface PaymentEvent {
  /** The provider's event id (`evt_…`), for logs and de-duplication. */
  id: string;
  /** The provider's own name for the event, e.g. `payment_intent.succeeded`. */
  providerType: string;
  type: PaymentEventType;
  /** The intent the event is about; empty for an ignored event that names none. */
  intentId: string;
  failureReason?: string;
}

export type ParsedWebhook = { ok: true; event: PaymentEvent } | { ok: false; message: string };

export interface PaymentProvider {
  /** Stored in `payments.provider` and used as a metrics label: `simulated` or `stripe`. */
  readonly name: string;
  createIntent(input: CreateIntentInput): Promise<CreatedIntent | Failure>;
  /**
   * Pays the intent with the customer's proof. Resolves `ok: true` with status `failed` on a decline;
   * `INVALID_CARD` / `VALIDATION_FAILED` when the proof is malformed (the intent is untouched and may be
   * paid again); `PROVIDER_UNAVAILABLE` when the provider could not be reached. Confirming an intent
   * that already succeeded answers its state again.
   */
  confirm(input: ConfirmInput): Promise<IntentState | Failure>;
  /** The intent's current state, for reconciliation after a crash. */
  retrieve(intentId: string): Promise<IntentState | Failure>;
  /** Refunds a succeeded intent in full; the same key, or a second call, answers the same refund. */
  refund(input: RefundInput): Promise<RefundResult | Failure>;
  /** Verifies the signature (and its age) of a webhook body, then reads it. Never throws. */
  parseWebhook(rawBody: string, signature: string | undefined): ParsedWebhook;
  /**
   * Only a provider whose ledger lives in the app database (the simulator): `createIntent` and `confirm`
   * as writes on the caller's own transaction (`tx`), so the provider's rows and the
   * booking's (the intent with the booking, the capture with the payment row) commit once, together.
   * They need no flush first: a later commit in the same WAL can never outlive an earlier one.
   * A remote provider (Stripe) leaves it out; its calls are round trips that must follow a commit.
   */
  readonly inTransaction?: LedgerInTransaction;
}

/**
 * The same-database half of a provider (see `PaymentProvider.inTransaction`): only statements on `tx`,
 * no other await, so the caller's transaction stays short.
 */
export interface LedgerInTransaction {
  createIntent(tx: Queryable, input: CreateIntentInput): Promise<CreatedIntent | Failure>;
  confirm(tx: Queryable, input: ConfirmInput): Promise<IntentState | Failure>;
}

/** Webhook signatures older than this are refused (a replayed capture); Stripe's default too. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

export function providerFailure(
  code: ErrorCode,
  message: string,
  details?: Record<string, unknown>,
): Failure {
  return details ? { ok: false, code, message, details } : { ok: false, code, message };
}

/** The parts of a Stripe-shaped event both adapters read (the simulator sends the same shape). */
interface StripeShapedEvent {
  id?: unknown;
  type?: unknown;
  data?: { object?: Record<string, unknown> };
}

/**
 * Reads a Stripe-shaped event (`{id, type, data: {object}}`) into the saga's terms:
 * `payment_intent.succeeded`, `payment_intent.payment_failed` and a fully refunded `charge.refunded`;
 * anything else is `ignored`.
 */
export function toPaymentEvent(event: StripeShapedEvent): ParsedWebhook {
  const object = event.data?.object;
  if (typeof event.id !== 'string' || typeof event.type !== 'string' || !object || typeof object !== 'object')
    return { ok: false, message: 'the webhook body is not an event' };
  const base = { id: event.id, providerType: event.type };
  const intentId = typeof object.id === 'string' ? object.id : '';
  switch (event.type) {
    case 'payment_intent.succeeded':
      return { ok: true, event: { ...base, type: 'payment_succeeded', intentId } };
    case 'payment_intent.payment_failed': {
      const error = object.last_payment_error as {
        decline_code?: string;
        code?: string;
        message?: string;
      } | null;
      const failureReason = error?.decline_code ?? error?.code ?? error?.message ?? 'payment_failed';
      return { ok: true, event: { ...base, type: 'payment_failed', intentId, failureReason } };
    }
    case 'charge.refunded': {
      const pi = object.payment_intent as string | { id?: string } | null | undefined;
      const chargeIntentId = typeof pi === 'string' ? pi : (pi?.id ?? '');
      // A partial refund also sends charge.refunded; only a full one (refunded: true) changes the booking.
      if (object.refunded !== true || !chargeIntentId)
        return { ok: true, event: { ...base, type: 'ignored', intentId: chargeIntentId } };
      return { ok: true, event: { ...base, type: 'refunded', intentId: chargeIntentId } };
    }
    default:
      return {
        ok: true,
        event: { ...base, type: 'ignored', intentId: object.object === 'payment_intent' ? intentId : '' },
      };
  }
}
