/** The data a booking's notifications carry, as the booking saga writes it, for the jobs' tests. */
import type { NotificationData } from '../../src/jobs/outbox.js';

export const BOOKING_DATA: NotificationData = {
  bookingId: 'bkg_1',
  userName: 'Asha',
  movieTitle: 'The Long Night',
  theaterName: 'Orion Cinemas',
  startTime: '2030-06-14T18:30:00.000Z',
  seats: ['C4', 'C5'],
  amount: { total: 70_000, currency: 'INR' },
  ticketCode: 'TKT.eyJiIjoiYmtnXzEifQ.sig',
};

/** `6:30 pm IST`: how the texts give a time in a theater in India (every fixture theater is). */
export function indianClockTime(iso: string): string {
  const time = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Asia/Kolkata',
    hour: 'numeric',
    minute: '2-digit',
    hourCycle: 'h12',
  }).format(Date.parse(iso));
  return `${time} IST`;
}
