/**
 * Counts read straight from the app database, for tests that check what a flow recorded (once, not
 * twice) beyond what the API shows.
 */
import type { AppDb } from '../../src/persistence/app-db.js';

/** How many `booking_events` rows of this status the booking has. */
export function bookingEventCount(db: AppDb, bookingId: string, status: string): number {
  return db
    .prepare('SELECT COUNT(*) FROM booking_events WHERE booking_id = ? AND status = ?')
    .pluck()
    .get(bookingId, status) as number;
}

/** How many notifications of this template the booking queued (email and SMS count apart). */
export function notificationCount(db: AppDb, bookingId: string, template: string): number {
  return db
    .prepare('SELECT COUNT(*) FROM notifications WHERE booking_id = ? AND template = ?')
    .pluck()
    .get(bookingId, template) as number;
}
