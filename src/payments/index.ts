/**
 * @module payments
 * Picks the payment adapter from the config: `PAYMENT_PROVIDER=simulated` (default, offline, its ledger
 * in the app database) or `stripe` (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, optional STRIPE_API_BASE).
 */
import type { Config } from '../config.js';
import type { Store } from '../persistence/store.js';
import type { PaymentProvider } from './payment-provider.js';
import { loadSimulatedWebhookSecret, SimulatedPaymentProvider } from './simulated-provider.js';
import { StripePaymentProvider } from './stripe-provider.js';

export type { PaymentProvider } from './payment-provider.js';
export { SimulatedPaymentProvider } from './simulated-provider.js';
export { StripePaymentProvider } from './stripe-provider.js';

type PaymentConfig = Pick<
  Config,
  'PAYMENT_PROVIDER' | 'STRIPE_SECRET_KEY' | 'STRIPE_WEBHOOK_SECRET' | 'STRIPE_API_BASE' | 'dataDir'
>;

/**
 * The simulator signs its webhooks with STRIPE_WEBHOOK_SECRET when one is set (so a client can sign test
 * events with a known secret), else with a secret kept in DATA_DIR/secrets.
 *
 * @example
 * const payments = createPaymentProvider(config, store, now);
 */
export function createPaymentProvider(
  config: PaymentConfig,
  store: Store,
  now: () => number = Date.now,
): PaymentProvider {
  if (config.PAYMENT_PROVIDER === 'stripe') {
    if (!config.STRIPE_SECRET_KEY || !config.STRIPE_WEBHOOK_SECRET)
      throw new Error('PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET');
    return new StripePaymentProvider({
      secretKey: config.STRIPE_SECRET_KEY,
      webhookSecret: config.STRIPE_WEBHOOK_SECRET,
      apiBase: config.STRIPE_API_BASE,
    });
  }
  return new SimulatedPaymentProvider(store, {
    webhookSecret: config.STRIPE_WEBHOOK_SECRET ?? loadSimulatedWebhookSecret(config.dataDir),
    now,
  });
}

/**
 * Group commit's rule for the provider: every call that can move money (or tell the provider about a
 * booking) waits until the app-database commits before it are flushed, so the provider never holds a
 * charge or a refund for a booking that a power cut could take back. Reads pass straight through.
 *
 * @example
 * const payments = afterDurable(createPaymentProvider(config, store, now), () => groupCommit.whenDurable());
 */
export function afterDurable(provider: PaymentProvider, durable: () => Promise<void>): PaymentProvider {
  return {
    name: provider.name,
    createIntent: async (input) => {
      await durable();
      return provider.createIntent(input);
    },
    confirm: async (input) => {
      await durable();
      return provider.confirm(input);
    },
    refund: async (input) => {
      await durable();
      return provider.refund(input);
    },
    retrieve: (intentId) => provider.retrieve(intentId),
    parseWebhook: (rawBody, signature) => provider.parseWebhook(rawBody, signature),
    // Writes in the caller's own transaction, behind its commits in the same WAL: nothing to wait for.
    ...(provider.inTransaction ? { inTransaction: provider.inTransaction } : {}),
  };
}
