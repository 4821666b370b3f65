/**
 * Model-based tests: random command sequences run against the show actor and against a deliberately
 * naive model (a map of seat → owner, holds as plain records); after every command the replies and every
 * seat's status must agree, and the actor's invariants must hold.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileLayout, type SeatLayout } from '../../src/actors/seat-layout.js';
import {
  apply,
  createShowState,
  invariantViolations,
  SEAT_STATUSES,
  type SeatStatus,
  type ShowCommand,
  type ShowState,
} from '../../src/actors/show-actor.js';

const LAYOUT: SeatLayout = {
  rows: [
    { label: 'A', category: 'GOLD', seats: 6, aislesAfter: [2] },
    { label: 'B', category: 'SILVER', seats: 5 },
  ],
};
const compiled = compileLayout(LAYOUT);
if (!compiled.ok) throw new Error(compiled.message);
const layout = compiled.layout;
const LABELS = [...layout.labels];
const OWNERS = ['u1', 'u2', 'u3'];
const MAX_PER_OWNER = 4;
const TTL = 1000;

interface ModelHold {
  owner: string;
  seats: string[];
  createdAt: number;
  expiresAt: number;
}
interface Model {
  now: number;
  seat: Map<string, SeatStatus>;
  holds: Map<string, ModelHold>;
  bookings: Map<string, string[]>;
  nextId: number;
  forbidGaps: boolean;
}
interface Real {
  state: ShowState;
  version: number;
}

/** Runs of side-by-side seats, written out by hand for the model (the actor derives them). */
const RUNS = [
  ['A1', 'A2'],
  ['A3', 'A4', 'A5', 'A6'],
  ['B1', 'B2', 'B3', 'B4', 'B5'],
];

function sweep(m: Model): boolean {
  let changed = false;
  for (const [id, h] of m.holds) {
    if (h.expiresAt <= m.now) {
      for (const s of h.seats) m.seat.set(s, 'available');
      m.holds.delete(id);
      changed = true;
    }
  }
  return changed;
}

function heldBy(m: Model, owner: string): number {
  let n = 0;
  for (const h of m.holds.values()) if (h.owner === owner) n += h.seats.length;
  return n;
}

function stranded(m: Model, taking: string[]): string[] {
  const after = new Map(m.seat);
  for (const s of taking) after.set(s, 'held');
  const out = new Set<string>();
  for (const run of RUNS) {
    run.forEach((s, k) => {
      if (after.get(s) !== 'available') return;
      const touchesNew = taking.includes(run[k - 1] ?? '') || taking.includes(run[k + 1] ?? '');
      const freeLeft = k > 0 && after.get(run[k - 1]!) === 'available';
      const freeRight = k < run.length - 1 && after.get(run[k + 1]!) === 'available';
      if (touchesNew && !freeLeft && !freeRight) out.add(s);
    });
  }
  return LABELS.filter((l) => out.has(l));
}

/** Runs a command on both sides; `expect` decides the model's reply and applies its effect. */
function step(real: Real, model: Model, command: ShowCommand, expected: { code?: string; seats?: string[] }) {
  const { reply, isChanged } = apply(real.state, command);
  if (expected.code) {
    expect(reply.ok).toBe(false);
    expect((reply as { code: string }).code).toBe(expected.code);
    if (expected.seats) expect((reply as { seats?: string[] }).seats).toEqual(expected.seats);
  } else {
    expect(reply).toMatchObject({ ok: true });
  }
  expect(real.state.version).toBe(real.version + (isChanged ? 1 : 0));
  real.version = real.state.version;
  for (const [i, label] of LABELS.entries()) {
    expect(SEAT_STATUSES[real.state.seats[i]!], label).toBe(model.seat.get(label));
  }
  expect(invariantViolations(real.state)).toEqual([]);
  return reply;
}

class Advance implements fc.Command<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true;
  run(m: Model) {
    m.now += this.ms;
  }
  toString = () => `advance(${this.ms})`;
}

