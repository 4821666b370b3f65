/**
 * @module bench/load/journeys
 * What a user does, step by step, and the autocannon request chain that plays it on each connection.
 * A journey answers its next request and hears each reply: reading a seat map, holding a seat and
 * releasing it, or buying (hold, book, pay with the test card, fetch the ticket). autocannon resets a
 * connection's context when its chain wraps, so a journey lives in one pass of a chain of MAX_STEPS
 * requests; a journey that ends early skips the rest of the chain (a falsy setupRequest does that).
 */
import type autocannon from 'autocannon';
import { prng } from '../../src/domain/demo-seed.js';
import { type GrantTracker, type Slot, SlotPool, TEST_CARD } from '../http/cycles.js';
import { wallNow } from '../http/feed-protocol.js';
import type { Recorder } from './recorder.js';
import type { LoadUser, SeatMap } from './target.js';

/** Longest journey: four holds (asking one seat fewer after each refusal), book, pay. */
export const MAX_STEPS = 6;
/** Seats a hot-show user asks for: mostly pairs, some alone, some families. */
const MAX_WANTED = 4;

export interface Step {
  kind: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  token?: string;
}

export interface Journey {
  /** The next request, or undefined when the journey is over; the first is never undefined. */
  next(): Step | undefined;
  answer(status: number, body: string): void;
}

export type JourneyFactory = () => Journey;

interface ChainContext {
  journey?: Journey;
  step?: Step;
  builtAt?: number;
}

/** The request chain every connection runs: a new journey from `start` per pass. */
export function journeyRequests(start: JourneyFactory, recorder: Recorder): autocannon.Request[] {
  return Array.from({ length: MAX_STEPS }, (_, i) => ({
    setupRequest: (req: autocannon.Request, context: unknown) => {
      const ctx = context as ChainContext;
      if (i === 0) ctx.journey = start();
      const step = ctx.journey?.next();
      if (!step) return undefined as never;
      ctx.step = step;
      ctx.builtAt = performance.now();
      const headers: Record<string, string> = {};
      if (step.token) headers.authorization = `Bearer ${step.token}`;
      if (step.body !== undefined) headers['content-type'] = 'application/json';
      const body = step.body === undefined ? undefined : JSON.stringify(step.body);
      return { ...req, method: step.method, path: step.path, headers, body };
    },
    onResponse: (status: number, body: string, context: unknown) => {
      const ctx = context as ChainContext;
      if (!ctx.step) return;
      recorder.step(ctx.step.kind, status, performance.now() - (ctx.builtAt ?? 0), body);
      ctx.journey?.answer(status, body);
    },
  }));
}

const seatsPath = (showId: string) => `/api/shows/${encodeURIComponent(showId)}/seats`;

/** One GET of a seat map: what most visitors of an on-sale do, and what a connection does when idle. */
export function seatMapRead(showId: string): Journey {
  let isDone = false;
  return {
    next: () => {
      if (isDone) return undefined;
      isDone = true;
      return { kind: 'seat-map', method: 'GET', path: seatsPath(showId) };
    },
    answer: () => {},
  };
}

/** Seat maps of `shows` in a seeded random order. */
export function seatMapJourneys(shows: readonly SeatMap[], seed: number): JourneyFactory {
  const random = prng(seed);
  return () => seatMapRead(shows[Math.floor(random() * shows.length)]!.showId);
}

/** Every available seat of every show as a slot, interleaved by show. */
export function availableSlots(shows: readonly SeatMap[]): Slot[] {
  const perShow = shows.map((map) =>
    map.seats
      .filter((s) => s.status === 'available')
      .map((s) => ({ showId: map.showId, seat: s.id, key: `${map.showId}/${s.id}` })),
  );
  const longest = Math.max(0, ...perShow.map((s) => s.length));
  const slots: Slot[] = [];
  for (let i = 0; i < longest; i++) for (const list of perShow) if (list[i]) slots.push(list[i]!);
  return slots;
}

export function slotPool(slots: readonly Slot[]): SlotPool {
  const pool = new SlotPool([], []);
  for (const slot of slots) pool.give(slot);
  return pool;
}

/** Round the users: each journey is the next user's. */
export function userRotation(users: readonly LoadUser[]): () => LoadUser {
  let next = 0;
  return () => users[next++ % users.length]!;
}

