import type { Migration } from './index.js';

/**
 * A theater's IANA time zone: every text a person reads (emails, SMS, reminders) gives show times in
 * the theater's local time, never UTC. Every theater so far is in India, so existing rows (the demo
 * seed's included) take `Asia/Kolkata`.
 */
export const m009: Migration = {
  id: 9,
  name: 'theater-time-zones',
  sql: `
ALTER TABLE theaters ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Asia/Kolkata';
`,
};
