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