export interface HoldReleaseHooks {
  /** A hold or release of `seat` was answered with success; `sentAt` is when it was sent (wall ms). */
  changed?(slot: Slot, status: 'held' | 'available', sentAt: number): void;
}

/** Hold one free seat, release it; the seat goes back to the pool only once released. */
export function holdReleaseJourneys(
  pool: SlotPool,
  nextUser: () => LoadUser,
  tracker: GrantTracker,
  idleShowId: string,
  hooks: HoldReleaseHooks = {},
): JourneyFactory {
  return () => {
    // Every free seat is held by another connection: this one reads a map meanwhile.
    if (pool.size === 0) return seatMapRead(idleShowId);
    const slot = pool.take();
    const user = nextUser();
    let holdId: string | undefined;
    let phase: 'hold' | 'release' | 'done' = 'hold';
    let sentAt = 0;
    return {
      next() {
        sentAt = wallNow();
        if (phase === 'hold')
          return {
            kind: 'hold',
            method: 'POST',
            path: `/api/shows/${encodeURIComponent(slot.showId)}/holds`,
            body: { seats: [slot.seat] },
            token: user.token,
          };
        if (phase === 'release' && holdId) {
          tracker.releasing(slot.key);
          return { kind: 'release', method: 'DELETE', path: `/api/holds/${holdId}`, token: user.token };
        }
        return undefined;
      },
      answer(status, body) {
        if (phase === 'hold') {
          if (status === 201) {
            holdId = (JSON.parse(body) as { hold: { id: string } }).hold.id;
            tracker.granted(slot.key);
            hooks.changed?.(slot, 'held', sentAt);
            phase = 'release';
          } else {
            pool.give(slot);
            phase = 'done';
          }
          return;
        }
        // A seat whose release failed stays out of the pool: it may still be held.
        if (status === 204) {
          hooks.changed?.(slot, 'available', sentAt);
          pool.give(slot);
        }
        phase = 'done';
      },
    };
  };
}

export interface ConfirmedBooking {
  id: string;
  showId: string;
  seats: string[];
  token: string;
}

/** What the buying journeys share: seats granted (as the clients saw them) and bookings confirmed. */
export class Purchases {
  readonly grants = new Map<string, number>();
  readonly confirmed: ConfirmedBooking[] = [];
  /** Journeys between a granted hold and their end: the run waits for them before it stops. */
  inFlight = 0;
  holdsRefused = 0;

  granted(showId: string, seats: readonly string[]): void {
    for (const seat of seats) {
      const key = `${showId}/${seat}`;
      this.grants.set(key, (this.grants.get(key) ?? 0) + 1);
    }
  }
}

type HoldRequest = { seats: string[] } | { count: number };

interface PurchaseOptions {
  showId: string;
  user: LoadUser;
  /** The first hold's body. */
  hold: HoldRequest;
  /** The next hold's body after a 409, or undefined to give up. */
  retry(refused: HoldRequest): HoldRequest | undefined;
  /** GET the ticket once paid. */
  isTicketFetched: boolean;
  purchases: Purchases;
  onEnd?(): void;
}

