/**
 * @module payments/stripe-provider
 * The Stripe adapter of the `PaymentProvider` port, through the official `stripe` client: PaymentIntents
 * (created with our idempotency key, confirmed server-side with a PaymentMethod id, or by the browser with
 * the client secret), refunds, and signed webhooks. Raw card numbers never pass through us: Stripe.js
 * turns them into a PaymentMethod on the customer's device.
 *
 * @example
 * const provider = new StripePaymentProvider({ secretKey: 'sk_test_…', webhookSecret: 'whsec_…' });
 * // or against a local stand-in: { …, apiBase: 'http://127.0.0.1:12111' }
 */
import Stripe from 'stripe';
import type { Failure } from '../domain/failure.js';
import {
  type ConfirmInput,
  type CreatedIntent,
  type CreateIntentInput,
  type IntentState,
  type IntentStatus,
  type ParsedWebhook,
  type PaymentMethod,
  type PaymentProvider,
  providerFailure,
  type RefundInput,
  type RefundResult,
  toPaymentEvent,
  WEBHOOK_TOLERANCE_SECONDS,
} from './payment-provider.js';

/** Stripe's client retries network errors and 5xx with the same idempotency key; a few is plenty. */
export const STRIPE_MAX_NETWORK_RETRIES = 2;
export const STRIPE_TIMEOUT_MS = 15_000;

export interface StripeProviderOptions {
  secretKey: string;
  webhookSecret: string;
  /** e.g. `http://127.0.0.1:12111` for a local stand-in; default Stripe's own API. */
  apiBase?: string;
  maxNetworkRetries?: number;
  timeoutMs?: number;
  webhookToleranceSeconds?: number;
}

/**
 * Wallets (Apple Pay, Google Pay) reach Stripe as card PaymentMethods, so `wallet` intents accept cards.
 * UPI is its own Stripe payment method type.
 */
const STRIPE_TYPE_BY_METHOD: Record<PaymentMethod, string> = { card: 'card', upi: 'upi', wallet: 'card' };

export class StripePaymentProvider implements PaymentProvider {
  readonly name = 'stripe';
  readonly #stripe: Stripe;
  readonly #webhookSecret: string;
  readonly #toleranceSeconds: number;

  constructor(options: StripeProviderOptions) {
    this.#stripe = new Stripe(options.secretKey, {
      ...stripeEndpoint(options.apiBase),
      maxNetworkRetries: options.maxNetworkRetries ?? STRIPE_MAX_NETWORK_RETRIES,
      timeout: options.timeoutMs ?? STRIPE_TIMEOUT_MS,
      telemetry: false,
      appInfo: { name: 'BoxOffice' },
    });
    this.#webhookSecret = options.webhookSecret;
    this.#toleranceSeconds = options.webhookToleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  }

  async createIntent(input: CreateIntentInput): Promise<CreatedIntent | Failure> {
    try {
      const intent = await this.#stripe.paymentIntents.create(
        {
          amount: input.amountMinor,
          currency: input.currency.toLowerCase(),
          allowed_payment_method_types: [STRIPE_TYPE_BY_METHOD[input.method]],
          description: `BoxOffice booking ${input.bookingId}`,
          metadata: { bookingId: input.bookingId, method: input.method },
        },
        { idempotencyKey: input.idempotencyKey },
      );
      return {
        ok: true,
        provider: this.name,
        intentId: intent.id,
        ...(intent.client_secret ? { clientSecret: intent.client_secret } : {}),
        status: statusOf(intent),
      };
    } catch (err) {
      return failureOf(err);
    }
  }

  async confirm(input: ConfirmInput): Promise<IntentState | Failure> {
    if (input.card)
      return providerFailure(
        'VALIDATION_FAILED',
        'card numbers are not accepted with Stripe; send the paymentMethodId that Stripe.js created',
        { fields: { card: 'not accepted; use paymentMethodId' } },
      );
    // No payment method: the browser confirmed with the client secret; answer what Stripe knows.
    if (!input.paymentMethodId) {
      const state = await this.retrieve(input.intentId);
      if (state.ok && state.status === 'requires_payment')
        return providerFailure('VALIDATION_FAILED', 'paymentMethodId is required to pay this intent', {
          fields: { paymentMethodId: 'required' },
        });
      return state;
    }
    try {
      const intent = await this.#stripe.paymentIntents.confirm(
        input.intentId,
        { payment_method: input.paymentMethodId, expand: ['payment_method'] },
        { idempotencyKey: input.idempotencyKey },
      );
      return stateOf(intent);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeCardError) return declineOf(err, input.intentId);
      // Already succeeded (or being processed): not an error for us, just read its state.
      if (
        err instanceof Stripe.errors.StripeInvalidRequestError &&
        err.code === 'payment_intent_unexpected_state'
      )
        return this.retrieve(input.intentId);
      return failureOf(err);
    }
  }

  async retrieve(intentId: string): Promise<IntentState | Failure> {
    try {
      return stateOf(await this.#stripe.paymentIntents.retrieve(intentId, { expand: ['payment_method'] }));
    } catch (err) {
      return failureOf(err);
    }
  }

  async refund(input: RefundInput): Promise<RefundResult | Failure> {
    try {
      const refund = await this.#stripe.refunds.create(
        { payment_intent: input.intentId, reason: 'requested_by_customer' },
        { idempotencyKey: input.idempotencyKey },
      );
      if (refund.status === 'failed' || refund.status === 'canceled')
        return providerFailure('PROVIDER_UNAVAILABLE', `the refund ${refund.id} is ${refund.status}`);
      return {
        ok: true,
        refundId: refund.id,
        status: refund.status === 'succeeded' ? 'succeeded' : 'pending',
        amountMinor: refund.amount,
      };
    } catch (err) {
      return failureOf(err);
    }
  }

  parseWebhook(rawBody: string, signature: string | undefined): ParsedWebhook {
    if (!signature) return { ok: false, message: 'the stripe-signature header is missing' };
    let event: Stripe.Event;
    try {
      // Stripe stamps signatures with the wall clock, so their age is judged by it too (not by the
      // injectable business clock).
      event = this.#stripe.webhooks.constructEvent(
        rawBody,
        signature,
        this.#webhookSecret,
        this.#toleranceSeconds,
      );
    } catch (err) {
      return { ok: false, message: `webhook refused: ${(err as Error).message}` };
    }
    return toPaymentEvent(event as unknown as Parameters<typeof toPaymentEvent>[0]);
  }
}

