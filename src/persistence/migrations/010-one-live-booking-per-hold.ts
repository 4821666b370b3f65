import type { Migration } from './index.js';

/**
 * One live booking per hold, enforced by the database: a second booking of the same hold would charge
 * twice for the same seats. The booking saga used to check it with a read in its transaction, which is
 * enough when transactions run one at a time (SQLite) but not under PostgreSQL's concurrent ones; the
 * index turns the race into a clean refusal (`ON CONFLICT DO NOTHING`, then a 409) on both stores.
 */
export const m010: Migration = {
  id: 10,
  name: 'one-live-booking-per-hold',
  sql: `
CREATE UNIQUE INDEX bookings_live_hold ON bookings (hold_id) WHERE status IN ('pending_payment', 'confirmed');
`,
};
