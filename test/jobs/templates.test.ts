/**
 * The cancellation message says why when the customer did not cancel it themselves (the theater
 * cancelled the show), and keeps the usual refund line otherwise; email and SMS alike.
 */
import { describe, expect, it } from 'vitest';
import { renderEmail } from '../../src/jobs/email.js';
import type { NotificationData } from '../../src/jobs/outbox.js';
import { renderSms } from '../../src/jobs/sms.js';
import { BOOKING_DATA } from '../helpers/notifications.js';

const cancelled = (data: NotificationData) => ({
  id: 'ntf_1',
  template: 'booking_cancelled' as const,
  recipient: 'someone@example.com',
  data,
});

describe('booking_cancelled', () => {
  it('tells the customer the reason when one is given', async () => {
    const reason = 'The show was cancelled by the theater; your payment is refunded in full.';
    const email = await renderEmail(cancelled({ ...BOOKING_DATA, reason }));
    expect(email.subject).toBe('Booking cancelled: The Long Night');
    expect(email.text).toContain(reason);
    expect(email.html).toContain('cancelled by the theater');
    expect(renderSms(cancelled({ ...BOOKING_DATA, reason }))).toContain(reason);
  });

  it('keeps the refund line when the customer cancelled', async () => {
    const email = await renderEmail(cancelled(BOOKING_DATA));
    expect(email.text).toContain('Any refund goes back to your original payment method.');
    expect(email.text).not.toContain('theater;');
    expect(renderSms(cancelled(BOOKING_DATA))).toContain('Any refund goes to your original payment method.');
  });
});