/** `STRIPE_API_BASE` → the client's host, port and protocol options. */
export function stripeEndpoint(apiBase: string | undefined): {
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
} {
  if (!apiBase) return {};
  const url = new URL(apiBase);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443,
    protocol,
  };
}

/** Stripe's statuses in the port's words; a payment method refused by the bank reads as `failed`. */
export function statusOf(intent: Pick<Stripe.PaymentIntent, 'status' | 'last_payment_error'>): IntentStatus {
  switch (intent.status) {
    case 'succeeded':
      return 'succeeded';
    case 'processing':
    case 'requires_capture':
      return 'processing';
    case 'requires_action':
      return 'requires_action';
    case 'canceled':
      return 'canceled';
    case 'requires_payment_method':
      return intent.last_payment_error ? 'failed' : 'requires_payment';
    default:
      return 'requires_payment';
  }
}

function cardOf(method: string | Stripe.PaymentMethod | null | undefined): {
  cardBrand?: string;
  cardLast4?: string;
} {
  if (!method || typeof method === 'string' || !method.card) return {};
  return { cardBrand: method.card.brand, cardLast4: method.card.last4 };
}

function stateOf(intent: Stripe.PaymentIntent): IntentState {
  const status = statusOf(intent);
  const error = intent.last_payment_error;
  return {
    ok: true,
    intentId: intent.id,
    status,
    amountMinor: intent.amount,
    currency: intent.currency.toUpperCase(),
    ...(status === 'failed' ? { failureReason: error?.decline_code ?? error?.code ?? 'payment_failed' } : {}),
    ...cardOf(intent.payment_method ?? error?.payment_method),
  };
}

/** A 402 from confirm: the bank said no. The intent is failed, not the call. */
function declineOf(err: InstanceType<typeof Stripe.errors.StripeCardError>, intentId: string): IntentState {
  const intent = err.payment_intent;
  const failureReason = err.decline_code ?? err.code ?? 'card_declined';
  return {
    ok: true,
    intentId: intent?.id ?? intentId,
    status: 'failed',
    amountMinor: intent?.amount ?? 0,
    currency: (intent?.currency ?? '').toUpperCase(),
    failureReason,
    ...cardOf(err.payment_method ?? intent?.last_payment_error?.payment_method),
  };
}

/** Stripe's exceptions as the port's failures; the message never carries request parameters. */
export function failureOf(err: unknown): Failure {
  const E = Stripe.errors;
  if (err instanceof E.StripeCardError)
    return providerFailure('PAYMENT_FAILED', err.message, { reason: err.decline_code ?? err.code });
  if (err instanceof E.StripeIdempotencyError) return providerFailure('IDEMPOTENCY_KEY_REUSED', err.message);
  if (err instanceof E.StripeInvalidRequestError) {
    if (err.code === 'resource_missing' && !err.param) return providerFailure('NOT_FOUND', err.message);
    if (err.param)
      return providerFailure('VALIDATION_FAILED', err.message, { param: err.param, code: err.code });
    return providerFailure('INVALID_STATE', err.message, { code: err.code });
  }
  if (err instanceof E.StripeError)
    return providerFailure('PROVIDER_UNAVAILABLE', `stripe: ${err.type}: ${err.message}`, {
      ...(err.requestId ? { requestId: err.requestId } : {}),
    });
  throw err;
}
