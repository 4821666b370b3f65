/**
 * @module held-seat-ledger
 * How many seats each customer holds across all shows at once, for the per-user cap
 * (MAX_HELD_SEATS_PER_USER). Each show's actor knows only its own holds, and shows live on different
 * worker threads, so the count across shows is kept here, on the main thread that admits every hold
 * request: a request reserves its seats before it is sent to the actor, so two racing requests for
 * different shows cannot both pass a check that only one of them fits.
 */

interface Entry {
  ownerId: string;
  seats: number;
  expiresAtMs: number;
}

/** Entries are swept in full once the ledger has grown past twice its size at the last sweep. */
const MIN_SWEEP_SIZE = 1024;

export class HeldSeatLedger {
  readonly #holds = new Map<string, Entry>();
  readonly #byOwner = new Map<string, Set<string>>();
  #sweepAtSize = MIN_SWEEP_SIZE;

  constructor(readonly maxSeatsPerOwner: number) {}

  /**
   * Seats `ownerId` holds now. A hold counts until its expiry (the actor frees it at that instant,
   * swept or not), its release or its confirmation.
   */
  heldBy(ownerId: string, nowMs: number): number {
    const ids = this.#byOwner.get(ownerId);
    if (!ids) return 0;
    let held = 0;
    for (const id of ids) {
      const entry = this.#holds.get(id)!;
      if (entry.expiresAtMs <= nowMs) this.drop(id);
      else held += entry.seats;
    }
    return held;
  }

  /** Counts `seats` for a hold about to be asked of the actor, or says how many are held already. */
  reserve(
    ownerId: string,
    holdId: string,
    seats: number,
    expiresAtMs: number,
    nowMs: number,
  ): { ok: true } | { ok: false; held: number } {
    if (this.#holds.size >= this.#sweepAtSize) this.#sweep(nowMs);
    const held = this.heldBy(ownerId, nowMs);
    if (held + seats > this.maxSeatsPerOwner) return { ok: false, held };
    this.#holds.set(holdId, { ownerId, seats, expiresAtMs });
    let ids = this.#byOwner.get(ownerId);
    if (!ids) {
      ids = new Set();
      this.#byOwner.set(ownerId, ids);
    }
    ids.add(holdId);
    return { ok: true };
  }

  /** The actor's answer: the seats it actually holds and until when (also after an extension). */
  update(holdId: string, seats: number, expiresAtMs: number): void {
    const entry = this.#holds.get(holdId);
    if (!entry) return;
    entry.seats = seats;
    entry.expiresAtMs = expiresAtMs;
  }

  /** The hold was refused, released or confirmed: its seats no longer count. Idempotent. */
  drop(holdId: string): void {
    const entry = this.#holds.get(holdId);
    if (!entry) return;
    this.#holds.delete(holdId);
    const ids = this.#byOwner.get(entry.ownerId);
    ids?.delete(holdId);
    if (ids?.size === 0) this.#byOwner.delete(entry.ownerId);
  }

  /** Holds counted now (live, or reserved and not yet answered). */
  get size(): number {
    return this.#holds.size;
  }

  /** Forgets every expired hold, so customers who never come back do not grow the ledger. */
  #sweep(nowMs: number): void {
    for (const [id, entry] of this.#holds) if (entry.expiresAtMs <= nowMs) this.drop(id);
    this.#sweepAtSize = Math.max(MIN_SWEEP_SIZE, this.#holds.size * 2);
  }
}
