/**
 * @module bench/http/cycles
 * The request chains autocannon runs per connection: hold then release (scenario 2 and the peers under
 * it), and hold, book, pay (scenario 4). Every cycle takes a seat slot (a show and a seat) that no other
 * connection holds at that moment, and the next user in turn, so the service sees different users over
 * many shows and nothing is refused for contention. Grants are tracked per slot: a slot granted while
 * it is certainly still held by an earlier grant (granted reply seen, release not yet sent) is a seat
 * locked twice.
 */
import type autocannon from 'autocannon';
import type { BenchUser } from './fixtures.js';
import type { Latencies } from './latency.js';

export interface Slot {
  showId: string;
  seat: string;
  key: string;
}

/** Free slots, first in first out, so a released seat rests before it is taken again. */
export class SlotPool {
  #free: Slot[];
  #head = 0;

  constructor(showIds: readonly string[], seats: readonly string[]) {
    // Interleaved by show, so consecutive cycles spread over every show.
    this.#free = seats.flatMap((seat) =>
      showIds.map((showId) => ({ showId, seat, key: `${showId}/${seat}` })),
    );
  }

  get size(): number {
    return this.#free.length - this.#head;
  }

  take(): Slot {
    if (this.#head >= this.#free.length) throw new Error('the bench ran out of seat slots');
    const slot = this.#free[this.#head++]!;
    if (this.#head > 65_536) {
      this.#free = this.#free.slice(this.#head);
      this.#head = 0;
    }
    return slot;
  }

  give(slot: Slot): void {
    this.#free.push(slot);
  }
}

/** Counts grants of a slot that overlap an earlier grant of the same slot. */
export class GrantTracker {
  readonly #held = new Map<string, number>();
  grants = 0;
  doubleGrants = 0;

  granted(key: string): void {
    const n = (this.#held.get(key) ?? 0) + 1;
    this.#held.set(key, n);
    this.grants++;
    if (n > 1) this.doubleGrants++;
  }

  releasing(key: string): void {
    const n = (this.#held.get(key) ?? 0) - 1;
    if (n <= 0) this.#held.delete(key);
    else this.#held.set(key, n);
  }

  reset(): void {
    this.grants = 0;
    this.doubleGrants = 0;
  }
}

export interface HoldCycleTarget {
  hold(slot: Slot): { method: 'POST'; path: string; body: string };
  /** `holdReply` is the hold's parsed reply body: both targets answer `{hold: {id, …}}`. */
  release(slot: Slot, holdReply: { hold: { id: string } }): { method: 'DELETE'; path: string };
}

export const SERVICE_HOLDS: HoldCycleTarget = {
  hold: (slot) => ({
    method: 'POST',
    path: `/api/shows/${slot.showId}/holds`,
    body: JSON.stringify({ seats: [slot.seat] }),
  }),
  release: (_slot, reply) => ({ method: 'DELETE', path: `/api/holds/${reply.hold.id}` }),
};

/** The seed design's routes, served by both peers. */
export const SEED_LOCKS: HoldCycleTarget = {
  hold: (slot) => ({
    method: 'POST',
    path: `/api/shows/${slot.showId}/lock-seat`,
    body: JSON.stringify({ seatNumber: slot.seat }),
  }),
  release: (slot) => ({ method: 'DELETE', path: `/api/shows/${slot.showId}/lock-seat/${slot.seat}` }),
};

interface CycleContext {
  slot?: Slot;
  user?: BenchUser;
  reply?: { hold: { id: string } };
  startedAt?: number;
  holdId?: string;
  bookingId?: string;
}

function headersFor(user: BenchUser): Record<string, string> {
  return { 'content-type': 'application/json', authorization: `Bearer ${user.token}` };
}

/** Hold a seat, release it; again with the next slot and user. */
export function holdReleaseRequests(
  target: HoldCycleTarget,
  pool: SlotPool,
  users: readonly BenchUser[],
  tracker: GrantTracker,
): autocannon.Request[] {
  let nextUser = 0;
  return [
    {
      setupRequest: (req, context) => {
        const ctx = context as CycleContext;
        ctx.slot = pool.take();
        ctx.user = users[nextUser++ % users.length]!;
        return { ...req, ...target.hold(ctx.slot), headers: headersFor(ctx.user) };
      },
      onResponse: (status, body, context) => {
        const ctx = context as CycleContext;
        if (status >= 200 && status < 300) {
          ctx.reply = JSON.parse(body);
          tracker.granted(ctx.slot!.key);
        } else pool.give(ctx.slot!);
      },
    },
    {
      setupRequest: (req, context) => {
        const ctx = context as CycleContext;
        if (ctx.reply === undefined) return undefined as never;
        tracker.releasing(ctx.slot!.key);
        return { ...req, ...target.release(ctx.slot!, ctx.reply), headers: headersFor(ctx.user!) };
      },
      // A seat whose release failed stays out of the pool: it may still be held.
      onResponse: (status, _body, context) => {
        if (status >= 200 && status < 300) pool.give((context as CycleContext).slot!);
      },
    },
  ];
}

export const TEST_CARD = { number: '4242 4242 4242 4242', expiry: '12/34', cvc: '123' };

export interface BookingCounters {
  booked: number;
  latencies: Latencies;
}

/** Hold a seat, book the hold, pay with the simulated card; each seat is used once. */
export function fullBookingRequests(
  pool: SlotPool,
  users: readonly BenchUser[],
  counters: BookingCounters,
): autocannon.Request[] {
  let nextUser = 0;
  const ok = (status: number) => status >= 200 && status < 300;
  return [
    {
      setupRequest: (req, context) => {
        const ctx = context as CycleContext;
        const slot = pool.take();
        ctx.user = users[nextUser++ % users.length]!;
        ctx.startedAt = performance.now();
        return { ...req, ...SERVICE_HOLDS.hold(slot), headers: headersFor(ctx.user) };
      },
      onResponse: (status, body, context) => {
        if (ok(status)) (context as CycleContext).holdId = JSON.parse(body).hold.id;
      },
    },
    {
      setupRequest: (req, context) => {
        const ctx = context as CycleContext;
        if (!ctx.holdId) return undefined as never;
        const body = JSON.stringify({ holdId: ctx.holdId, paymentMethod: 'card' });
        return { ...req, method: 'POST', path: '/api/bookings', body, headers: headersFor(ctx.user!) };
      },
      onResponse: (status, body, context) => {
        if (ok(status)) (context as CycleContext).bookingId = JSON.parse(body).booking.id;
      },
    },
    {
      setupRequest: (req, context) => {
        const ctx = context as CycleContext;
        if (!ctx.bookingId) return undefined as never;
        const body = JSON.stringify({ bookingId: ctx.bookingId, method: 'card', card: TEST_CARD });
        return { ...req, method: 'POST', path: '/api/payments', body, headers: headersFor(ctx.user!) };
      },
      onResponse: (status, _body, context) => {
        if (!ok(status)) return;
        counters.booked++;
        counters.latencies.record(performance.now() - (context as CycleContext).startedAt!);
      },
    },
  ];
}

/** The same request shapes without the chaining, for the ceiling (which answers every one alike). */
export function staticRequests(
  shapes: { method: string; path: string; body?: string }[],
  user: BenchUser,
): autocannon.Request[] {
  return shapes.map((shape) => ({
    method: shape.method as autocannon.Request['method'],
    path: shape.path,
    body: shape.body,
    headers: headersFor(user),
  }));
}