/** Hold, book, pay with the test card, and (optionally) fetch the ticket. */
export function purchase(options: PurchaseOptions): Journey {
  const { showId, user, purchases } = options;
  let hold: HoldRequest | undefined = options.hold;
  let phase: 'hold' | 'book' | 'pay' | 'ticket' | 'done' = 'hold';
  let holdId = '';
  let bookingId = '';
  let seats: string[] = [];
  const end = () => {
    if (phase !== 'hold' && phase !== 'done') purchases.inFlight--;
    phase = 'done';
    options.onEnd?.();
  };
  const token = user.token;
  return {
    next() {
      if (phase === 'hold' && hold)
        return { kind: 'hold', method: 'POST', path: `/api/shows/${showId}/holds`, body: hold, token };
      if (phase === 'book')
        return {
          kind: 'book',
          method: 'POST',
          path: '/api/bookings',
          body: { holdId, paymentMethod: 'card' },
          token,
        };
      if (phase === 'pay')
        return {
          kind: 'pay',
          method: 'POST',
          path: '/api/payments',
          body: { bookingId, method: 'card', card: TEST_CARD },
          token,
        };
      if (phase === 'ticket')
        return { kind: 'ticket', method: 'GET', path: `/api/bookings/${bookingId}/ticket`, token };
      return undefined;
    },
    answer(status, body) {
      if (phase === 'hold') {
        if (status === 201) {
          const reply = JSON.parse(body) as { hold: { id: string; seats: string[] } };
          holdId = reply.hold.id;
          seats = reply.hold.seats;
          purchases.granted(showId, seats);
          purchases.inFlight++;
          phase = 'book';
          return;
        }
        if (status === 409) {
          purchases.holdsRefused++;
          hold = options.retry(hold!);
          if (hold) return;
        }
        return end();
      }
      if (phase === 'book') {
        if (status !== 201) return end();
        bookingId = (JSON.parse(body) as { booking: { id: string } }).booking.id;
        phase = 'pay';
        return;
      }
      if (phase === 'pay') {
        const booking =
          status === 200 ? (JSON.parse(body) as { booking: { status: string } }).booking : undefined;
        if (booking?.status === 'confirmed')
          purchases.confirmed.push({ id: bookingId, showId, seats, token });
        if (booking?.status === 'confirmed' && options.isTicketFetched) {
          phase = 'ticket';
          return;
        }
      }
      end();
    },
  };
}

/** Wanted seats per user, seeded: 25% one, 40% two, 20% three, 15% four. */
export function wantedSeats(random: () => number): number {
  const r = random();
  return r < 0.25 ? 1 : r < 0.65 ? 2 : r < 0.85 ? 3 : MAX_WANTED;
}

/**
 * The on-sale of one show: each journey is a new user asking for 1–4 seats best available (one fewer
 * after each refusal), then booking and paying. Once a one-seat hold is refused the show is sold out:
 * new journeys only read the map while the buyers still in flight finish, then `onSoldOut` fires.
 */
export function hotShowJourneys(
  show: SeatMap,
  nextUser: () => LoadUser,
  purchases: Purchases,
  seed: number,
  onSoldOut: () => void,
): JourneyFactory {
  const random = prng(seed);
  let isSoldOut = false;
  const checkEnd = () => {
    if (isSoldOut && purchases.inFlight === 0) onSoldOut();
  };
  return () => {
    if (isSoldOut) {
      checkEnd();
      return seatMapRead(show.showId);
    }
    return purchase({
      showId: show.showId,
      user: nextUser(),
      hold: { count: wantedSeats(random) },
      retry: (refused) => {
        const count = 'count' in refused ? refused.count : 1;
        if (count > 1) return { count: count - 1 };
        isSoldOut = true;
        return undefined;
      },
      isTicketFetched: false,
      purchases,
      onEnd: checkEnd,
    });
  };
}

/**
 * Full bookings over many shows: each journey takes a free seat no other journey has, holds, books,
 * pays and fetches the ticket. Seats are used once; when none is left `onOutOfSeats` fires once the
 * buyers in flight have finished.
 */
export function bookingJourneys(
  pool: SlotPool,
  nextUser: () => LoadUser,
  purchases: Purchases,
  idleShowId: string,
  onOutOfSeats: () => void,
): JourneyFactory {
  const checkEnd = () => {
    if (pool.size === 0 && purchases.inFlight === 0) onOutOfSeats();
  };
  return () => {
    if (pool.size === 0) {
      checkEnd();
      return seatMapRead(idleShowId);
    }
    const slot = pool.take();
    return purchase({
      showId: slot.showId,
      user: nextUser(),
      hold: { seats: [slot.seat] },
      retry: () => undefined,
      isTicketFetched: true,
      purchases,
      onEnd: checkEnd,
    });
  };
}

/** A weighted blend: each journey is drawn from `choices` by weight. */
export function mixedJourneys(choices: [number, JourneyFactory][], seed: number): JourneyFactory {
  const random = prng(seed);
  const total = choices.reduce((sum, [weight]) => sum + weight, 0);
  return () => {
    let r = random() * total;
    for (const [weight, start] of choices) {
      r -= weight;
      if (r < 0) return start();
    }
    return choices[choices.length - 1]![1]();
  };
}
