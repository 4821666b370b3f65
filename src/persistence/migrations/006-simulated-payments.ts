import type { Migration } from './index.js';

/**
 * The simulated payment provider's own ledger. It plays the part of the provider's servers, so it keeps
 * its intents apart from the saga's `payments` rows: reconciliation after a restart asks it what happened
 * exactly as it would ask Stripe. No card number is ever stored, only the brand and last four.
 */
export const m006: Migration = {
  id: 6,
  name: 'simulated-payments',
  sql: `
CREATE TABLE simulated_payment_intents (
  id TEXT PRIMARY KEY,
  idempotency_key TEXT NOT NULL UNIQUE,
  booking_id TEXT NOT NULL,
  amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
  currency TEXT NOT NULL,
  method TEXT NOT NULL CHECK (method IN ('card', 'upi', 'wallet')),
  status TEXT NOT NULL CHECK (status IN ('requires_payment', 'requires_action', 'processing', 'succeeded', 'failed', 'refunded', 'canceled')),
  failure_reason TEXT,
  card_brand TEXT,
  card_last4 TEXT,
  refund_id TEXT UNIQUE,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX simulated_payment_intents_booking ON simulated_payment_intents (booking_id);
`,
};
