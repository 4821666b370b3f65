/**
 * Counts read straight from the app database, for tests that check what a flow recorded (once, not
 * twice) beyond what the API shows. They go through the store seam, so the same check runs on SQLite
 * and on PostgreSQL.
 */
import type { Queryable } from '../../src/persistence/store.js';

/** How many `booking_events` rows of this status the booking has. */
export async function bookingEventCount(db: Queryable, bookingId: string, status: string): Promise<number> {
  const row = await db.get<{ n: number }>(
    'SELECT COUNT(*) AS n FROM booking_events WHERE booking_id = ? AND status = ?',
    [bookingId, status],
  );
  return row?.n ?? 0;
}

/** How many notifications of this template the booking queued (email and SMS count apart). */
export async function notificationCount(db: Queryable, bookingId: string, template: string): Promise<number> {
  const row = await db.get<{ n: number }>(
    'SELECT COUNT(*) AS n FROM notifications WHERE booking_id = ? AND template = ?',
    [bookingId, template],
  );
  return row?.n ?? 0;
}
