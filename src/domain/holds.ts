/**
 * @module holds
 * Seat holds: the use cases behind the holds routes. They check the show (exists, on sale), build the
 * actor command with the time, ttl and limits from config, and translate the actor's refusals into the
 * contract's failures. A hold id carries its show id, so any hold can be routed to its actor.
 */
import type { ShardRouter } from '../actors/shard-router.js';
import type { HoldView, ShowCommand, ShowReply } from '../actors/show-actor.js';
import type { Config } from '../config.js';
import { randomToken } from '../ids.js';
import { type Failure, failure } from './failure.js';
import { HeldSeatLedger } from './held-seat-ledger.js';
import type { ShowInfoCache } from './show-info.js';

export interface PublicHold {
  id: string;
  showId: string;
  seats: string[];
  expiresAt: string;
  createdAt: string;
}

export type HoldRequest =
  | { seats: string[]; count?: undefined; category?: undefined; allowSplit?: undefined }
  | { count: number; category?: string; allowSplit?: boolean; seats?: undefined };

/** `hld_<random>.<showId>` (12 random bytes, as `shortId`): show ids never contain a dot. */
export function holdIdFor(showId: string): string {
  return `hld_${randomToken(12)}.${showId}`;
}

export function showIdOfHold(holdId: string): string | undefined {
  const dot = holdId.indexOf('.');
  return dot > 0 && dot < holdId.length - 1 ? holdId.slice(dot + 1) : undefined;
}

export function publicHold(hold: HoldView): PublicHold {
  return {
    id: hold.id,
    showId: hold.showId,
    seats: hold.seats,
    expiresAt: new Date(hold.expiresAtMs).toISOString(),
    createdAt: new Date(hold.createdAtMs).toISOString(),
  };
}

/** Holds whose expiry time is remembered, so a hold the sweep removed answers 410, not 404. */
export const REMEMBERED_HOLDS = 100_000;

interface RememberedHold {
  ownerId: string;
  expiresAtMs: number;
}

export class HoldService {
  /**
   * Live holds made through this process, oldest first: once the actor has swept an expired hold it no
   * longer knows it, and the contract answers 410 HOLD_EXPIRED for it, not 404. Released and confirmed
   * holds are forgotten; a restart forgets all (those then answer 404).
   */
  readonly #remembered = new Map<string, RememberedHold>();
  /** Seats each customer holds across every show, for MAX_HELD_SEATS_PER_USER. */
  readonly #held: HeldSeatLedger;

  constructor(
    private readonly router: ShardRouter,
    private readonly shows: ShowInfoCache,
    private readonly config: Config,
    private readonly now: () => number,
  ) {
    this.#held = new HeldSeatLedger(config.MAX_HELD_SEATS_PER_USER);
  }

  async create(
    userId: string,
    showId: string,
    request: HoldRequest,
  ): Promise<{ ok: true; hold: PublicHold; view: HoldView } | Failure> {
    const onSale = this.checkOnSale(showId);
    if (onSale) return onSale;
    const prices = this.shows.get(showId)?.prices;
    // The actor would refuse it too, but could not say which field was wrong.
    if (request.category !== undefined && prices && prices[request.category] === undefined)
      return failure('VALIDATION_FAILED', `this show has no category ${request.category}`, {
        fields: { category: `one of ${Object.keys(prices).join(', ')}` },
      });
    const nowMs = this.now();
    const common = {
      holdId: holdIdFor(showId),
      ownerId: userId,
      nowMs,
      expiresAtMs: nowMs + this.config.HOLD_TTL_SECONDS * 1000,
      maxSeatsPerOwner: this.config.MAX_SEATS_PER_USER,
    };
    const requested = request.seats !== undefined ? request.seats.length : request.count;
    // Reserved before the actor is asked, released if it refuses: holds for other shows run on other
    // threads at the same time, and each must see the seats the others are about to take.
    const reserved = this.#held.reserve(userId, common.holdId, requested, common.expiresAtMs, nowMs);
    if (!reserved.ok) {
      const limit = this.#held.maxSeatsPerOwner;
      return failure(
        'SEAT_LIMIT_EXCEEDED',
        `you can hold at most ${limit} seats at once across all shows; you hold ${reserved.held}`,
        { limit, held: reserved.held, requested, scope: 'all_shows' },
      );
    }
    const command: ShowCommand =
      request.seats !== undefined
        ? { type: 'hold', seats: request.seats, ...common }
        : {
            type: 'holdBest',
            count: request.count,
            category: request.category,
            allowSplit: request.allowSplit,
            ...common,
          };
    const reply = await this.router.send(showId, command).catch((err: unknown) => {
      this.#held.drop(common.holdId);
      throw err;
    });
    if (!reply.ok || !('hold' in reply)) {
      this.#held.drop(common.holdId);
      return reply.ok ? failure('INTERNAL', 'the allocator gave no hold') : refusal(reply);
    }
    this.#held.update(reply.hold.id, reply.hold.seats.length, reply.hold.expiresAtMs);
    this.#remember(reply.hold);
    return { ok: true, hold: publicHold(reply.hold), view: reply.hold };
  }

  /**
   * A hold that became a booking (or was otherwise ended) is no longer reported as expired, and its
   * seats no longer count towards its owner's cap.
   */
  forget(holdId: string): void {
    this.#remembered.delete(holdId);
    this.#held.drop(holdId);
  }

