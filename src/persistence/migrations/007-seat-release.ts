import type { Migration } from './index.js';

/**
 * `seats_released_at`: when the actor put a cancelled booking's seats back on sale. A cancellation is
 * recorded first and released second, so a crash in between leaves seats off sale (safe) rather than a
 * valid ticket for seats someone else can buy; reconciliation releases what is still pending.
 */
export const m007: Migration = {
  id: 7,
  name: 'seat-release',
  sql: `
ALTER TABLE bookings ADD COLUMN seats_released_at TEXT;
UPDATE bookings SET seats_released_at = cancelled_at WHERE status = 'cancelled';
CREATE INDEX bookings_unreleased ON bookings (status, seats_released_at) WHERE seats_released_at IS NULL;
`,
};
