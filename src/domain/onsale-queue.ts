/**
 * @module onsale-queue
 * The waiting room's functional core: the seeded shuffle, one on-sale's queue order in memory, the
 * answer a buyer polls, and the admission rate. No clock, no randomness of its own, no database: the
 * service (`onsales.ts`) feeds it rows and times, so a restart or an audit rebuilds the same order.
 */
import { createHash } from 'node:crypto';

export type OnsaleState = 'scheduled' | 'open' | 'closed';
export type QueueState = 'waiting' | 'admitted' | 'closed';

/** Most buyers admitted in one tick, whatever the rate says: bounds one tick's write. */
export const MAX_ADMITTED_PER_TICK = 500;
/** Seats a typical buyer takes, for the rate that follows the seats left (no `admitPerMinute`). */
export const ASSUMED_SEATS_PER_BUYER = 2;
/** The slowest the automatic rate goes while any seat is left. */
export const MIN_ADMIT_PER_MINUTE = 1;

/**
 * A PRNG (SHA-256 in counter mode) from a hex seed: portable, so anyone with the seed
 * and the rows can replay the shuffle with any SHA-256, and uniform enough by construction.
 */
export function seededRandom(seedHex: string): () => number {
  let counter = 0;
  let block = Buffer.alloc(0);
  let at = 0;
  return () => {
    if (at + 6 > block.length) {
      block = createHash('sha256').update(`${seedHex}:${counter++}`).digest();
      at = 0;
    }
    // 48 bits per draw: exact in a double, and far finer than any queue length.
    const value = block.readUIntBE(at, 6) / 2 ** 48;
    at += 6;
    return value;
  };
}

/** Fisher–Yates with the seeded PRNG: every order of `items` equally likely, the same for one seed. */
export function seededShuffle<T>(items: readonly T[], seedHex: string): T[] {
  const out = items.slice();
  const random = seededRandom(seedHex);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = out[i]!;
    out[i] = out[j]!;
    out[j] = swap;
  }
  return out;
}

/** One buyer's row as stored: arrival `seq`, and their admission's times (ms) once admitted. */
export interface QueueRow {
  userId: string;
  seq: number;
  /** Covered by the opening's shuffle (joined before it). */
  isShuffled?: boolean;
  admittedAtMs?: number;
  expiresAtMs?: number;
  isEnded?: boolean;
}

interface Admission {
  admittedAtMs: number;
  expiresAtMs: number;
}

/**
 * One on-sale's queue in memory: before opening, arrivals in order; from opening, the shuffled early
 * arrivals, then later ones in arrival order. Admissions are a prefix of the order. A few dozen bytes
 * per buyer (an array slot, a map entry), so 100,000 waiting buyers fit in a few megabytes.
 */
export class QueueOrder {
  readonly #order: string[] = [];
  readonly #indexOf = new Map<string, number>();
  readonly #seqOf = new Map<string, number>();
  readonly #admissions = new Map<string, Admission>();
  readonly #ended = new Set<string>();
  #admittedCount = 0;
  #shuffledCount = 0;
  #isShuffled = false;

