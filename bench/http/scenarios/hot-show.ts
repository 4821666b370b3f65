/**
 * @module bench/http/scenarios/hot-show
 * Scenario 3: the blockbuster's on-sale. Every registered user (5,000 by default) races for one
 * 300-seat show over keep-alive lanes (see ../race.ts); each winner books (`POST /api/bookings`) and
 * pays (`POST /api/payments`, simulated card 4242…) at once. Reported: time until the last seat was
 * held and until the last booking was confirmed, hold requests/s and p50/p99 hold latency, and the
 * check afterwards against the service's own seat map: no seat granted twice, every seat accounted for
 * (booked ⇔ in one confirmed booking, held ⇔ in a hold not confirmed, else available).
 */
import { JsonClient } from '../client.js';
import { type BenchContext, type Row, ratio, usersFor, withCeiling, withService } from '../context.js';
import { createShows, SEAT_LABELS } from '../fixtures.js';
import { journalFigures } from '../journal.js';
import { round } from '../latency.js';
import { type RaceStats, raceUsers, runRace, seatsGrantedTwice, serviceRaceTarget } from '../race.js';
import { fixedCount } from './fixed-count.js';

export const SCENARIO = '3 hot-show race';

export interface RaceCheck {
  seatsGrantedTwice: number;
  booked: number;
  held: number;
  available: number;
  /** Seats whose state in the service differs from what the grants and confirmations say. */
  unaccounted: number;
}

export function checkRace(stats: RaceStats, seatMap: { seats: { id: string; status: string }[] }): RaceCheck {
  const check: RaceCheck = {
    seatsGrantedTwice: seatsGrantedTwice(stats.grants),
    booked: 0,
    held: 0,
    available: 0,
    unaccounted: 0,
  };
  if (seatMap.seats.length !== SEAT_LABELS.length) check.unaccounted += SEAT_LABELS.length;
  for (const seat of seatMap.seats) {
    const expected = stats.confirmed.has(seat.id)
      ? 'booked'
      : stats.grants.has(seat.id)
        ? 'held'
        : 'available';
    if (seat.status === 'booked') check.booked++;
    else if (seat.status === 'held') check.held++;
    else if (seat.status === 'available') check.available++;
    if (seat.status !== expected) check.unaccounted++;
  }
  return check;
}

export function raceNotes(stats: Awaited<ReturnType<typeof runRace>>, users: number, lanes: number) {
  return {
    users,
    lanes,
    seconds: stats.seconds,
    timedOut: stats.timedOut,
    soldOutSeconds: stats.soldOutMs === undefined ? null : round(stats.soldOutMs / 1000, 3),
    holdRequests: stats.holdRequests,
    refused409: stats.refused,
    seatsGranted: stats.grants.size,
    statuses: stats.statuses,
  };
}

export async function hotShow(ctx: BenchContext): Promise<Row[]> {
  const { options } = ctx;
  const users = raceUsers(usersFor(ctx, options.users), options.seed);
  let serviceRow: Row | undefined;
  let bodyBytes = 0;
  await withService(ctx, 'hot-show', async ({ service, client, adminToken }) => {
    const [showId] = await createShows(client, adminToken, 1);
    const lanes = new JsonClient(service.url, options.raceLanes);
    try {
      await lanes.warm(options.raceLanes);
      const stats = await runRace(
        serviceRaceTarget(lanes, showId!, true),
        users,
        options.raceLanes,
        options.raceTimeoutSeconds * 1000,
      );
      const map = await client.request('GET', `/api/shows/${showId}/seats`);
      const check = checkRace(stats, map.body);
      bodyBytes = stats.holdBytes / Math.max(1, stats.holdRequests);
      const holdSeconds = Math.max(0.001, stats.lastHoldMs / 1000);
      const hold = stats.holdLatencies.summary();
      serviceRow = {
        scenario: SCENARIO,
        target: 'service',
        requestsPerSecond: Math.round(stats.holdRequests / holdSeconds),
        p50Ms: hold.p50Ms,
        p99Ms: hold.p99Ms,
        errors: stats.errors,
        non2xx: stats.refused,
        notes: {
          ...raceNotes(stats, users.length, options.raceLanes),
          allConfirmedSeconds: round(stats.lastConfirmMs / 1000, 3),
          seatsConfirmed: stats.confirmed.size,
          bookP99Ms: stats.bookLatencies.summary().p99Ms,
          payP99Ms: stats.payLatencies.summary().p99Ms,
          check,
          journal: await journalFigures(client),
          mode: 'hold, then book and pay each winning hold',
        },
      };
    } finally {
      lanes.close();
    }
  });
  const ceiling = await raceCeiling(ctx, bodyBytes, serviceRow!.notes.holdRequests as number);
  serviceRow!.ratio = ratio(serviceRow!.requestsPerSecond, ceiling.requestsPerSecond);
  return [serviceRow!, ceiling];
}

/** The same number of hold-shaped requests over the same lanes, answered by the ceiling. */
export async function raceCeiling(ctx: BenchContext, bodyBytes: number, requests: number): Promise<Row> {
  const cached = ctx.ceilings.get('race');
  if (cached) return cached;
  const load = await withCeiling(ctx, bodyBytes, (peer) =>
    fixedCount(peer.url, ctx.options.raceLanes, requests, {
      method: 'POST',
      path: '/api/shows/shw_x/holds',
      body: { count: 2 },
      token: ctx.template?.users[0]?.token,
    }),
  );
  const row: Row = { scenario: SCENARIO, target: 'ceiling', ...load, notes: { bodyBytes, requests } };
  ctx.ceilings.set('race', row);
  return row;
}
