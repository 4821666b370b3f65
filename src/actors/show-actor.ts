/**
 * @module show-actor
 * The seat allocator's core: one show's seats as a deterministic state machine. `apply(state, command)`
 * changes the state in place and returns a reply and the seats it changed. No I/O, no clock, no
 * randomness: time and ids arrive inside each command, so the journal can replay it exactly.
 */
import { AVAILABLE, bestBlock, bestSplit, isStrandedAfter } from './best-available.js';
import type { CompiledLayout } from './seat-layout.js';

export { AVAILABLE };
export const HELD = 1;
export const BOOKED = 2;
export const BLOCKED = 3;
export const SEAT_STATUSES = ['available', 'held', 'booked', 'blocked'] as const;
export type SeatStatus = (typeof SEAT_STATUSES)[number];

/** Upper bound on seats named in one command; a show never has more. */
export const MAX_SEATS_PER_COMMAND = 2000;

export interface Hold {
  readonly id: string;
  readonly ownerId: string;
  readonly seats: readonly number[];
  readonly createdAtMs: number;
  expiresAtMs: number;
}

export interface ShowState {
  readonly showId: string;
  readonly layout: CompiledLayout;
  /** The layout's canonical JSON, shared by every show on the screen; persisted beside snapshots. */
  readonly layoutKey: string;
  readonly forbidSingleSeatGaps: boolean;
  /** +1 per command that changed anything. */
  version: number;
  /** One byte per seat: AVAILABLE, HELD, BOOKED or BLOCKED. */
  readonly seats: Uint8Array;
  readonly holds: Map<string, Hold>;
  readonly bookings: Map<string, readonly number[]>;
  readonly heldByOwner: Map<string, number>;
  /** Earliest expiresAtMs over live holds; +Infinity when there are none. */
  nextExpiryMs: number;
}

interface Timed {
  nowMs: number;
}
export type HoldCommand = Timed & {
  type: 'hold';
  holdId: string;
  ownerId: string;
  seats: string[];
  expiresAtMs: number;
  maxSeatsPerOwner: number;
};
export type HoldBestCommand = Timed & {
  type: 'holdBest';
  holdId: string;
  ownerId: string;
  count: number;
  category?: string;
  allowSplit?: boolean;
  expiresAtMs: number;
  maxSeatsPerOwner: number;
};
export type ExtendCommand = Timed & {
  type: 'extend';
  holdId: string;
  ownerId: string;
  extendByMs: number;
  maxLifetimeMs: number;
  /**
   * 'expiry' adds `extendByMs` to the hold's current expiry (the contract). Commands journaled before
   * this field existed extended from `nowMs`, and replay must give them the expiry they gave then.
   */
  extendFrom?: 'expiry';
};
export type ReleaseCommand = Timed & { type: 'release'; holdId: string; ownerId: string };
export type ExpireCommand = Timed & { type: 'expire' };
/** Hold → booking. With `allowRehold`, a hold that has gone is replaced by the same seats if all are free. */
export type ConfirmCommand = Timed & {
  type: 'confirm';
  holdId: string;
  bookingId: string;
  ownerId: string;
  seats: string[];
  allowRehold: boolean;
};
export type CancelCommand = Timed & { type: 'cancel'; bookingId: string };
export type BlockCommand = Timed & { type: 'block' | 'unblock'; seats: string[] };

export type ShowCommand =
  | HoldCommand
  | HoldBestCommand
  | ExtendCommand
  | ReleaseCommand
  | ExpireCommand
  | ConfirmCommand
  | CancelCommand
  | BlockCommand;

export interface HoldView {
  id: string;
  showId: string;
  ownerId: string;
  seats: string[];
  createdAtMs: number;
  expiresAtMs: number;
}

export type RefusalCode =
  | 'INVALID_COMMAND'
  | 'UNKNOWN_SEAT'
  | 'SEATS_UNAVAILABLE'
  | 'SINGLE_SEAT_STRANDED'
  | 'SEAT_LIMIT_EXCEEDED'
  | 'HOLD_NOT_FOUND'
  | 'HOLD_EXPIRED'
  | 'HOLD_NOT_OWNED'
  | 'BOOKING_NOT_FOUND'
  | 'BOOKING_CONFLICT';

export interface Refusal {
  ok: false;
  code: RefusalCode;
  message: string;
  /** The seats the refusal is about (taken, unknown, stranded), as labels. */
  seats?: string[];
}

