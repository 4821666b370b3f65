/**
 * @module offers
 * Promo codes: percent or flat discounts with a cap, a minimum amount, a validity window, total and
 * per-user limits and an optional scope (cities, movies, theaters, days of the week). A use is taken when
 * a booking is created (inside its transaction, so two bookings racing for the last use cannot both get
 * it) and given back when the booking fails, expires or is cancelled.
 */

import { newId } from '../ids.js';
import { forUpdate, type Queryable, type Store } from '../persistence/store.js';
import { type Failure, failure } from './failure.js';
import type { ShowInfo } from './show-info.js';

export interface OfferScope {
  cities?: string[];
  movieIds?: string[];
  theaterIds?: string[];
  /** 0 = Sunday … 6 = Saturday, of the show's start in UTC. */
  daysOfWeek?: number[];
}

export interface Offer {
  id: string;
  code: string;
  description: string;
  kind: 'percent' | 'flat';
  /** Percent (1..100) or a flat amount in minor units. */
  value: number;
  maxDiscount: number | null;
  minAmount: number;
  validFrom: string;
  validUntil: string;
  totalLimit: number | null;
  perUserLimit: number | null;
  usedCount: number;
  scope: OfferScope;
  isPublic: boolean;
  isActive: boolean;
  createdAt: string;
}

export type OfferInput = Omit<
  Offer,
  'id' | 'usedCount' | 'createdAt' | 'maxDiscount' | 'totalLimit' | 'perUserLimit'
> & {
  maxDiscount?: number | null;
  totalLimit?: number | null;
  perUserLimit?: number | null;
};

interface OfferRow {
  id: string;
  code: string;
  description: string;
  kind: 'percent' | 'flat';
  value: number;
  max_discount: number | null;
  min_amount: number;
  valid_from: string;
  valid_until: string;
  total_limit: number | null;
  per_user_limit: number | null;
  used_count: number;
  scope: string;
  is_public: number;
  is_active: number;
  created_at: string;
}

export const MAX_LISTED_OFFERS = 100;

function toOffer(r: OfferRow): Offer {
  return {
    id: r.id,
    code: r.code,
    description: r.description,
    kind: r.kind,
    value: r.value,
    maxDiscount: r.max_discount,
    minAmount: r.min_amount,
    validFrom: r.valid_from,
    validUntil: r.valid_until,
    totalLimit: r.total_limit,
    perUserLimit: r.per_user_limit,
    usedCount: r.used_count,
    scope: JSON.parse(r.scope) as OfferScope,
    isPublic: r.is_public === 1,
    isActive: r.is_active === 1,
    createdAt: r.created_at,
  };
}

/** The discount an offer gives on `amountMinor`: never more than the cap or the amount itself. */
export function discountOf(
  offer: Pick<Offer, 'kind' | 'value' | 'maxDiscount'>,
  amountMinor: number,
): number {
  const raw = offer.kind === 'percent' ? Math.floor((amountMinor * offer.value) / 100) : offer.value;
  const capped = offer.maxDiscount === null ? raw : Math.min(raw, offer.maxDiscount);
  return Math.max(0, Math.min(capped, amountMinor));
}

export class OfferService {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  async listPublic(): Promise<Offer[]> {
    const nowIso = new Date(this.now()).toISOString();
    const rows = await this.store.all<OfferRow>(
      `SELECT * FROM offers WHERE is_public = 1 AND is_active = 1 AND valid_from <= ? AND valid_until > ?
         AND (total_limit IS NULL OR used_count < total_limit) ORDER BY valid_until LIMIT ?`,
      [nowIso, nowIso, MAX_LISTED_OFFERS],
    );
    return rows.map(toOffer);
  }

  async get(id: string): Promise<Offer | undefined> {
    const row = await this.store.get<OfferRow>('SELECT * FROM offers WHERE id = ?', [id]);
    return row && toOffer(row);
  }

