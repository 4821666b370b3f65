/**
 * @module ticket-desk
 * Gate-side checks: a ticket is valid when its signature verifies (what a gate can do offline with the
 * JWKS) and, online, when its booking is still confirmed and the ticket not revoked. Check-in admits once.
 */

import type { Store } from '../persistence/store.js';
import type { TicketSigner } from '../tickets/ticket-signer.js';
import { type Failure, failure } from './failure.js';

export interface TicketVerdict {
  valid: boolean;
  reason?: string;
  booking?: {
    id: string;
    showId: string;
    seats: string[];
    holderName: string;
    status: string;
    checkedInAt: string | null;
  };
}

interface TicketRow {
  booking_id: string;
  status: string;
  show_id: string;
  seats: string;
  revoked_at: string | null;
  checked_in_at: string | null;
  code: string;
}

export class TicketDesk {
  constructor(
    private readonly store: Store,
    private readonly signer: TicketSigner,
    private readonly now: () => number,
  ) {}

  async verify(code: string): Promise<TicketVerdict> {
    const checked = await this.signer.verify(code);
    if (!checked.valid) return { valid: false, reason: checked.reason };
    const { claims } = checked;
    const row = await this.store.get<TicketRow>(
      `SELECT t.booking_id, b.status, b.show_id, b.seats, t.revoked_at, t.checked_in_at, t.code
       FROM tickets t JOIN bookings b ON b.id = t.booking_id WHERE t.booking_id = ?`,
      [claims.bookingId],
    );
    if (!row) return { valid: false, reason: 'unknown booking' };
    const booking = {
      id: row.booking_id,
      showId: row.show_id,
      seats: JSON.parse(row.seats) as string[],
      holderName: claims.holderName,
      status: row.status,
      checkedInAt: row.checked_in_at,
    };
    if (row.code !== code) return { valid: false, reason: 'superseded ticket code', booking };
    if (row.revoked_at || row.status !== 'confirmed')
      return { valid: false, reason: `booking is ${row.status}`, booking };
    return { valid: true, booking };
  }

  async checkIn(
    verdict: TicketVerdict,
  ): Promise<{ ok: true; booking: NonNullable<TicketVerdict['booking']> } | Failure> {
    if (!verdict.valid || !verdict.booking)
      return failure('RULE_VIOLATION', `ticket not valid: ${verdict.reason ?? 'unknown'}`, {
        reason: verdict.reason,
      });
    const at = new Date(this.now()).toISOString();
    // Admits once: of racing check-ins (two gates), the conditional UPDATE lets exactly one change the row.
    const admitted = await this.store.run(
      'UPDATE tickets SET checked_in_at = ? WHERE booking_id = ? AND checked_in_at IS NULL',
      [at, verdict.booking.id],
    );
    if (admitted.changes === 0)
      return failure(
        'ALREADY_CHECKED_IN',
        `this ticket was already admitted at ${verdict.booking.checkedInAt}`,
        {
          checkedInAt: verdict.booking.checkedInAt,
        },
      );
    return { ok: true, booking: { ...verdict.booking, checkedInAt: at } };
  }
}
