/**
 * @module bench/http/race
 * The hot-show on-sale: thousands of users with tokens race for one 300-seat show, each wanting 1 to 4
 * seats, half by best available and half by picking seats themselves from what the live map shows them
 * (here: every grant the bench has seen). A user who is refused tries again, up to a bound: explicit
 * pickers choose other seats, best-available users ask for one seat fewer. Users arrive over a fixed
 * number of keep-alive connections (lanes); once the map shows the show sold out, later users leave
 * without a request. The same driver races the seed-design peers (which have no best available: their
 * "best" users pick the best free seats themselves, which is where they collide).
 */
// Deterministic per run, so two targets see the same users with the same wishes.
import { prng } from '../../src/domain/demo-seed.js';
import type { JsonClient } from './client.js';
import { type BenchUser, ROWS, SEAT_LABELS, SEATS_PER_ROW } from './fixtures.js';
import { Latencies, round } from './latency.js';

/** Hold attempts per user before giving up. */
export const MAX_ATTEMPTS_PER_USER = 4;
/** The row best available aims at: two thirds back, as the service's scoring does. */
const BEST_ROW = Math.round((ROWS.length - 1) * (2 / 3));

export interface HoldAnswer {
  status: number;
  ms: number;
  bytes: number;
  seats?: string[];
  holdId?: string;
}

export interface RaceTarget {
  hasBestAvailable: boolean;
  hold(user: BenchUser, request: { seats: string[] } | { count: number }): Promise<HoldAnswer>;
  /** Book and pay a granted hold; resolves with the seats confirmed, or undefined. */
  checkout?(user: BenchUser, holdId: string, stats: RaceStats): Promise<string[] | undefined>;
}

/** What a racing user can see of the show: every seat whose grant the bench has seen is taken. */
export class SeatView {
  readonly #taken = new Uint8Array(SEAT_LABELS.length);
  readonly #indexOf = new Map(SEAT_LABELS.map((label, i) => [label, i]));
  free = SEAT_LABELS.length;

  take(seats: readonly string[]): void {
    for (const seat of seats) {
      const i = this.#indexOf.get(seat);
      if (i === undefined || this.#taken[i]) continue;
      this.#taken[i] = 1;
      this.free--;
    }
  }

  #windowsIn(row: number, n: number): number[] {
    const starts: number[] = [];
    for (let s = 0; s + n <= SEATS_PER_ROW; s++) {
      let isFree = true;
      for (let k = 0; k < n && isFree; k++) isFree = this.#taken[row * SEATS_PER_ROW + s + k] === 0;
      if (isFree) starts.push(s);
    }
    return starts;
  }

  #labels(row: number, start: number, n: number): string[] {
    return Array.from({ length: n }, (_, k) => SEAT_LABELS[row * SEATS_PER_ROW + start + k]!);
  }

  /** n adjacent free seats in a random row that has them. */
  randomWindow(n: number, random: () => number): string[] | undefined {
    const first = Math.floor(random() * ROWS.length);
    for (let r = 0; r < ROWS.length; r++) {
      const row = (first + r) % ROWS.length;
      const starts = this.#windowsIn(row, n);
      if (starts.length > 0) return this.#labels(row, starts[Math.floor(random() * starts.length)]!, n);
    }
    return undefined;
  }

  /** The free block nearest the best row and the centre line: what everyone wants. */
  bestWindow(n: number): string[] | undefined {
    const rows = ROWS.map((_, i) => i).sort((a, b) => Math.abs(a - BEST_ROW) - Math.abs(b - BEST_ROW));
    const centre = (SEATS_PER_ROW - n) / 2;
    for (const row of rows) {
      const starts = this.#windowsIn(row, n).sort((a, b) => Math.abs(a - centre) - Math.abs(b - centre));
      if (starts.length > 0) return this.#labels(row, starts[0]!, n);
    }
    return undefined;
  }
}

export interface RaceStats {
  holdLatencies: Latencies;
  bookLatencies: Latencies;
  payLatencies: Latencies;
  holdRequests: number;
  /** Response bytes of every hold reply, for the ceiling's body size. */
  holdBytes: number;
  refused: number;
  /** Non-2xx other than the expected 409s, and transport errors. */
  errors: number;
  statuses: Record<string, number>;
  /** Grants per seat, as the clients saw them. */
  grants: Map<string, number>;
  confirmed: Map<string, string>;
  soldOutMs?: number;
  lastHoldMs: number;
  lastConfirmMs: number;
}

export interface RaceUser extends BenchUser {
  wants: number;
  isBest: boolean;
  /** Seeds this user's own choices (which row, which seats). */
  seed: number;
}

function count(stats: RaceStats, status: number): void {
  stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
}