class Hold implements fc.Command<Model, Real> {
  constructor(
    readonly owner: string,
    readonly seats: string[],
  ) {}
  check = () => true;
  run(m: Model, r: Real) {
    const id = `h${m.nextId++}`;
    sweep(m);
    let expected: { code?: string; seats?: string[] } = {};
    const taken = this.seats.filter((s) => m.seat.get(s) !== 'available');
    if (heldBy(m, this.owner) + this.seats.length > MAX_PER_OWNER) expected = { code: 'SEAT_LIMIT_EXCEEDED' };
    else if (taken.length > 0) expected = { code: 'SEATS_UNAVAILABLE', seats: taken };
    else if (m.forbidGaps && stranded(m, this.seats).length > 0)
      expected = { code: 'SINGLE_SEAT_STRANDED', seats: stranded(m, this.seats) };
    if (!expected.code) {
      for (const s of this.seats) m.seat.set(s, 'held');
      m.holds.set(id, { owner: this.owner, seats: this.seats, createdAt: m.now, expiresAt: m.now + TTL });
    }
    step(
      r,
      m,
      cmd({ type: 'hold', holdId: id, ownerId: this.owner, seats: this.seats, expiresAtMs: m.now + TTL }, m),
      expected,
    );
  }
  toString = () => `hold(${this.owner}, ${this.seats})`;
}

class HoldBest implements fc.Command<Model, Real> {
  constructor(
    readonly owner: string,
    readonly count: number,
  ) {}
  check = () => true;
  run(m: Model, r: Real) {
    const id = `h${m.nextId++}`;
    sweep(m);
    const fits = RUNS.some((run) =>
      run.some(
        (_, k) =>
          k + this.count <= run.length &&
          run.slice(k, k + this.count).every((s) => m.seat.get(s) === 'available'),
      ),
    );
    const overLimit = heldBy(m, this.owner) + this.count > MAX_PER_OWNER;
    const expected = overLimit ? { code: 'SEAT_LIMIT_EXCEEDED' } : fits ? {} : { code: 'SEATS_UNAVAILABLE' };
    // The model cannot predict which block is best, only that one must be found: check it afterwards.
    const before = new Map(m.seat);
    const command = cmd(
      { type: 'holdBest', holdId: id, ownerId: this.owner, count: this.count, expiresAtMs: m.now + TTL },
      m,
    );
    const { reply } = apply(r.state, command);
    expect(reply.ok ? {} : { code: (reply as { code: string }).code }).toEqual(expected);
    if (reply.ok && 'hold' in reply) {
      const chosen = reply.hold.seats;
      expect(chosen).toHaveLength(this.count);
      expect(RUNS.some((run) => run.join(',').includes(chosen.join(',')))).toBe(true);
      for (const s of chosen) expect(before.get(s)).toBe('available');
      for (const s of chosen) m.seat.set(s, 'held');
      m.holds.set(id, { owner: this.owner, seats: chosen, createdAt: m.now, expiresAt: m.now + TTL });
    }
    r.version = r.state.version;
    for (const [i, label] of LABELS.entries())
      expect(SEAT_STATUSES[r.state.seats[i]!]).toBe(m.seat.get(label));
    expect(invariantViolations(r.state)).toEqual([]);
  }
  toString = () => `holdBest(${this.owner}, ${this.count})`;
}