  /** Checks every rule of the code for this user, show and amount; does not take a use. */
  async evaluate(
    code: string,
    userId: string | undefined,
    show: ShowInfo,
    amountMinor: number,
  ): Promise<{ ok: true; offer: Offer; discount: number } | Failure> {
    const row = await this.store.get<OfferRow>('SELECT * FROM offers WHERE code = ?', [code]);
    const invalid = (reason: string, message: string) => failure('OFFER_INVALID', message, { reason, code });
    // A private code exists only for a signed-in customer: anonymously it answers exactly as an unknown
    // code does, so guessing codes without an account cannot even tell that one exists.
    if (row?.is_active !== 1 || (row.is_public !== 1 && !userId))
      return invalid('unknown_code', `${code} is not a valid promo code`);
    const offer = toOffer(row);
    const nowIso = new Date(this.now()).toISOString();
    if (nowIso < offer.validFrom) return invalid('not_started', `${code} is valid from ${offer.validFrom}`);
    if (nowIso >= offer.validUntil) return invalid('expired', `${code} expired at ${offer.validUntil}`);
    if (offer.totalLimit !== null && offer.usedCount >= offer.totalLimit)
      return invalid('exhausted', `${code} has been used up`);
    if (
      userId &&
      offer.perUserLimit !== null &&
      (await userUses(this.store, offer.id, userId)) >= offer.perUserLimit
    )
      return invalid('user_limit', `you have already used ${code} the maximum number of times`);
    if (amountMinor < offer.minAmount)
      return invalid('below_minimum', `${code} needs an order of at least ${offer.minAmount} (minor units)`);
    const scope = offer.scope;
    const lower = (xs: string[]) => xs.map((x) => x.toLowerCase());
    if (scope.cities?.length && !lower(scope.cities).includes(show.city.toLowerCase()))
      return invalid('out_of_scope', `${code} is not valid in ${show.city}`);
    if (scope.movieIds?.length && !scope.movieIds.includes(show.movieId))
      return invalid('out_of_scope', `${code} is not valid for this movie`);
    if (scope.theaterIds?.length && !scope.theaterIds.includes(show.theaterId))
      return invalid('out_of_scope', `${code} is not valid at this theater`);
    if (scope.daysOfWeek?.length && !scope.daysOfWeek.includes(new Date(show.startMs).getUTCDay()))
      return invalid('out_of_scope', `${code} is not valid on this day of the week`);
    return { ok: true, offer, discount: discountOf(offer, amountMinor) };
  }

  /**
   * Takes one use for a booking, on the booking's transaction `tx`. Two races, two mechanisms:
   * - the last use: the conditional UPDATE (`used_count < total_limit`, changes checked) gives it to
   *   exactly one booking (PostgreSQL's row lock makes a second updater re-check the new count);
   * - the per-user limit: a count over `offer_uses` decides a later insert, so the offer's row is locked
   *   first (`forUpdate`): a racing use of the same offer waits for this transaction and then counts
   *   this use (READ COMMITTED reads anew per statement). SQLite's transactions run one at a time.
   */
  async takeUse(
    tx: Queryable,
    offer: Offer,
    userId: string,
    bookingId: string,
  ): Promise<Failure | undefined> {
    if (offer.perUserLimit !== null) {
      await tx.get(`SELECT id FROM offers WHERE id = ?${forUpdate(tx)}`, [offer.id]);
      if ((await userUses(tx, offer.id, userId)) >= offer.perUserLimit)
        return failure('OFFER_INVALID', `you have already used ${offer.code} the maximum number of times`, {
          reason: 'user_limit',
          code: offer.code,
        });
    }
    const taken = await tx.run(
      'UPDATE offers SET used_count = used_count + 1 WHERE id = ? AND (total_limit IS NULL OR used_count < total_limit)',
      [offer.id],
    );
    if (taken.changes !== 1)
      return failure('OFFER_INVALID', `${offer.code} has been used up`, {
        reason: 'exhausted',
        code: offer.code,
      });
    await tx.run('INSERT INTO offer_uses (booking_id, offer_id, user_id, created_at) VALUES (?, ?, ?, ?)', [
      bookingId,
      offer.id,
      userId,
      new Date(this.now()).toISOString(),
    ]);
    return undefined;
  }

  /**
   * Takes the use again for a booking that gave it back (it lapsed) and is now being paid late: the
   * discount it was priced with stands only if the offer would still grant that use now (active, within
   * its dates, per-user and total limits). Inside one transaction, with the limits protected as in
   * `takeUse`, so racing payments cannot both take the last use. Idempotent: a booking that holds its
   * use already is left as it is (`offer_uses` is keyed by booking: a racing retake of the same booking
   * conflicts on that key and is refused, see below).
   */
  async retakeUse(bookingId: string, offerId: string, userId: string): Promise<Failure | undefined> {
    try {
      return await this.store.transaction(async (tx): Promise<Failure | undefined> => {
        if ((await findUse(tx, bookingId)) !== undefined) return undefined;
        const row = await tx.get<OfferRow>(`SELECT * FROM offers WHERE id = ?${forUpdate(tx)}`, [offerId]);
        const code = row?.code ?? offerId;
        const invalid = (reason: string, why: string) =>
          failure('OFFER_INVALID', `the booking lapsed and ${code} no longer applies: ${why}`, {
            reason,
            code,
          });
        if (row?.is_active !== 1) return invalid('withdrawn', 'the offer was withdrawn');
        const nowIso = new Date(this.now()).toISOString();
        if (nowIso < row.valid_from) return invalid('not_started', `it is valid from ${row.valid_from}`);
        if (nowIso >= row.valid_until) return invalid('expired', `it expired at ${row.valid_until}`);
        const refused = await this.takeUse(tx, toOffer(row), userId, bookingId);
        if (refused) throw new RefusedUse(invalid(String(refused.details?.reason), refused.message));
        return undefined;
      });
    } catch (err) {
      // A refusal after the conditional UPDATE ran must undo it: thrown, so the transaction rolls back.
      if (err instanceof RefusedUse) return err.failure;
      // Two late payments of one booking raced: the other took the use for it (offer_uses' key).
      if (isUniqueViolation(err) && (await findUse(this.store, bookingId)) !== undefined) return undefined;
      throw err;
    }
  }

