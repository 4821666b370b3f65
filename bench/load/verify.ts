/**
 * @module bench/load/verify
 * Correctness after the load, through the API only: every booking the run saw confirmed is read back
 * (`GET /api/bookings/:id` with its owner's token) and every seat map it touched; no seat may be in two
 * confirmed bookings, every seat of a confirmed booking must show as booked, and no seat may have been
 * granted to two holds at once as the clients saw it. Other traffic on the target cannot fail the check:
 * it only asks that the run's own bookings hold.
 */
import { mapLimit } from '../http/client.js';
import type { ConfirmedBooking } from './journeys.js';
import type { SeatMap, TargetClient } from './target.js';
import { seatMap } from './target.js';

/** Bookings read back at most; a longer run's check says how many it left out. */
export const MAX_BOOKINGS_CHECKED = 20_000;
const CHECK_CONCURRENCY = 8;

export interface SeatCheck {
  isOk: boolean;
  bookingsConfirmed: number;
  bookingsChecked: number;
  /** Bookings the run saw confirmed that the service does not show confirmed. */
  bookingsNotConfirmed: number;
  /** Seats in more than one confirmed booking (as the service shows them). */
  seatsInTwoBookings: number;
  /** Seats of confirmed bookings not `booked` in the seat map. */
  seatsMissingFromMap: number;
  /** Seats granted to two holds at once, as the clients saw the grants (no releases in these runs). */
  seatsGrantedTwice: number;
}

export interface ReadBack {
  bookings: ({ id: string; showId: string; seats: string[]; status: string } | undefined)[];
  maps: SeatMap[];
}

/** The pure part: what the read-back says about the run's bookings and grants. */
export function judge(grants: Map<string, number>, confirmed: number, readBack: ReadBack): SeatCheck {
  const owner = new Map<string, string>();
  let seatsInTwoBookings = 0;
  let bookingsNotConfirmed = 0;
  for (const booking of readBack.bookings) {
    if (booking?.status !== 'confirmed') {
      bookingsNotConfirmed++;
      continue;
    }
    for (const seat of booking.seats) {
      const key = `${booking.showId}/${seat}`;
      const other = owner.get(key);
      if (other !== undefined && other !== booking.id) seatsInTwoBookings++;
      else owner.set(key, booking.id);
    }
  }
  const booked = new Set<string>();
  for (const map of readBack.maps)
    for (const seat of map.seats) if (seat.status === 'booked') booked.add(`${map.showId}/${seat.id}`);
  let seatsMissingFromMap = 0;
  for (const key of owner.keys()) if (!booked.has(key)) seatsMissingFromMap++;
  let seatsGrantedTwice = 0;
  for (const count of grants.values()) if (count > 1) seatsGrantedTwice++;
  const check = {
    bookingsConfirmed: confirmed,
    bookingsChecked: readBack.bookings.length,
    bookingsNotConfirmed,
    seatsInTwoBookings,
    seatsMissingFromMap,
    seatsGrantedTwice,
  };
  return {
    isOk: bookingsNotConfirmed + seatsInTwoBookings + seatsMissingFromMap + seatsGrantedTwice === 0,
    ...check,
  };
}

export async function verifyBookings(
  client: TargetClient,
  confirmed: readonly ConfirmedBooking[],
  grants: Map<string, number>,
): Promise<SeatCheck> {
  const sample = confirmed.slice(0, MAX_BOOKINGS_CHECKED);
  const bookings = await mapLimit(sample, CHECK_CONCURRENCY, async (b) => {
    const reply = await client.request<{ booking: ReadBack['bookings'][number] }>(
      'GET',
      `/api/bookings/${encodeURIComponent(b.id)}`,
      {
        token: b.token,
      },
    );
    return reply.status === 200 ? reply.body.booking : undefined;
  });
  const showIds = [...new Set(sample.map((b) => b.showId))];
  const maps = await mapLimit(showIds, CHECK_CONCURRENCY, (id) => seatMap(client, id));
  return judge(grants, confirmed.length, { bookings, maps });
}