  #remember(hold: HoldView): void {
    this.#remembered.delete(hold.id);
    this.#remembered.set(hold.id, { ownerId: hold.ownerId, expiresAtMs: hold.expiresAtMs });
    if (this.#remembered.size > REMEMBERED_HOLDS) {
      const oldest = this.#remembered.keys().next().value;
      if (oldest !== undefined) this.#remembered.delete(oldest);
    }
  }

  /** The answer for a hold the actor does not know: expired (410) if we saw it expire, else 404. */
  #gone(userId: string, holdId: string, notFound: Failure): Failure {
    const known = this.#remembered.get(holdId);
    if (!known || known.expiresAtMs > this.now()) return notFound;
    if (known.ownerId !== userId) return failure('HOLD_NOT_OWNED', 'this hold belongs to someone else');
    return failure('HOLD_EXPIRED', 'the hold has expired');
  }

  async get(
    userId: string,
    holdId: string,
  ): Promise<{ ok: true; hold: PublicHold; view: HoldView } | Failure> {
    const showId = showIdOfHold(holdId);
    if (!showId) return failure('HOLD_NOT_FOUND', 'no such hold');
    const hold = await this.router.getHold(showId, holdId);
    if (!hold)
      return this.#gone(
        userId,
        holdId,
        failure('HOLD_NOT_FOUND', 'no such hold: it was released or confirmed'),
      );
    if (hold.ownerId !== userId) return failure('HOLD_NOT_OWNED', 'this hold belongs to someone else');
    if (hold.expiresAtMs <= this.now()) return failure('HOLD_EXPIRED', 'the hold has expired');
    return { ok: true, hold: publicHold(hold), view: hold };
  }

  async extend(userId: string, holdId: string): Promise<{ ok: true; hold: PublicHold } | Failure> {
    const showId = showIdOfHold(holdId);
    if (!showId) return failure('HOLD_NOT_FOUND', 'no such hold');
    const reply = await this.router.send(showId, {
      type: 'extend',
      holdId,
      ownerId: userId,
      nowMs: this.now(),
      extendByMs: this.config.HOLD_TTL_SECONDS * 1000,
      maxLifetimeMs: this.config.HOLD_MAX_SECONDS * 1000,
      extendFrom: 'expiry',
    });
    if (!reply.ok)
      return reply.code === 'HOLD_NOT_FOUND' ? this.#gone(userId, holdId, refusal(reply)) : refusal(reply);
    if (!('hold' in reply)) return failure('INTERNAL', 'the allocator gave no hold');
    this.#held.update(reply.hold.id, reply.hold.seats.length, reply.hold.expiresAtMs);
    this.#remember(reply.hold);
    return { ok: true, hold: publicHold(reply.hold) };
  }

  async release(userId: string, holdId: string): Promise<{ ok: true } | Failure> {
    const showId = showIdOfHold(holdId);
    if (!showId) return failure('HOLD_NOT_FOUND', 'no such hold');
    const reply = await this.router.send(showId, {
      type: 'release',
      holdId,
      ownerId: userId,
      nowMs: this.now(),
    });
    if (reply.ok) {
      this.forget(holdId);
      return { ok: true };
    }
    return reply.code === 'HOLD_NOT_FOUND' ? this.#gone(userId, holdId, refusal(reply)) : refusal(reply);
  }

  /** A show can be held while it is scheduled and has not started. */
  checkOnSale(showId: string): Failure | undefined {
    const info = this.shows.get(showId);
    if (!info) return failure('SHOW_NOT_FOUND', `no show ${showId}`);
    if (info.status !== 'scheduled') return failure('RULE_VIOLATION', 'this show has been cancelled');
    if (info.startMs <= this.now()) return failure('RULE_VIOLATION', 'this show has already started');
    return undefined;
  }
}

/** The actor's refusal, as the contract's failure (details.seats names the seats concerned). */
export function refusal(
  reply: Exclude<ShowReply, { ok: true }> | { ok: false; code: string; message: string; seats?: string[] },
): Failure {
  const details = reply.seats ? { seats: reply.seats } : undefined;
  switch (reply.code) {
    case 'SEATS_UNAVAILABLE':
    case 'SINGLE_SEAT_STRANDED':
    case 'SEAT_LIMIT_EXCEEDED':
    case 'HOLD_NOT_FOUND':
    case 'HOLD_EXPIRED':
    case 'HOLD_NOT_OWNED':
    case 'UNKNOWN_SEAT':
    case 'BOOKING_NOT_FOUND':
    case 'BOOKING_CONFLICT':
    case 'SHOW_NOT_FOUND':
      return failure(reply.code, reply.message, details);
    case 'INVALID_COMMAND':
      return failure('VALIDATION_FAILED', reply.message, details);
    case 'OVERLOADED':
      return failure('OVERLOADED', reply.message);
    // A shard restarting or recovering: the client may retry (503), it is not our bug (500).
    case 'WORKER_FAILED':
    case 'NOT_READY':
      return failure(reply.code, reply.message);
    // The router re-routes these itself; one that slipped through is a partition in motion: retry.
    case 'NOT_OWNER':
      return failure('NOT_READY', reply.message);
    default:
      return failure('INTERNAL', `unexpected allocator refusal ${reply.code}`);
  }
}