/** extend / release / confirm on one of the holds ever made (possibly gone), as some owner. */
class OnHold implements fc.Command<Model, Real> {
  constructor(
    readonly kind: 'extend' | 'release' | 'confirm',
    readonly pick: number,
    readonly owner: string,
    readonly allowRehold: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.nextId > 0;
  run(m: Model, r: Real) {
    const holdId = `h${this.pick % m.nextId}`;
    const h = m.holds.get(holdId);
    let code: string | undefined;
    if (!h) code = 'HOLD_NOT_FOUND';
    else if (h.owner !== this.owner) code = 'HOLD_NOT_OWNED';
    else if (h.expiresAt <= m.now) code = 'HOLD_EXPIRED';
    const seats = h?.seats ?? [];
    const bookingId = `b${holdId}`;
    const isUnseenRehold =
      this.kind === 'confirm' &&
      !m.bookings.has(bookingId) &&
      seats.length === 0 &&
      this.allowRehold &&
      code !== 'HOLD_NOT_OWNED';
    // A re-hold of a hold the model never saw (it was refused): the model cannot say which seats the
    // actor would re-hold, so neither side runs it (the model must not even sweep).
    if (isUnseenRehold) return;
    sweep(m);
    if (this.kind === 'extend') {
      if (!code) h!.expiresAt = Math.max(h!.expiresAt, Math.min(m.now + TTL, h!.createdAt + 3 * TTL));
      step(
        r,
        m,
        cmd({ type: 'extend', holdId, ownerId: this.owner, extendByMs: TTL, maxLifetimeMs: 3 * TTL }, m),
        { code },
      );
    } else if (this.kind === 'release') {
      if (!code) {
        for (const s of seats) m.seat.set(s, 'available');
        m.holds.delete(holdId);
      }
      step(r, m, cmd({ type: 'release', holdId, ownerId: this.owner }, m), { code });
    } else {
      const already = m.bookings.get(bookingId);
      let expected: { code?: string; seats?: string[] } = code ? { code } : {};
      if (already) expected = {};
      else if (!code) {
        for (const s of seats) m.seat.set(s, 'booked');
        m.holds.delete(holdId);
        m.bookings.set(bookingId, seats);
      } else if (code !== 'HOLD_NOT_OWNED' && this.allowRehold && seats.length > 0) {
        const taken = seats.filter((s) => m.seat.get(s) !== 'available');
        if (taken.length > 0) expected = { code: 'HOLD_EXPIRED', seats: taken };
        else {
          expected = {};
          for (const s of seats) m.seat.set(s, 'booked');
          m.bookings.set(bookingId, seats);
        }
      }
      const confirmSeats = already ?? (seats.length > 0 ? seats : ['A1']);
      step(
        r,
        m,
        cmd(
          {
            type: 'confirm',
            holdId,
            bookingId,
            ownerId: this.owner,
            seats: confirmSeats,
            allowRehold: this.allowRehold,
          },
          m,
        ),
        expected,
      );
    }
  }
  toString = () => `${this.kind}(h${this.pick}, ${this.owner}, rehold=${this.allowRehold})`;
}

class Cancel implements fc.Command<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.nextId > 0;
  run(m: Model, r: Real) {
    const bookingId = `bh${this.pick % m.nextId}`;
    sweep(m);
    const seats = m.bookings.get(bookingId);
    if (seats) {
      for (const s of seats) m.seat.set(s, 'available');
      m.bookings.delete(bookingId);
    }
    step(r, m, cmd({ type: 'cancel', bookingId }, m), seats ? {} : { code: 'BOOKING_NOT_FOUND' });
  }
  toString = () => `cancel(bh${this.pick})`;
}

class Block implements fc.Command<Model, Real> {
  constructor(
    readonly type: 'block' | 'unblock',
    readonly seats: string[],
  ) {}
  check = () => true;
  run(m: Model, r: Real) {
    sweep(m);
    const from = this.type === 'block' ? 'available' : 'blocked';
    const wrong = this.seats.filter((s) => m.seat.get(s) !== from);
    if (wrong.length === 0)
      for (const s of this.seats) m.seat.set(s, this.type === 'block' ? 'blocked' : 'available');
    step(
      r,
      m,
      cmd({ type: this.type, seats: this.seats }, m),
      wrong.length ? { code: 'SEATS_UNAVAILABLE', seats: wrong } : {},
    );
  }
  toString = () => `${this.type}(${this.seats})`;
}

class Expire implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real) {
    sweep(m);
    step(r, m, cmd({ type: 'expire' }, m), {});
  }
  toString = () => 'expire';
}

function cmd<T extends object>(partial: T, m: Model): ShowCommand {
  const base = { nowMs: m.now, maxSeatsPerOwner: MAX_PER_OWNER, ...partial };
  return base as unknown as ShowCommand;
}

const seatSet = fc.uniqueArray(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 3 });
const owner = fc.constantFrom(...OWNERS);
const commands = [
  fc.integer({ min: 1, max: 1500 }).map((ms) => new Advance(ms)),
  fc.tuple(owner, seatSet).map(([o, s]) => new Hold(o, s)),
  fc.tuple(owner, fc.integer({ min: 1, max: 3 })).map(([o, n]) => new HoldBest(o, n)),
  fc
    .tuple(
      fc.constantFrom('extend', 'release', 'confirm') as fc.Arbitrary<'extend' | 'release' | 'confirm'>,
      fc.nat(),
      owner,
      fc.boolean(),
    )
    .map(([k, p, o, re]) => new OnHold(k, p, o, re)),
  fc.nat().map((p) => new Cancel(p)),
  fc
    .tuple(fc.constantFrom('block', 'unblock') as fc.Arbitrary<'block' | 'unblock'>, seatSet)
    .map(([t, s]) => new Block(t, s)),
  fc.constant(new Expire()),
];

