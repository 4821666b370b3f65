import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 007: when a cancelled booking's seats went back on sale. */
export const p007: Migration = {
  id: 7,
  name: 'seat-release',
  sql: `
ALTER TABLE bookings ADD COLUMN seats_released_at text;
UPDATE bookings SET seats_released_at = cancelled_at WHERE status = 'cancelled';
CREATE INDEX bookings_unreleased ON bookings (status, seats_released_at) WHERE seats_released_at IS NULL;
`,
};
