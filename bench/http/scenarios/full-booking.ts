/**
 * @module bench/http/scenarios/full-booking
 * Scenario 4: hold, book, pay with the simulated provider (card 4242 4242 4242 4242), over many shows,
 * each connection on a fresh seat every cycle. Reported: bookings/s (confirmed payments) and the p99 of
 * a whole booking from the hold's send to the payment's reply, besides the per-request figures. Seats
 * are used once, so the show count grows with the duration.
 */
import { bookOnce } from '../client.js';
import { type BenchContext, loadRow, type Row, usersFor, withCeiling, withService } from '../context.js';
import { type BookingCounters, fullBookingRequests, SlotPool, staticRequests, TEST_CARD } from '../cycles.js';
import { type BenchUser, createShows, SEAT_LABELS } from '../fixtures.js';
import { journalFigures } from '../journal.js';
import { Latencies, round } from '../latency.js';
import { runPaired } from '../load.js';
import { CYCLE_USERS } from './hold-release.js';

export const SCENARIO = '4 full booking';
/** Sized for this many bookings a second without running out of seats. */
const PLANNED_BOOKINGS_PER_SECOND = 1500;

export async function fullBooking(ctx: BenchContext): Promise<Row[]> {
  const { options } = ctx;
  const users = usersFor(ctx, CYCLE_USERS);
  const counters: BookingCounters = { booked: 0, latencies: new Latencies() };
  const seconds = options.seconds + options.warmupSeconds;
  const shows = Math.max(
    options.shows,
    Math.ceil((PLANNED_BOOKINGS_PER_SECOND * seconds) / SEAT_LABELS.length),
  );
  const common = {
    connections: options.connections,
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
  };
  const [service, ceiling, bodyBytes, journal] = await withService(
    ctx,
    'full-booking',
    async ({ service, client, adminToken, cpu }) => {
      const showIds = await createShows(client, adminToken, shows);
      const bodyBytes = await probeBooking(client, showIds.pop()!, users[0]!.token);
      const loads = await withCeiling(ctx, bodyBytes, (peer) =>
        runPaired(
          {
            ...common,
            url: service.url,
            ...cpu,
            requests: fullBookingRequests(new SlotPool(showIds, SEAT_LABELS), users, counters),
            onMeasureStart: () => {
              counters.booked = 0;
              counters.latencies = new Latencies();
            },
          },
          { ...common, url: peer.url, pids: [peer.managed.child.pid], requests: ceilingRequests(users[0]!) },
        ),
      );
      return [...loads, bodyBytes, await journalFigures(client)] as const;
    },
  );
  const booking = counters.latencies.summary();
  return [
    loadRow(SCENARIO, 'service', service, ceiling, {
      bookingsPerSecond: round(counters.booked / service.seconds, 1),
      bookingP50Ms: booking.p50Ms,
      bookingP99Ms: booking.p99Ms,
      shows,
      connections: options.connections,
      journal,
    }),
    loadRow(SCENARIO, 'ceiling', ceiling, undefined, { bodyBytes: Math.round(bodyBytes) }),
  ];
}

function ceilingRequests(user: BenchUser) {
  return staticRequests(
    [
      { method: 'POST', path: '/api/shows/shw_x/holds', body: JSON.stringify({ seats: ['H10'] }) },
      {
        method: 'POST',
        path: '/api/bookings',
        body: JSON.stringify({ holdId: 'hld_x', paymentMethod: 'card' }),
      },
      {
        method: 'POST',
        path: '/api/payments',
        body: JSON.stringify({ bookingId: 'bkg_x', method: 'card', card: TEST_CARD }),
      },
    ],
    user,
  );
}

/** One booking by hand: checks the chain works and gives the mean body size of its three replies. */
async function probeBooking(client: import('../client.js').JsonClient, showId: string, token: string) {
  const [held, booked, paid] = await bookOnce(client, showId, 'A1', token, 'booking probe');
  return (held.bytes + booked.bytes + paid.bytes) / 3;
}