export type ShowReply =
  | { ok: true; hold: HoldView }
  | { ok: true; bookingId: string; seats: string[] }
  | { ok: true; seats: string[] }
  | { ok: true }
  | Refusal;

export interface ApplyResult {
  reply: ShowReply;
  /** Seat indices whose status changed, each once; empty when the command changed nothing at all. */
  changed: number[];
  /** True when the state changed (seats, holds or bookings): such a command is journaled. */
  isChanged: boolean;
}

export function createShowState(
  showId: string,
  layout: CompiledLayout,
  layoutKey: string,
  forbidSingleSeatGaps: boolean,
): ShowState {
  return {
    showId,
    layout,
    layoutKey,
    forbidSingleSeatGaps,
    version: 0,
    seats: new Uint8Array(layout.seatCount),
    holds: new Map(),
    bookings: new Map(),
    heldByOwner: new Map(),
    nextExpiryMs: Number.POSITIVE_INFINITY,
  };
}

/** Applies one command. The state is changed in place; `version` rises by one when anything changed. */
export function apply(state: ShowState, command: ShowCommand): ApplyResult {
  const tx = new Change(state);
  const reply = dispatch(state, command, tx);
  if (tx.isChanged) state.version++;
  return { reply, changed: tx.seatList(), isChanged: tx.isChanged };
}

function dispatch(state: ShowState, command: ShowCommand, tx: Change): ShowReply {
  switch (command.type) {
    case 'hold':
      return hold(state, command, tx);
    case 'holdBest':
      return holdBest(state, command, tx);
    case 'extend':
      return extend(state, command, tx);
    case 'release':
      return release(state, command, tx);
    case 'expire':
      sweepExpired(state, command.nowMs, tx);
      return { ok: true };
    case 'confirm':
      return confirm(state, command, tx);
    case 'cancel':
      return cancel(state, command, tx);
    case 'block':
    case 'unblock':
      return block(state, command, tx);
    default:
      return refuse('INVALID_COMMAND', `unknown command ${(command as { type: unknown }).type}`);
  }
}

/** Up to this many changed seats are de-duplicated by scanning a list. */
const SMALL_CHANGE = 16;

/** Records what a command touched, so `apply` can report changed seats and bump the version once. */
class Change {
  isChanged = false;
  /** Changed seats in order, each once. Most commands touch a handful: a list, and a Set only past that. */
  readonly #seats: number[] = [];
  #seen?: Set<number>;
  constructor(readonly state: ShowState) {}