  /**
   * Rebuilds the order from stored rows (any order): the shuffled rows by `seq`, shuffled again from
   * the seed, then the others by `seq`; then the admitted moved to the front in that order (admission
   * follows the order, so they were its first ones when admitted).
   */
  static fromRows(rows: readonly QueueRow[], seed?: string): QueueOrder {
    const queue = new QueueOrder();
    const sorted = rows.slice().sort((a, b) => a.seq - b.seq);
    if (seed === undefined) {
      for (const row of sorted) queue.join(row.userId, row.seq);
      return queue;
    }
    const early = sorted.filter((r) => r.isShuffled);
    for (const row of early) queue.join(row.userId, row.seq);
    queue.open(seed, early.length);
    for (const row of sorted) if (!row.isShuffled) queue.join(row.userId, row.seq);
    const byUser = new Map(sorted.map((r) => [r.userId, r]));
    const order = queue.#order.slice();
    const admitted = order.filter((u) => byUser.get(u)!.admittedAtMs !== undefined);
    const rest = order.filter((u) => byUser.get(u)!.admittedAtMs === undefined);
    queue.#order.length = 0;
    queue.#order.push(...admitted, ...rest);
    for (let i = 0; i < queue.#order.length; i++) queue.#indexOf.set(queue.#order[i]!, i);
    for (const userId of admitted) {
      const row = byUser.get(userId)!;
      queue.admit([userId], row.admittedAtMs!, row.expiresAtMs ?? row.admittedAtMs!);
      if (row.isEnded) queue.end(userId);
    }
    return queue;
  }

  get size(): number {
    return this.#order.length;
  }

  get admittedCount(): number {
    return this.#admittedCount;
  }

  get waitingCount(): number {
    return this.#order.length - this.#admittedCount;
  }

  get isShuffled(): boolean {
    return this.#isShuffled;
  }

  has(userId: string): boolean {
    return this.#indexOf.has(userId);
  }

  /**
   * A new arrival goes to the back, in `seq` order among those not yet shuffled or admitted: concurrent
   * joins may finish out of order, and a restart sorts by `seq`. Joining again keeps the place.
   */
  join(userId: string, seq: number): void {
    if (this.#indexOf.has(userId)) return;
    const floor = Math.max(this.#shuffledCount, this.#admittedCount);
    let at = this.#order.length;
    while (at > floor && this.#seqOf.get(this.#order[at - 1]!)! > seq) at--;
    this.#order.splice(at, 0, userId);
    this.#seqOf.set(userId, seq);
    for (let i = at; i < this.#order.length; i++) this.#indexOf.set(this.#order[i]!, i);
  }

  /**
   * Opening: the first `earlyCount` arrivals (everyone who joined before it) are shuffled with `seed`;
   * later arrivals stay behind them in arrival order.
   */
  open(seed: string, earlyCount: number): void {
    if (this.#isShuffled) throw new Error('the queue is already open');
    if (this.#admittedCount > 0) throw new Error('nobody is admitted before opening');
    const shuffled = seededShuffle(this.#order.slice(0, earlyCount), seed);
    for (let i = 0; i < shuffled.length; i++) {
      this.#order[i] = shuffled[i]!;
      this.#indexOf.set(shuffled[i]!, i);
    }
    this.#shuffledCount = shuffled.length;
    this.#isShuffled = true;
  }

  /** The next `count` waiting buyers, in order (what `admit` would take). */
  nextWaiting(count: number): string[] {
    return this.#order.slice(this.#admittedCount, this.#admittedCount + Math.max(0, count));
  }

  /**
   * Admits `userIds`, which must be the next waiting ones in order. One already admitted is skipped: the
   * queue may have been reloaded from the store after the admission was written.
   */
  admit(userIds: readonly string[], admittedAtMs: number, expiresAtMs: number): void {
    for (const userId of userIds) {
      if (this.#admissions.has(userId)) continue;
      if (this.#order[this.#admittedCount] !== userId)
        throw new Error(`admission out of order: ${userId} is not next`);
      this.#admissions.set(userId, { admittedAtMs, expiresAtMs });
      this.#admittedCount++;
    }
  }

  /** A token ends at booking: the place does not come back. */
  end(userId: string): void {
    if (this.#admissions.has(userId)) this.#ended.add(userId);
  }

  isEnded(userId: string): boolean {
    return this.#ended.has(userId);
  }

  admissionOf(userId: string): Admission | undefined {
    return this.#admissions.get(userId);
  }

  /** 1-based place in the order; undefined for someone not in the queue. */
  positionOf(userId: string): number | undefined {
    const index = this.#indexOf.get(userId);
    return index === undefined ? undefined : index + 1;
  }

  /** The order itself (tests and audits); a copy. */
  order(): string[] {
    return this.#order.slice();
  }

  /** Everyone in the queue, for pushing a change to all of them. */
  members(): IterableIterator<string> {
    return this.#indexOf.keys();
  }
}

/** What a buyer sees, per the contract. `position`/`ahead` are null until the shuffle decides them. */
export interface QueueView {
  position: number | null;
  ahead: number | null;
  estimatedWaitSeconds: number;
  state: QueueState;
  admission?: { token: string; expiresAt: string };
}

export interface ViewInput {
  onsaleState: OnsaleState;
  opensAtMs: number;
  admitPerMinute: number;
  nowMs: number;
}

/**
 * A buyer's answer. An admission that ended (booked) or ran out answers `closed`: for that buyer the
 * queue is over, and the place does not come back. The token is signed by the caller (`sign`), only
 * for a live admission.
 */
export function viewOf(
  queue: QueueOrder,
  userId: string,
  input: ViewInput,
  sign: (admission: Admission) => string,
): QueueView | undefined {
  const position = queue.positionOf(userId);
  if (position === undefined) return undefined;
  const closed: QueueView = { position, ahead: 0, estimatedWaitSeconds: 0, state: 'closed' };
  if (input.onsaleState === 'closed') return closed;
  const admission = queue.admissionOf(userId);
  if (admission) {
    if (queue.isEnded(userId) || admission.expiresAtMs <= input.nowMs) return closed;
    return {
      position,
      ahead: 0,
      estimatedWaitSeconds: 0,
      state: 'admitted',
      admission: { token: sign(admission), expiresAt: new Date(admission.expiresAtMs).toISOString() },
    };
  }
  const untilOpenSeconds = Math.max(0, Math.ceil((input.opensAtMs - input.nowMs) / 1000));
  if (!queue.isShuffled)
    return { position: null, ahead: null, estimatedWaitSeconds: untilOpenSeconds, state: 'waiting' };
  const ahead = position - 1 - queue.admittedCount;
  return {
    position,
    ahead,
    estimatedWaitSeconds:
      untilOpenSeconds + Math.ceil(((ahead + 1) * 60) / Math.max(input.admitPerMinute, 1e-9)),
    state: 'waiting',
  };
}

/**
 * Buyers admitted per minute when the on-sale names no rate: as many buyers as the seats left can serve
 * within one hold's lifetime, assuming `ASSUMED_SEATS_PER_BUYER` seats each:
 *
 *   admitPerMinute = max(1, seatsAvailable / ASSUMED_SEATS_PER_BUYER) × 60 / holdTtlSeconds
 *
 * Held seats are not counted as left, so the rate slows while admitted buyers hold and picks up when
 * their holds lapse or are released. Zero seats left: zero (the sold-out check closes the on-sale).
 */
export function automaticAdmitPerMinute(seatsAvailable: number, holdTtlSeconds: number): number {
  if (seatsAvailable <= 0) return 0;
  const buyersPerHoldLifetime = Math.max(MIN_ADMIT_PER_MINUTE, seatsAvailable / ASSUMED_SEATS_PER_BUYER);
  return (buyersPerHoldLifetime * 60) / holdTtlSeconds;
}

/**
 * How many to admit this tick: the credit carried from earlier ticks plus the rate over the elapsed
 * time; whole buyers are admitted and the fraction is carried, so a rate below one a tick still admits.
 */
export function admissionsDue(
  creditBefore: number,
  admitPerMinute: number,
  elapsedMs: number,
  waiting: number,
): { count: number; credit: number } {
  const credit = creditBefore + (admitPerMinute * Math.max(0, elapsedMs)) / 60_000;
  const count = Math.min(Math.floor(credit), waiting, MAX_ADMITTED_PER_TICK);
  // Credit does not pile up while nobody waits: a burst of late arrivals must not all pass at once.
  const left = waiting > count ? credit - count : Math.min(credit - count, 1);
  return { count, credit: Math.min(left, MAX_ADMITTED_PER_TICK) };
}