async function race1(target: RaceTarget, user: RaceUser, view: SeatView, stats: RaceStats, t0: number) {
  let want = user.wants;
  const random = prng(user.seed);
  for (let attempt = 0; attempt < MAX_ATTEMPTS_PER_USER && view.free > 0 && want > 0; attempt++) {
    let request: { seats: string[] } | { count: number };
    if (user.isBest && target.hasBestAvailable) request = { count: want };
    else {
      const seats = user.isBest ? view.bestWindow(want) : view.randomWindow(want, random);
      if (!seats) {
        want--;
        continue;
      }
      request = { seats };
    }
    const answer = await target.hold(user, request).catch((): HoldAnswer => ({ status: 0, ms: 0, bytes: 0 }));
    stats.holdRequests++;
    stats.holdBytes += answer.bytes;
    stats.lastHoldMs = performance.now() - t0;
    count(stats, answer.status);
    if (answer.status === 0) stats.errors++;
    else stats.holdLatencies.record(answer.ms);
    if (answer.seats) {
      for (const seat of answer.seats) stats.grants.set(seat, (stats.grants.get(seat) ?? 0) + 1);
      view.take(answer.seats);
      if (view.free === 0) stats.soldOutMs ??= performance.now() - t0;
      if (target.checkout && answer.holdId) {
        const confirmed = await target.checkout(user, answer.holdId, stats);
        for (const seat of confirmed ?? []) stats.confirmed.set(seat, answer.holdId);
        if (confirmed) stats.lastConfirmMs = performance.now() - t0;
      }
      return;
    }
    if (answer.status === 409) {
      stats.refused++;
      if (user.isBest && target.hasBestAvailable) want--;
    } else if (answer.status !== 0) {
      stats.errors++;
      return;
    }
  }
}

export function raceUsers(users: readonly BenchUser[], seed: number): RaceUser[] {
  const random = prng(seed);
  return users.map((user, i) => {
    const r = random();
    // Mostly pairs, as people go to the cinema; some alone, some families.
    const wants = r < 0.25 ? 1 : r < 0.65 ? 2 : r < 0.85 ? 3 : 4;
    return { ...user, wants, isBest: random() < 0.5, seed: seed * 100_003 + i };
  });
}

/** Runs the race to the end (every user served or gone), bounded by `timeoutMs`. */
export async function runRace(
  target: RaceTarget,
  users: readonly RaceUser[],
  lanes: number,
  timeoutMs: number,
): Promise<RaceStats & { seconds: number; timedOut: boolean }> {
  const stats: RaceStats = {
    holdLatencies: new Latencies(),
    bookLatencies: new Latencies(),
    payLatencies: new Latencies(),
    holdRequests: 0,
    holdBytes: 0,
    refused: 0,
    errors: 0,
    statuses: {},
    grants: new Map(),
    confirmed: new Map(),
    lastHoldMs: 0,
    lastConfirmMs: 0,
  };
  const view = new SeatView();
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  let next = 0;
  const lane = async () => {
    while (next < users.length && performance.now() < deadline) {
      const user = users[next++]!;
      if (view.free > 0) await race1(target, user, view, stats, t0);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return { ...stats, seconds: round((performance.now() - t0) / 1000, 3), timedOut: next < users.length };
}

/** Seats granted to more than one user at once (no releases happen in a race). */
export function seatsGrantedTwice(grants: Map<string, number>): number {
  let n = 0;
  for (const count of grants.values()) if (count > 1) n++;
  return n;
}

/** The service as a race target: best available and explicit holds, then book and pay. */
export function serviceRaceTarget(client: JsonClient, showId: string, withCheckout: boolean): RaceTarget {
  const card = { number: '4242 4242 4242 4242', expiry: '12/34', cvc: '123' };
  return {
    hasBestAvailable: true,
    async hold(user, request) {
      const reply = await client.request('POST', `/api/shows/${showId}/holds`, {
        body: request,
        token: user.token,
      });
      const answer = { status: reply.status, ms: reply.ms, bytes: reply.bytes };
      if (reply.status !== 201) return answer;
      return { ...answer, seats: reply.body.hold.seats, holdId: reply.body.hold.id };
    },
    checkout: withCheckout
      ? async (user, holdId, stats) => {
          const booked = await client.request('POST', '/api/bookings', {
            body: { holdId, paymentMethod: 'card' },
            token: user.token,
          });
          count(stats, booked.status);
          stats.bookLatencies.record(booked.ms);
          if (booked.status !== 201) return void stats.errors++;
          const paid = await client.request('POST', '/api/payments', {
            body: { bookingId: booked.body.booking.id, method: 'card', card },
            token: user.token,
          });
          count(stats, paid.status);
          stats.payLatencies.record(paid.ms);
          if (paid.status !== 200 || paid.body.booking.status !== 'confirmed') return void stats.errors++;
          return paid.body.booking.seats as string[];
        }
      : undefined,
  };
}

/** A seed-design peer as a race target: explicit seats only, one lock request for the whole group. */
export function seedRaceTarget(client: JsonClient, showId: string): RaceTarget {
  return {
    hasBestAvailable: false,
    async hold(user, request) {
      const seats = 'seats' in request ? request.seats : [];
      const reply = await client.request('POST', `/api/shows/${showId}/lock-seat`, {
        body: { seatNumbers: seats },
        token: user.token,
      });
      const answer = { status: reply.status, ms: reply.ms, bytes: reply.bytes };
      return reply.status === 200 ? { ...answer, seats: reply.body.hold.seats } : answer;
    },
  };
}
