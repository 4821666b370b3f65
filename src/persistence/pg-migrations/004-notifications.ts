import type { Migration } from '../migrations/index.js';

/** Twin of SQLite's 004: notification dedupe keys, delivery leases and the due-sweep index. */
export const p004: Migration = {
  id: 4,
  name: 'notifications',
  sql: `
ALTER TABLE notifications ADD COLUMN dedupe_key text;
ALTER TABLE notifications ADD COLUMN locked_until text;
CREATE UNIQUE INDEX notifications_dedupe ON notifications (dedupe_key);
CREATE INDEX notifications_due ON notifications (status, send_at);
`,
};
