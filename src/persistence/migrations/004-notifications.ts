import type { Migration } from './index.js';

/**
 * Notification delivery support.
 * - `dedupe_key`: a saga that runs twice (a retried confirm) queues each booking notification once.
 * - `locked_until`: a delivery lease, so two runs of one job (a stalled BullMQ job picked up again, or a job
 *   re-created after Redis lost its data) never send at the same time.
 * - `notifications_due`: the sweep that re-schedules queued notifications reads by (status, send_at).
 */
export const m004: Migration = {
  id: 4,
  name: 'notifications',
  sql: `
ALTER TABLE notifications ADD COLUMN dedupe_key TEXT;
ALTER TABLE notifications ADD COLUMN locked_until TEXT;
CREATE UNIQUE INDEX notifications_dedupe ON notifications (dedupe_key);
CREATE INDEX notifications_due ON notifications (status, send_at);
`,
};