  setSeat(index: number, status: number): void {
    this.state.seats[index] = status;
    this.isChanged = true;
    if (this.#seats.length < SMALL_CHANGE) {
      if (!this.#seats.includes(index)) this.#seats.push(index);
      return;
    }
    this.#seen ??= new Set(this.#seats);
    if (this.#seen.has(index)) return;
    this.#seen.add(index);
    this.#seats.push(index);
  }
  touch(): void {
    this.isChanged = true;
  }
  seatList(): number[] {
    return this.#seats;
  }
}

function refuse(code: RefusalCode, message: string, seats?: string[]): Refusal {
  return seats ? { ok: false, code, message, seats } : { ok: false, code, message };
}

/** Frees every hold whose time has passed. Runs first in every command, so expiry never waits for a timer. */
function sweepExpired(state: ShowState, nowMs: number, tx: Change): void {
  if (nowMs < state.nextExpiryMs) return;
  let next = Number.POSITIVE_INFINITY;
  for (const hold of state.holds.values()) {
    if (hold.expiresAtMs <= nowMs) dropHold(state, hold, AVAILABLE, tx);
    else next = Math.min(next, hold.expiresAtMs);
  }
  state.nextExpiryMs = next;
}

/** Removes a hold, putting its seats into `seatStatus`. Does not recompute nextExpiryMs (a lower bound). */
function dropHold(state: ShowState, hold: Hold, seatStatus: number, tx: Change): void {
  for (const i of hold.seats) tx.setSeat(i, seatStatus);
  state.holds.delete(hold.id);
  const left = (state.heldByOwner.get(hold.ownerId) ?? 0) - hold.seats.length;
  if (left > 0) state.heldByOwner.set(hold.ownerId, left);
  else state.heldByOwner.delete(hold.ownerId);
  tx.touch();
}

function addHold(state: ShowState, hold: Hold, tx: Change): HoldView {
  for (const i of hold.seats) tx.setSeat(i, HELD);
  state.holds.set(hold.id, hold);
  state.heldByOwner.set(hold.ownerId, (state.heldByOwner.get(hold.ownerId) ?? 0) + hold.seats.length);
  state.nextExpiryMs = Math.min(state.nextExpiryMs, hold.expiresAtMs);
  return holdView(state, hold);
}

export function holdView(state: ShowState, hold: Hold): HoldView {
  return {
    id: hold.id,
    showId: state.showId,
    ownerId: hold.ownerId,
    seats: hold.seats.map((i) => state.layout.labels[i]!),
    createdAtMs: hold.createdAtMs,
    expiresAtMs: hold.expiresAtMs,
  };
}

/** Labels → indices: unknown labels and duplicates are refused, and nothing is looked at twice. */
function resolveSeats(state: ShowState, labels: readonly string[]): { ok: true; seats: number[] } | Refusal {
  if (!Array.isArray(labels) || labels.length === 0)
    return refuse('INVALID_COMMAND', 'name at least one seat');
  if (labels.length > MAX_SEATS_PER_COMMAND)
    return refuse('INVALID_COMMAND', 'too many seats in one command');
  const seats: number[] = [];
  const unknown: string[] = [];
  const seen = new Set<number>();
  for (const label of labels) {
    const i = state.layout.indexOf.get(label);
    if (i === undefined) unknown.push(String(label));
    else if (seen.has(i)) return refuse('INVALID_COMMAND', `seat ${label} is named twice`, [label]);
    else {
      seen.add(i);
      seats.push(i);
    }
  }
  if (unknown.length > 0) return refuse('UNKNOWN_SEAT', `no such seat: ${unknown.join(', ')}`, unknown);
  return { ok: true, seats };
}

function takenAmong(state: ShowState, seats: readonly number[]): string[] {
  return seats.filter((i) => state.seats[i] !== AVAILABLE).map((i) => state.layout.labels[i]!);
}

function checkHoldLimits(
  state: ShowState,
  command: { holdId: string; ownerId: string; expiresAtMs: number; nowMs: number; maxSeatsPerOwner: number },
  count: number,
): Refusal | undefined {
  if (typeof command.holdId !== 'string' || command.holdId.length === 0 || state.holds.has(command.holdId))
    return refuse('INVALID_COMMAND', 'a hold needs a new id');
  if (!(command.expiresAtMs > command.nowMs))
    return refuse('INVALID_COMMAND', 'a hold must expire after now');
  const already = state.heldByOwner.get(command.ownerId) ?? 0;
  if (already + count > command.maxSeatsPerOwner)
    return refuse(
      'SEAT_LIMIT_EXCEEDED',
      `at most ${command.maxSeatsPerOwner} seats may be held per show at once; you hold ${already}`,
    );
  return undefined;
}

function hold(state: ShowState, command: HoldCommand, tx: Change): ShowReply {
  sweepExpired(state, command.nowMs, tx);
  const resolved = resolveSeats(state, command.seats);
  if (!resolved.ok) return resolved;
  const limit = checkHoldLimits(state, command, resolved.seats.length);
  if (limit) return limit;
  const taken = takenAmong(state, resolved.seats);
  if (taken.length > 0) return refuse('SEATS_UNAVAILABLE', `seats already taken: ${taken.join(', ')}`, taken);
  if (state.forbidSingleSeatGaps) {
    const stranded = strandedBy(state, resolved.seats);
    if (stranded.length > 0)
      return refuse(
        'SINGLE_SEAT_STRANDED',
        `this choice would leave ${stranded.join(', ')} as a single empty seat; choose seats beside it`,
        stranded,
      );
  }
  const created: Hold = {
    id: command.holdId,
    ownerId: command.ownerId,
    seats: resolved.seats,
    createdAtMs: command.nowMs,
    expiresAtMs: command.expiresAtMs,
  };
  return { ok: true, hold: addHold(state, created, tx) };
}

/** Available neighbours of `taking` that would be left with no available neighbour of their own. */
function strandedBy(state: ShowState, taking: readonly number[]): string[] {
  const { layout } = state;
  const scratch = state.seats.slice();
  for (const i of taking) scratch[i] = HELD;
  const stranded = new Set<number>();
  for (const i of taking) {
    const [runStart, runEnd] = layout.runs[layout.runOf[i]!]!;
    for (const n of [i - 1, i + 1]) {
      if (isStrandedAfter(scratch, n, runStart, runEnd, 0, 0)) stranded.add(n);
    }
  }
  return [...stranded].sort((a, b) => a - b).map((i) => layout.labels[i]!);
}

function holdBest(state: ShowState, command: HoldBestCommand, tx: Change): ShowReply {
  sweepExpired(state, command.nowMs, tx);
  const { count } = command;
  if (!Number.isInteger(count) || count < 1 || count > MAX_SEATS_PER_COMMAND)
    return refuse('INVALID_COMMAND', 'count must be a positive whole number');
  let category = -1;
  if (command.category !== undefined) {
    category = state.layout.categories.indexOf(command.category);
    if (category < 0) return refuse('INVALID_COMMAND', `this show has no category ${command.category}`);
  }
  const limit = checkHoldLimits(state, command, count);
  if (limit) return limit;
  const seats =
    bestBlock(state.layout, state.seats, count, category) ??
    (command.allowSplit ? bestSplit(state.layout, state.seats, count, category) : undefined);
  if (!seats)
    return refuse(
      'SEATS_UNAVAILABLE',
      command.allowSplit
        ? `fewer than ${count} seats are available`
        : `no ${count} adjacent seats are available together`,
      [],
    );
  const created: Hold = {
    id: command.holdId,
    ownerId: command.ownerId,
    seats,
    createdAtMs: command.nowMs,
    expiresAtMs: command.expiresAtMs,
  };
  return { ok: true, hold: addHold(state, created, tx) };
}

/** Finds the caller's live hold. Looks before sweeping so an expired hold is reported as expired. */
function ownLiveHold(
  state: ShowState,
  command: { holdId: string; ownerId: string; nowMs: number },
  tx: Change,
): { ok: true; hold: Hold } | Refusal {
  const found = state.holds.get(command.holdId);
  sweepExpired(state, command.nowMs, tx);
  if (!found) return refuse('HOLD_NOT_FOUND', 'no such hold: it was released, confirmed or has expired');
  if (found.ownerId !== command.ownerId) return refuse('HOLD_NOT_OWNED', 'this hold belongs to someone else');
  if (found.expiresAtMs <= command.nowMs) return refuse('HOLD_EXPIRED', 'the hold has expired');
  return { ok: true, hold: found };
}

function extend(state: ShowState, command: ExtendCommand, tx: Change): ShowReply {
  const found = ownLiveHold(state, command, tx);
  if (!found.ok) return found;
  const { hold: live } = found;
  const fromMs = command.extendFrom === 'expiry' ? live.expiresAtMs : command.nowMs;
  const expiresAtMs = Math.min(fromMs + command.extendByMs, live.createdAtMs + command.maxLifetimeMs);
  if (expiresAtMs > live.expiresAtMs) {
    live.expiresAtMs = expiresAtMs;
    tx.touch();
  }
  return { ok: true, hold: holdView(state, live) };
}

function release(state: ShowState, command: ReleaseCommand, tx: Change): ShowReply {
  const found = ownLiveHold(state, command, tx);
  if (!found.ok) return found;
  dropHold(state, found.hold, AVAILABLE, tx);
  return { ok: true };
}

function confirm(state: ShowState, command: ConfirmCommand, tx: Change): ShowReply {
  const existing = state.bookings.get(command.bookingId);
  if (existing) {
    sweepExpired(state, command.nowMs, tx);
    const labels = existing.map((i) => state.layout.labels[i]!);
    const same = labels.length === command.seats.length && labels.every((l, k) => l === command.seats[k]);
    if (!same) return refuse('BOOKING_CONFLICT', 'this booking id is already confirmed with other seats');
    return { ok: true, bookingId: command.bookingId, seats: labels };
  }
  const found = ownLiveHold(state, command, tx);
  if (found.ok) {
    const seats = found.hold.seats;
    dropHold(state, found.hold, BOOKED, tx);
    state.bookings.set(command.bookingId, seats);
    return { ok: true, bookingId: command.bookingId, seats: seats.map((i) => state.layout.labels[i]!) };
  }
  if (found.code === 'HOLD_NOT_OWNED' || !command.allowRehold) return found;
  // The hold has gone (expired or swept): the same seats can still be booked if nobody took them.
  const resolved = resolveSeats(state, command.seats);
  if (!resolved.ok) return resolved;
  const taken = takenAmong(state, resolved.seats);
  if (taken.length > 0) return refuse('HOLD_EXPIRED', 'the hold expired and some seats were taken', taken);
  for (const i of resolved.seats) tx.setSeat(i, BOOKED);
  state.bookings.set(command.bookingId, resolved.seats);
  return { ok: true, bookingId: command.bookingId, seats: command.seats.slice() };
}

function cancel(state: ShowState, command: CancelCommand, tx: Change): ShowReply {
  sweepExpired(state, command.nowMs, tx);
  const seats = state.bookings.get(command.bookingId);
  if (!seats) return refuse('BOOKING_NOT_FOUND', 'no confirmed booking with that id on this show');
  for (const i of seats) tx.setSeat(i, AVAILABLE);
  state.bookings.delete(command.bookingId);
  return { ok: true, seats: seats.map((i) => state.layout.labels[i]!) };
}

function block(state: ShowState, command: BlockCommand, tx: Change): ShowReply {
  sweepExpired(state, command.nowMs, tx);
  const resolved = resolveSeats(state, command.seats);
  if (!resolved.ok) return resolved;
  const from = command.type === 'block' ? AVAILABLE : BLOCKED;
  const to = command.type === 'block' ? BLOCKED : AVAILABLE;
  const wrong = resolved.seats.filter((i) => state.seats[i] !== from).map((i) => state.layout.labels[i]!);
  if (wrong.length > 0)
    return refuse(
      'SEATS_UNAVAILABLE',
      command.type === 'block'
        ? `seats not available to block: ${wrong.join(', ')}`
        : `seats not blocked: ${wrong.join(', ')}`,
      wrong,
    );
  for (const i of resolved.seats) tx.setSeat(i, to);
  return { ok: true, seats: command.seats.slice() };
}

export interface SeatCounts {
  available: number;
  held: number;
  booked: number;
  blocked: number;
}

export function countSeats(seats: Uint8Array): SeatCounts {
  const c = [0, 0, 0, 0];
  for (let i = 0; i < seats.length; i++) c[seats[i]!]!++;
  return { available: c[0]!, held: c[1]!, booked: c[2]!, blocked: c[3]! };
}

/**
 * The invariants, checked in full: every seat is in exactly one known state, every held seat belongs to
 * exactly one hold, every booked seat to exactly one booking, and the per-owner counts add up.
 * Returns the violations found (empty when the state is sound).
 */
export function invariantViolations(state: ShowState): string[] {
  const problems: string[] = [];
  const heldBy = new Map<number, string>();
  const bookedBy = new Map<number, string>();
  const perOwner = new Map<string, number>();
  let earliest = Number.POSITIVE_INFINITY;
  for (const h of state.holds.values()) {
    earliest = Math.min(earliest, h.expiresAtMs);
    perOwner.set(h.ownerId, (perOwner.get(h.ownerId) ?? 0) + h.seats.length);
    for (const i of h.seats) {
      if (heldBy.has(i)) problems.push(`seat ${i} is in holds ${heldBy.get(i)} and ${h.id}`);
      heldBy.set(i, h.id);
    }
  }
  for (const [id, seats] of state.bookings) {
    for (const i of seats) {
      if (bookedBy.has(i) || heldBy.has(i)) problems.push(`seat ${i} is booked by ${id} and taken elsewhere`);
      bookedBy.set(i, id);
    }
  }
  for (let i = 0; i < state.seats.length; i++) {
    const s = state.seats[i]!;
    if (s > BLOCKED) problems.push(`seat ${i} has unknown state ${s}`);
    if ((s === HELD) !== heldBy.has(i))
      problems.push(`seat ${i} is ${SEAT_STATUSES[s]} but hold says otherwise`);
    if ((s === BOOKED) !== bookedBy.has(i))
      problems.push(`seat ${i} is ${SEAT_STATUSES[s]} but bookings disagree`);
  }
  for (const [owner, n] of perOwner)
    if (state.heldByOwner.get(owner) !== n)
      problems.push(`owner ${owner} count ${state.heldByOwner.get(owner)} ≠ ${n}`);
  if (state.heldByOwner.size !== perOwner.size) problems.push('heldByOwner has owners without holds');
  if (state.nextExpiryMs > earliest) problems.push('nextExpiryMs is later than the earliest hold expiry');
  return problems;
}
