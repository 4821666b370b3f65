/**
 * Promo codes on both app stores: the rules a code is checked against, and a use taken inside a
 * booking's transaction, under real concurrency on PostgreSQL (one connection per racing transaction):
 * the last use goes to one booking, the per-user limit holds, a use is given back once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Offer, OfferService } from '../../src/domain/offers.js';
import type { ShowInfo } from '../../src/domain/show-info.js';
import type { Store } from '../../src/persistence/store.js';
import { APP_STORES } from '../helpers/app-stores.js';

const DAY_MS = 86_400_000;
const NOW = Date.UTC(2030, 2, 15, 12, 0, 0);
/** Racing transactions: several PostgreSQL connections' worth, within the pool (10). */
const RACERS = 8;
const AT = new Date(NOW).toISOString();
const SHOW = {
  id: 'shw_1',
  city: 'Pune',
  movieId: 'mov_1',
  theaterId: 'thr_1',
  startMs: NOW + DAY_MS,
} as ShowInfo;

describe.each(APP_STORES)('promo codes on $name', (fixture) => {
  let store: Store;
  let offers: OfferService;

  beforeEach(async () => {
    store = await fixture.open('offers');
    offers = new OfferService(store, () => NOW);
    // The rows a booking's use points at (offer_uses → bookings → users, shows).
    await store.run(
      'INSERT INTO users (id, name, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      ['usr_1', 'Asha', 'asha@example.com', '!locked', AT, AT],
    );
    await store.run(
      `INSERT INTO movies (id, title, language, duration_min, certificate, release_date, created_at, updated_at)
       VALUES ('mov_1', 'The Long Night', 'en', 120, 'UA', '2030-01-01', ?, ?)`,
      [AT, AT],
    );
    await store.run(
      "INSERT INTO theaters (id, name, city, created_at, updated_at) VALUES ('thr_1', 'Lumiere', 'Pune', ?, ?)",
      [AT, AT],
    );
    await store.run(
      `INSERT INTO screens (id, theater_id, name, layout, seat_count, categories, created_at, updated_at)
       VALUES ('scr_1', 'thr_1', 'Screen 1', '{}', 1, '["STANDARD"]', ?, ?)`,
      [AT, AT],
    );
    await store.run(
      `INSERT INTO shows (id, movie_id, screen_id, theater_id, city, start_time, end_time, language, prices, currency,
         created_at, updated_at) VALUES ('shw_1', 'mov_1', 'scr_1', 'thr_1', 'Pune', ?, ?, 'en', '{}', 'INR', ?, ?)`,
      [AT, AT, AT, AT],
    );
  });

  afterEach(async () => {
    await store.close();
  });

  async function newBooking(id: string, userId = 'usr_1'): Promise<string> {
    await store.run(
      `INSERT INTO bookings (id, user_id, show_id, hold_id, hold_expires_at, seats, status, subtotal, discount, fees,
         total, currency, payment_method, created_at, updated_at)
       VALUES (?, ?, 'shw_1', ?, ?, '["A1"]', 'pending_payment', 100, 0, 0, 100, 'INR', 'card', ?, ?)`,
      [id, userId, `hld_${id}`, AT, AT, AT],
    );
    return id;
  }

  async function newOffer(
    code: string,
    limits: { totalLimit?: number; perUserLimit?: number },
  ): Promise<Offer> {
    const created = await offers.create({
      code,
      description: 'test offer',
      kind: 'percent',
      value: 10,
      maxDiscount: 5_000,
      minAmount: 1_000,
      validFrom: new Date(NOW - DAY_MS).toISOString(),
      validUntil: new Date(NOW + 30 * DAY_MS).toISOString(),
      scope: { cities: ['pune'] },
      isPublic: true,
      isActive: true,
      totalLimit: limits.totalLimit ?? null,
      perUserLimit: limits.perUserLimit ?? null,
    });
    if (!created.ok) throw new Error(created.message);
    return created.offer;
  }

  /** Each booking takes a use in a transaction of its own, all at once; a refusal rolls its own back. */
  async function raceForUses(offer: Offer, bookingIds: string[], userOf: (i: number) => string) {
    return Promise.all(
      bookingIds.map((bookingId, i) =>
        store.transaction((tx) => offers.takeUse(tx, offer, userOf(i), bookingId)),
      ),
    );
  }

  it('evaluates a code: discount with its cap, minimum, scope, and unknown or duplicate codes', async () => {
    const offer = await newOffer('SAVE10', {});
    expect(await offers.evaluate('save10', 'usr_1', SHOW, 20_000)).toMatchObject({
      ok: true,
      discount: 2_000,
    });
    expect(await offers.evaluate('SAVE10', 'usr_1', SHOW, 90_000)).toMatchObject({
      ok: true,
      discount: 5_000,
    });
    expect(await offers.evaluate('SAVE10', 'usr_1', SHOW, 500)).toMatchObject({
      ok: false,
      details: { reason: 'below_minimum' },
    });
    expect(await offers.evaluate('SAVE10', 'usr_1', { ...SHOW, city: 'Goa' }, 20_000)).toMatchObject({
      ok: false,
      details: { reason: 'out_of_scope' },
    });
    expect(await offers.evaluate('NOPE', 'usr_1', SHOW, 20_000)).toMatchObject({
      ok: false,
      details: { reason: 'unknown_code' },
    });
    expect(await offers.create({ ...offer, code: 'save10' })).toMatchObject({ ok: false, code: 'CONFLICT' });
    expect(await offers.listPublic()).toEqual([offer]);
    expect(await offers.update(offer.id, { isActive: false })).toMatchObject({
      ok: true,
      offer: { isActive: false },
    });
    expect(await offers.listPublic()).toEqual([]);
  });

  it('gives the last use to exactly one of racing bookings', async () => {
    const offer = await newOffer('LAST', { totalLimit: 1 });
    const ids = await Promise.all(Array.from({ length: RACERS }, (_, i) => newBooking(`bkg_last${i}`)));
    const refusals = await raceForUses(offer, ids, () => 'usr_1');
    expect(refusals.filter((r) => r === undefined)).toHaveLength(1);
    for (const r of refusals.filter(Boolean)) expect(r).toMatchObject({ details: { reason: 'exhausted' } });
    expect((await offers.get(offer.id))?.usedCount).toBe(1);
    expect(await offers.evaluate('LAST', 'usr_2', SHOW, 20_000)).toMatchObject({
      ok: false,
      details: { reason: 'exhausted' },
    });
  });

  it('keeps the per-user limit when one customer takes uses in racing transactions', async () => {
    const offer = await newOffer('TWICE', { perUserLimit: 2 });
    const ids = await Promise.all(Array.from({ length: RACERS }, (_, i) => newBooking(`bkg_user${i}`)));
    const refusals = await raceForUses(offer, ids, () => 'usr_1');
    expect(refusals.filter((r) => r === undefined)).toHaveLength(2);
    for (const r of refusals.filter(Boolean)) expect(r).toMatchObject({ details: { reason: 'user_limit' } });
    expect((await offers.get(offer.id))?.usedCount).toBe(2);
    expect(await offers.evaluate('TWICE', 'usr_1', SHOW, 20_000)).toMatchObject({
      ok: false,
      details: { reason: 'user_limit' },
    });
  });

  it('gives a use back once however many times racing callers give it back', async () => {
    const offer = await newOffer('BACK', { totalLimit: 3 });
    const bookingId = await newBooking('bkg_back');
    expect(await store.transaction((tx) => offers.takeUse(tx, offer, 'usr_1', bookingId))).toBeUndefined();
    await newBooking('bkg_other');
    expect(await store.transaction((tx) => offers.takeUse(tx, offer, 'usr_1', 'bkg_other'))).toBeUndefined();
    await Promise.all(
      Array.from({ length: RACERS }, () => store.transaction((tx) => offers.giveBackUse(tx, bookingId))),
    );
    expect((await offers.get(offer.id))?.usedCount).toBe(1);
  });

  it('takes a lapsed booking’s use again once when late payments race, within the limit', async () => {
    const offer = await newOffer('LATE', { totalLimit: 2 });
    const bookingId = await newBooking('bkg_late');
    const refusals = await Promise.all(
      Array.from({ length: RACERS }, () => offers.retakeUse(bookingId, offer.id, 'usr_1')),
    );
    expect(refusals).toEqual(Array.from({ length: RACERS }, () => undefined));
    expect((await offers.get(offer.id))?.usedCount).toBe(1);
    await offers.update(offer.id, { isActive: false });
    await newBooking('bkg_late2');
    expect(await offers.retakeUse('bkg_late2', offer.id, 'usr_1')).toMatchObject({
      ok: false,
      code: 'OFFER_INVALID',
      details: { reason: 'withdrawn' },
    });
  });
});
