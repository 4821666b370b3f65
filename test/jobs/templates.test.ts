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
    const email = renderEmail(cancelled({ ...BOOKING_DATA, reason }));
    expect(email.subject).toBe('Booking cancelled: The Long Night');
    expect(email.text).toContain(reason);
    expect(email.html).toContain('cancelled by the theater');
    expect(renderSms(cancelled({ ...BOOKING_DATA, reason }))).toContain(reason);
  });

  it('keeps the refund line when the customer cancelled', async () => {
    const email = renderEmail(cancelled(BOOKING_DATA));
    expect(email.text).toContain('Any refund goes back to your original payment method.');
    expect(email.text).not.toContain('theater;');
    expect(renderSms(cancelled(BOOKING_DATA))).toContain('Any refund goes to your original payment method.');
  });
});

describe('show times', () => {
  const at13utc = { ...BOOKING_DATA, startTime: '2030-12-07T13:00:00.000Z' };
  const reminder = (data: NotificationData) => ({
    id: 'ntf_2',
    template: 'show_reminder' as const,
    recipient: '+919876543210',
    data,
  });

  it('gives the reminder in the theater’s zone, named by its abbreviation or offset', async () => {
    const kolkata = { ...at13utc, timeZone: 'Asia/Kolkata' };
    expect(renderEmail(reminder(kolkata)).text).toContain(
      'The Long Night starts at Sat 7 Dec 2030, 6:30 pm IST.',
    );
    expect(renderSms(reminder(kolkata))).toContain('starts Sat 7 Dec 2030, 6:30 pm IST.');
    // No abbreviation in common use: the offset, and the local date, which is already the next day.
    expect(renderSms(reminder({ ...at13utc, timeZone: 'Pacific/Kiritimati' }))).toContain(
      'starts Sun 8 Dec 2030, 3:00 am GMT+14.',
    );
  });

  it('says UTC when the row has no zone (queued before theaters had one) or one it does not know', () => {
    expect(renderSms(reminder(at13utc))).toContain('Sat 7 Dec 2030, 1:00 pm UTC');
    expect(renderSms(reminder({ ...at13utc, timeZone: 'Mars/Olympus_Mons' }))).toContain('1:00 pm UTC');
  });
});
