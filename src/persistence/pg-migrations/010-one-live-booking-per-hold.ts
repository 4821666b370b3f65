import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 010: one live (pending or confirmed) booking per hold. */
export const p010: Migration = {
  id: 10,
  name: 'one-live-booking-per-hold',
  sql: `
CREATE UNIQUE INDEX bookings_live_hold ON bookings (hold_id) WHERE status IN ('pending_payment', 'confirmed');
`,
};