  /**
   * Gives a booking's use back (failed, expired or cancelled), on the caller's transaction or the store.
   * Idempotent and race-free: the DELETE's changes decide who decrements the count.
   */
  async giveBackUse(q: Queryable, bookingId: string): Promise<void> {
    const offerId = await findUse(q, bookingId);
    if (!offerId) return;
    const deleted = await q.run('DELETE FROM offer_uses WHERE booking_id = ?', [bookingId]);
    if (deleted.changes !== 1) return;
    await q.run('UPDATE offers SET used_count = used_count - 1 WHERE id = ? AND used_count > 0', [offerId]);
  }

  async create(input: OfferInput): Promise<{ ok: true; offer: Offer } | Failure> {
    const id = newId('ofr');
    const nowIso = new Date(this.now()).toISOString();
    const invalid = invalidOffer(input);
    if (invalid) return invalid;
    // The code's unique index decides between racing creations: the loser inserts nothing.
    const inserted = await this.store.run(
      `INSERT INTO offers (id, code, description, kind, value, max_discount, min_amount, valid_from, valid_until,
          total_limit, per_user_limit, scope, is_public, is_active, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (code) DO NOTHING`,
      [
        id,
        input.code.toUpperCase(),
        input.description,
        input.kind,
        input.value,
        input.maxDiscount ?? null,
        input.minAmount,
        input.validFrom,
        input.validUntil,
        input.totalLimit ?? null,
        input.perUserLimit ?? null,
        JSON.stringify(input.scope ?? {}),
        input.isPublic ? 1 : 0,
        input.isActive ? 1 : 0,
        nowIso,
        nowIso,
      ],
    );
    if (inserted.changes === 0) return failure('CONFLICT', `an offer with code ${input.code} exists`);
    return { ok: true, offer: (await this.get(id))! };
  }

  async update(id: string, patch: Partial<OfferInput>): Promise<{ ok: true; offer: Offer } | Failure> {
    const current = await this.get(id);
    if (!current) return failure('OFFER_NOT_FOUND', `no offer ${id}`);
    const next = { ...current, ...patch };
    // Checked on the offer as it would be: a PATCH of the value alone could make a percent offer 150%.
    const invalid = invalidOffer(next);
    if (invalid) return invalid;
    await this.store.run(
      `UPDATE offers SET description = ?, value = ?, max_discount = ?, min_amount = ?, valid_from = ?, valid_until = ?,
         total_limit = ?, per_user_limit = ?, scope = ?, is_public = ?, is_active = ?, updated_at = ? WHERE id = ?`,
      [
        next.description,
        next.value,
        next.maxDiscount,
        next.minAmount,
        next.validFrom,
        next.validUntil,
        next.totalLimit,
        next.perUserLimit,
        JSON.stringify(next.scope),
        next.isPublic ? 1 : 0,
        next.isActive ? 1 : 0,
        new Date(this.now()).toISOString(),
        id,
      ],
    );
    return { ok: true, offer: (await this.get(id))! };
  }
}

async function userUses(q: Queryable, offerId: string, userId: string): Promise<number> {
  const row = await q.get<{ n: number }>(
    'SELECT COUNT(*) AS n FROM offer_uses WHERE offer_id = ? AND user_id = ?',
    [offerId, userId],
  );
  return row?.n ?? 0;
}

async function findUse(q: Queryable, bookingId: string): Promise<string | undefined> {
  const row = await q.get<{ offer_id: string }>('SELECT offer_id FROM offer_uses WHERE booking_id = ?', [
    bookingId,
  ]);
  return row?.offer_id;
}

/** A unique or primary-key violation, as either store reports it. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

class RefusedUse extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

/** Rules across fields that the route's schema cannot see; the 400 names the field to change. */
function invalidOffer(
  offer: Pick<OfferInput, 'kind' | 'value' | 'validFrom' | 'validUntil'>,
): Failure | undefined {
  if (offer.validUntil <= offer.validFrom)
    return failure('VALIDATION_FAILED', 'validUntil must be after validFrom', {
      fields: { validUntil: 'must be after validFrom' },
    });
  if (offer.kind === 'percent' && (offer.value < 1 || offer.value > 100))
    return failure('VALIDATION_FAILED', 'a percent offer has a value from 1 to 100', {
      fields: { value: 'a percent from 1 to 100' },
    });
  return undefined;
}