function runModel(forbidGaps: boolean, numRuns: number) {
  fc.assert(
    fc.property(fc.commands(commands, { maxCommands: 60 }), (cmds) => {
      const model: Model = {
        now: 1_000_000,
        seat: new Map(LABELS.map((l) => [l, 'available'])),
        holds: new Map(),
        bookings: new Map(),
        nextId: 0,
        forbidGaps,
      };
      const real: Real = { state: createShowState('show-1', layout, 'k', forbidGaps), version: 0 };
      fc.modelRun(() => ({ model, real }), cmds);
    }),
    { numRuns },
  );
}

describe('show actor against a reference model', () => {
  it('agrees with the model over random command sequences, expiry included', () => {
    runModel(false, 3000);
  });

  it('agrees with the model when the show forbids stranding a single seat', () => {
    runModel(true, 2000);
  });
});

describe('show actor replies', () => {
  it('names exactly the seats that were taken when a hold is refused', () => {
    const state = createShowState('s', layout, 'k', false);
    apply(state, {
      type: 'hold',
      holdId: 'a',
      ownerId: 'u1',
      seats: ['A1', 'A2'],
      nowMs: 0,
      expiresAtMs: 10,
      maxSeatsPerOwner: 10,
    });
    const { reply } = apply(state, {
      type: 'hold',
      holdId: 'b',
      ownerId: 'u2',
      seats: ['A2', 'A3'],
      nowMs: 1,
      expiresAtMs: 10,
      maxSeatsPerOwner: 10,
    });
    expect(reply).toMatchObject({ ok: false, code: 'SEATS_UNAVAILABLE', seats: ['A2'] });
    expect(state.seats[2]).toBe(0);
  });

  it('frees an expired hold for the next command even if no expire command has run', () => {
    const state = createShowState('s', layout, 'k', false);
    apply(state, {
      type: 'hold',
      holdId: 'a',
      ownerId: 'u1',
      seats: ['B1'],
      nowMs: 0,
      expiresAtMs: 10,
      maxSeatsPerOwner: 10,
    });
    const { reply, changed } = apply(state, {
      type: 'hold',
      holdId: 'b',
      ownerId: 'u2',
      seats: ['B1'],
      nowMs: 10,
      expiresAtMs: 20,
      maxSeatsPerOwner: 10,
    });
    expect(reply).toMatchObject({ ok: true, hold: { seats: ['B1'], ownerId: 'u2' } });
    expect(changed).toEqual([layout.indexOf.get('B1')]);
  });

  it('picks best-available seats on the centre line and avoids stranding one seat', () => {
    const row = compileLayout({ rows: [{ label: 'A', category: 'X', seats: 10 }] });
    if (!row.ok) throw new Error(row.message);
    const state = createShowState('s', row.layout, 'k', false);
    const centre = apply(state, {
      type: 'holdBest',
      holdId: 'a',
      ownerId: 'u',
      count: 2,
      nowMs: 0,
      expiresAtMs: 9,
      maxSeatsPerOwner: 9,
    });
    expect(centre.reply).toMatchObject({ hold: { seats: ['A5', 'A6'] } });
    // Free now: A1-A4 and A7-A10. A2+A3 would be nearer but strand A1 and A4; A3+A4 strands nothing.
    const next = apply(state, {
      type: 'holdBest',
      holdId: 'b',
      ownerId: 'v',
      count: 2,
      nowMs: 0,
      expiresAtMs: 9,
      maxSeatsPerOwner: 9,
    });
    expect(next.reply).toMatchObject({ hold: { seats: ['A3', 'A4'] } });
  });

  it('confirms idempotently for the same booking id', () => {
    const state = createShowState('s', layout, 'k', false);
    apply(state, {
      type: 'hold',
      holdId: 'a',
      ownerId: 'u1',
      seats: ['B2', 'B3'],
      nowMs: 0,
      expiresAtMs: 10,
      maxSeatsPerOwner: 10,
    });
    const confirm = {
      type: 'confirm',
      holdId: 'a',
      bookingId: 'bk',
      ownerId: 'u1',
      seats: ['B2', 'B3'],
      allowRehold: false,
      nowMs: 1,
    } as const;
    expect(apply(state, { ...confirm, seats: [...confirm.seats] }).reply).toMatchObject({
      ok: true,
      bookingId: 'bk',
    });
    const again = apply(state, { ...confirm, seats: [...confirm.seats], nowMs: 50 });
    expect(again.reply).toMatchObject({ ok: true, bookingId: 'bk', seats: ['B2', 'B3'] });
    expect(again.isChanged).toBe(false);
  });
});
