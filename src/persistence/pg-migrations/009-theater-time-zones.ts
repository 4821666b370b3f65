import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 009: a theater's IANA time zone. */
export const p009: Migration = {
  id: 9,
  name: 'theater-time-zones',
  sql: `
ALTER TABLE theaters ADD COLUMN time_zone text NOT NULL DEFAULT 'Asia/Kolkata';
`,
};
