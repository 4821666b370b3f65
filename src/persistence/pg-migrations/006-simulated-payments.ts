import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 006: the simulated payment provider's own ledger. */
export const p006: Migration = {
  id: 6,
  name: 'simulated-payments',
  sql: `
CREATE TABLE simulated_payment_intents (
  id text PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  booking_id text NOT NULL,
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  currency text NOT NULL,
  method text NOT NULL CHECK (method IN ('card', 'upi', 'wallet')),
  status text NOT NULL CHECK (status IN ('requires_payment', 'requires_action', 'processing', 'succeeded', 'failed', 'refunded', 'canceled')),
  failure_reason text,
  card_brand text,
  card_last4 text,
  refund_id text UNIQUE,
  created_at text NOT NULL,
  updated_at text NOT NULL
);
CREATE INDEX simulated_payment_intents_booking ON simulated_payment_intents (booking_id);
`,
};
