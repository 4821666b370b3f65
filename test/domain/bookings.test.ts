/**
 * The booking saga on both app stores, with real show actors, holds, offers and the simulated provider:
 * its answers, and its races run for real (on PostgreSQL each call of a Promise.all gets its own
 * connection, and transactions interleave): one live booking per hold, the promo code's last use and
 * per-user limit, and a booking confirmed exactly once whoever settles it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compileLayout, simpleLayout } from '../../src/actors/seat-layout.js';
import { ShardRouter } from '../../src/actors/shard-router.js';
import { layoutKeyOf } from '../../src/actors/show-codec.js';
import { type Config, loadConfig } from '../../src/config.js';
import { BookingService } from '../../src/domain/bookings.js';
import { HoldService } from '../../src/domain/holds.js';
import { OfferService } from '../../src/domain/offers.js';
import type { ShowInfo, ShowInfoCache } from '../../src/domain/show-info.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { SimulatedPaymentProvider } from '../../src/payments/simulated-provider.js';
import { countingStore, PostgresStore, type Store } from '../../src/persistence/store.js';
import { TicketSigner } from '../../src/tickets/ticket-signer.js';
import { APP_STORES } from '../helpers/app-stores.js';
import { turnCountingRelay } from '../helpers/postgres-relay.js';

const LAYOUT = simpleLayout(10, 20);
const LAYOUT_KEY = layoutKeyOf(LAYOUT);
const GOOD_CARD = { number: '4242 4242 4242 4242', expiry: '12/34', cvc: '123' };
const DAY_MS = 86_400_000;
/** Racing callers per race: more than one PostgreSQL connection's worth, fewer than the pool (10). */
const RACERS = 8;

let dir: string;
let router: ShardRouter;
let config: Config;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-bookings-'));
  config = loadConfig({ DATA_DIR: dir, MAX_SEATS_PER_USER: '10', MAX_HELD_SEATS_PER_USER: '50' });
  router = await ShardRouter.start({
    dataDir: path.join(dir, 'seats'),
    partitions: 4,
    workers: 1,
    journalSync: 'normal',
    snapshotEvery: 1000,
    sweepEveryMs: 0,
  });
});

afterAll(async () => {
  await router.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.each(APP_STORES)('the booking saga on $name', (fixture) => {
  let store: Store;
  let shows: Map<string, ShowInfo>;
  let offers: OfferService;
  let bookings: BookingService;
  let holds: HoldService;
  let sequence = 0;

  beforeEach(async () => {
    store = await fixture.open('bookings');
    shows = new Map();
    const now = () => Date.now();
    // The catalog's show cache, as data: the saga only reads shows from it.
    const showCache = { get: (id: string) => shows.get(id) } as unknown as ShowInfoCache;
    offers = new OfferService(store, now);
    holds = new HoldService(router, showCache, config, now);
    bookings = bookingServiceOn(store, showCache);
  });

  function bookingServiceOn(q: Store, showCache: ShowInfoCache): BookingService {
    const now = () => Date.now();
    return new BookingService({
      store: q,
      router,
      holds,
      shows: showCache,
      offers: new OfferService(q, now),
      payments: new SimulatedPaymentProvider(q, { webhookSecret: 'whsec_test', now }),
      tickets: TicketSigner.ephemeral(now),
      config,
      logger: createLogger('silent'),
      metrics: createMetrics(),
      now,
      withdrawRatings: () => undefined,
    });
  }

  afterEach(async () => {
    await store.close();
  });

  async function newUser(): Promise<string> {
    const id = `usr_${fixture.name}_${++sequence}`;
    const at = new Date().toISOString();
    await store.run(
      'INSERT INTO users (id, name, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      [id, 'Asha', `${id}@example.com`, '!locked', at, at],
    );
    return id;
  }

  /** A scheduled show two days ahead, in the app store and with its actor. */
  async function newShow(): Promise<string> {
    const n = ++sequence;
    const at = new Date().toISOString();
    const startMs = Date.now() + 2 * DAY_MS;
    const ids = {
      movie: `mov_${n}`,
      theater: `thr_${n}`,
      screen: `scr_${n}`,
      show: `shw_${fixture.name}_${n}`,
    };
    await store.run(
      `INSERT INTO movies (id, title, language, duration_min, certificate, release_date, created_at, updated_at)
       VALUES (?, 'The Long Night', 'en', 120, 'UA', '2030-01-01', ?, ?)`,
      [ids.movie, at, at],
    );
    await store.run(
      `INSERT INTO theaters (id, name, city, created_at, updated_at) VALUES (?, 'Lumiere', 'Pune', ?, ?)`,
      [ids.theater, at, at],
    );
    await store.run(
      `INSERT INTO screens (id, theater_id, name, layout, seat_count, categories, created_at, updated_at)
       VALUES (?, ?, 'Screen 1', ?, 200, '["STANDARD"]', ?, ?)`,
      [ids.screen, ids.theater, LAYOUT_KEY, at, at],
    );
    await store.run(
      `INSERT INTO shows (id, movie_id, screen_id, theater_id, city, start_time, end_time, language, prices, currency,
         created_at, updated_at) VALUES (?, ?, ?, ?, 'Pune', ?, ?, 'en', '{"STANDARD":25000}', 'INR', ?, ?)`,
      [
        ids.show,
        ids.movie,
        ids.screen,
        ids.theater,
        new Date(startMs).toISOString(),
        new Date(startMs + 2 * 3_600_000).toISOString(),
        at,
        at,
      ],
    );
    const compiled = compileLayout(LAYOUT);
    if (!compiled.ok) throw new Error(compiled.message);
    shows.set(ids.show, {
      id: ids.show,
      movieId: ids.movie,
      movieTitle: 'The Long Night',
      theaterId: ids.theater,
      theaterName: 'Lumiere',
      timeZone: 'Asia/Kolkata',
      city: 'Pune',
      screenName: 'Screen 1',
      startTime: new Date(startMs).toISOString(),
      startMs,
      status: 'scheduled',
      prices: { STANDARD: 25_000 },
      currency: 'INR',
      layout: compiled.layout,
      layoutKey: LAYOUT_KEY,
      forbidSingleSeatGaps: false,
    });
    const created = await router.createShow({
      showId: ids.show,
      layoutKey: LAYOUT_KEY,
      forbidSingleSeatGaps: false,
    });
    if (!created.ok) throw new Error(`show actor not created: ${created.code}`);
    return ids.show;
  }

  async function hold(userId: string, showId: string, seats: string[]): Promise<string> {
    const held = await holds.create(userId, showId, { seats });
    if (!held.ok) throw new Error(`hold refused: ${held.code}`);
    return held.hold.id;
  }

  async function newOffer(code: string, limits: { totalLimit?: number; perUserLimit?: number }) {
    const created = await offers.create({
      code,
      description: 'test offer',
      kind: 'flat',
      value: 5_000,
      minAmount: 0,
      validFrom: new Date(Date.now() - DAY_MS).toISOString(),
      validUntil: new Date(Date.now() + 30 * DAY_MS).toISOString(),
      scope: {},
      isPublic: true,
      isActive: true,
      totalLimit: limits.totalLimit ?? null,
      perUserLimit: limits.perUserLimit ?? null,
    });
    if (!created.ok) throw new Error(created.message);
    return created.offer;
  }

  async function count(sql: string, params: (string | number)[]): Promise<number> {
    return (await store.get<{ n: number }>(sql, params))?.n ?? -1;
  }

  it('books a hold and confirms it on payment, with a ticket and one confirmation', async () => {
    const userId = await newUser();
    const showId = await newShow();
    const holdId = await hold(userId, showId, ['A1', 'A2']);
    const created = await bookings.create(userId, { holdId, paymentMethod: 'card' });
    if (!created.ok) throw new Error(created.message);
    expect(created.booking).toMatchObject({ status: 'pending_payment', seats: ['A1', 'A2'] });
    expect(created.booking.amount).toMatchObject({ subtotal: 50_000, currency: 'INR' });
    const paid = await bookings.pay({ id: userId, role: 'user' }, created.booking.id, {
      method: 'card',
      card: GOOD_CARD,
    });
    expect(paid).toMatchObject({
      ok: true,
      booking: { status: 'confirmed', ticket: { code: expect.any(String) } },
    });
    const view = await bookings.get({ id: userId, role: 'user' }, created.booking.id);
    expect(view).toMatchObject({ ok: true, booking: { status: 'confirmed' } });
  });

  it('books and pays in few round trips: nothing read back that the saga already holds', async () => {
    const userId = await newUser();
    const user = { id: userId, role: 'user' };
    const showId = await newShow();
    const holdId = await hold(userId, showId, ['A3']);
    const counted = countingStore(store);
    const counting = bookingServiceOn(counted.store, {
      get: (id: string) => shows.get(id),
    } as unknown as ShowInfoCache);
    const created = await counting.create(userId, { holdId, paymentMethod: 'card' });
    if (!created.ok) throw new Error(created.message);
    const toCreate = counted.roundTrips();
    // What was not read back is what a read finds.
    expect(await bookings.get(user, created.booking.id)).toMatchObject({
      ok: true,
      booking: created.booking,
    });
    const paid = await counting.pay(user, created.booking.id, { method: 'card', card: GOOD_CARD });
    const toPay = counted.roundTrips() - toCreate;
    if (!paid.ok) throw new Error(paid.message);
    expect(paid.booking).toMatchObject({ status: 'confirmed', ticket: { code: expect.any(String) } });
    expect(await bookings.get(user, created.booking.id)).toMatchObject({ ok: true, booking: paid.booking });
    // Statements, a transaction's BEGIN and COMMIT included: PostgreSQL's client builds and parses every
    // one on the HTTP thread (those made together share a round trip). Booking: BEGIN, the booking (RETURNING the
    // row), its event, the provider's intent, the payment row, COMMIT. Payment: the booking with its
    // payment; BEGIN, the capture (RETURNING), the payment row, COMMIT; the booking, its payment and its
    // user again, after the capture; BEGIN, the confirmation (RETURNING), its event, the ticket, both
    // notifications (confirmation and reminder) in one insert, their outbox rows in one, COMMIT.
    expect({ create: toCreate, pay: toPay }).toEqual({ create: 6, pay: 13 });
  });

  it.runIf(fixture.name === 'postgres')(
    'books in four round trips and pays in eight: statements that need no answer from each other go together',
    async () => {
      const userId = await newUser();
      const user = { id: userId, role: 'user' };
      const showId = await newShow();
      const holdId = await hold(userId, showId, ['A4']);
      const url = (store as PostgresStore).pool.options.connectionString!;
      const relay = await turnCountingRelay(new URL(url));
      const relayed = new PostgresStore(relay.url, { maxConnections: 1, statementTimeoutMs: 10_000 });
      try {
        const counting = bookingServiceOn(relayed, {
          get: (id: string) => shows.get(id),
        } as unknown as ShowInfoCache);
        await relayed.get('SELECT 1'); // the connection's opening is not the saga's
        const before = relay.turns();
        const created = await counting.create(userId, { holdId, paymentMethod: 'card' });
        if (!created.ok) throw new Error(created.message);
        const toCreate = relay.turns() - before;
        const paid = await counting.pay(user, created.booking.id, { method: 'card', card: GOOD_CARD });
        expect(paid).toMatchObject({ ok: true, booking: { status: 'confirmed' } });
        // Booking: BEGIN with the booking; its event with the intent; the payment row; COMMIT.
        // Payment: the read; BEGIN with the capture; the payment row; COMMIT; the read after it; BEGIN
        // with the confirmation; its event, ticket, notifications and their outbox rows; COMMIT.
        expect({ create: toCreate, pay: relay.turns() - before - toCreate }).toEqual({ create: 4, pay: 8 });
        // The outbox rows went with their notifications, one each (the confirmation and the reminder).
        expect(
          await count(
            `SELECT COUNT(*) AS n FROM outbox o JOIN notifications n ON o.payload LIKE '%' || n.id || '%'
             WHERE n.booking_id = ?`,
            [created.booking.id],
          ),
        ).toBe(2);
      } finally {
        await relayed.close();
        relay.close();
      }
    },
  );

  it('gives a hold one live booking: of racing bookings of it, one wins and the others get CONFLICT', async () => {
    const userId = await newUser();
    const showId = await newShow();
    const holdId = await hold(userId, showId, ['B1', 'B2']);
    const results = await Promise.all(
      Array.from({ length: RACERS }, () => bookings.create(userId, { holdId, paymentMethod: 'card' })),
    );
    const won = results.filter((r) => r.ok);
    expect(won).toHaveLength(1);
    for (const r of results.filter((x) => !x.ok))
      expect(r).toMatchObject({ ok: false, code: 'CONFLICT', details: { bookingId: won[0]!.booking.id } });
    expect(
      await count(
        "SELECT COUNT(*) AS n FROM bookings WHERE hold_id = ? AND status IN ('pending_payment', 'confirmed')",
        [holdId],
      ),
    ).toBe(1);
    // Every loser rolled back whole: one payment intent and one payment row, the winner's.
    expect(await count('SELECT COUNT(*) AS n FROM simulated_payment_intents', [])).toBe(1);
    expect(await count('SELECT COUNT(*) AS n FROM payments', [])).toBe(1);
  });

  it("gives a promo code's last use to exactly one of racing bookings", async () => {
    const offer = await newOffer(`LAST${fixture.name.toUpperCase()}`, { totalLimit: 1 });
    const showId = await newShow();
    const racers = await Promise.all(
      Array.from({ length: RACERS }, async (_, i) => {
        const userId = await newUser();
        return { userId, holdId: await hold(userId, showId, [`C${i + 1}`]) };
      }),
    );
    const results = await Promise.all(
      racers.map(({ userId, holdId }) =>
        bookings.create(userId, { holdId, paymentMethod: 'card', promoCode: offer.code }),
      ),
    );
    const won = results.filter((r) => r.ok);
    expect(won).toHaveLength(1);
    expect(won[0]!.booking.amount.discount).toBe(5_000);
    for (const r of results.filter((x) => !x.ok))
      expect(r).toMatchObject({ ok: false, code: 'OFFER_INVALID', details: { reason: 'exhausted' } });
    expect((await offers.get(offer.id))?.usedCount).toBe(1);
    expect(await count('SELECT COUNT(*) AS n FROM offer_uses WHERE offer_id = ?', [offer.id])).toBe(1);
  });

  it("keeps a promo code's per-user limit when one customer books several holds at once", async () => {
    const offer = await newOffer(`ONCE${fixture.name.toUpperCase()}`, { perUserLimit: 1 });
    const showId = await newShow();
    const userId = await newUser();
    const holdIds = await Promise.all(
      Array.from({ length: RACERS }, (_, i) => hold(userId, showId, [`D${i + 1}`])),
    );
    const results = await Promise.all(
      holdIds.map((holdId) =>
        bookings.create(userId, { holdId, paymentMethod: 'card', promoCode: offer.code }),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    for (const r of results.filter((x) => !x.ok))
      expect(r).toMatchObject({ ok: false, code: 'OFFER_INVALID', details: { reason: 'user_limit' } });
    expect(
      await count('SELECT COUNT(*) AS n FROM offer_uses WHERE offer_id = ? AND user_id = ?', [
        offer.id,
        userId,
      ]),
    ).toBe(1);
    expect((await offers.get(offer.id))?.usedCount).toBe(1);
  });

  it('confirms a booking exactly once when the payment, its webhook and settling race', async () => {
    const userId = await newUser();
    const showId = await newShow();
    const holdId = await hold(userId, showId, ['E1', 'E2']);
    const created = await bookings.create(userId, { holdId, paymentMethod: 'card' });
    if (!created.ok) throw new Error(created.message);
    const bookingId = created.booking.id;
    const intentId = created.payment.intentId;
    const user = { id: userId, role: 'user' };
    const pays = Array.from({ length: 4 }, () =>
      bookings.pay(user, bookingId, { method: 'card', card: GOOD_CARD }),
    );
    const settles = Array.from({ length: 2 }, () => bookings.settleSucceeded(bookingId));
    const webhooks = Array.from({ length: 2 }, () =>
      bookings.onPaymentEvent({ type: 'payment_succeeded', intentId }),
    );
    const [paid, settled] = await Promise.all([
      Promise.all(pays),
      Promise.all(settles),
      Promise.all(webhooks),
    ]);
    // Every payment call answers the confirmed booking; a settle that ran before any capture finds nothing
    // captured yet and says so.
    for (const r of paid) expect(r).toMatchObject({ ok: true, booking: { status: 'confirmed' } });
    for (const r of settled)
      if (!r.ok) expect(r).toMatchObject({ code: 'INVALID_STATE' });
      else expect(r.booking.status).toBe('confirmed');
    expect((await bookings.row(bookingId))?.status).toBe('confirmed');
    expect(
      await count("SELECT COUNT(*) AS n FROM booking_events WHERE booking_id = ? AND status = 'confirmed'", [
        bookingId,
      ]),
    ).toBe(1);
    expect(await count('SELECT COUNT(*) AS n FROM tickets WHERE booking_id = ?', [bookingId])).toBe(1);
    expect(
      await count(
        "SELECT COUNT(*) AS n FROM notifications WHERE booking_id = ? AND template = 'booking_confirmed'",
        [bookingId],
      ),
    ).toBe(1);
    expect(await count("SELECT COUNT(*) AS n FROM outbox WHERE kind = 'notify'", [])).toBe(2);
  });

  it('cancels a confirmed booking once when cancels race, and gives its promo use back once', async () => {
    const offer = await newOffer(`BACK${fixture.name.toUpperCase()}`, { totalLimit: 5 });
    const userId = await newUser();
    const showId = await newShow();
    const holdId = await hold(userId, showId, ['F1']);
    const created = await bookings.create(userId, { holdId, paymentMethod: 'card', promoCode: offer.code });
    if (!created.ok) throw new Error(created.message);
    const user = { id: userId, role: 'user' };
    await bookings.pay(user, created.booking.id, { method: 'card', card: GOOD_CARD });
    expect((await offers.get(offer.id))?.usedCount).toBe(1);
    const results = await Promise.all(
      Array.from({ length: RACERS }, () => bookings.cancel(user, created.booking.id)),
    );
    for (const r of results) expect(r).toMatchObject({ ok: true, booking: { status: 'cancelled' } });
    expect(
      await count("SELECT COUNT(*) AS n FROM booking_events WHERE booking_id = ? AND status = 'cancelled'", [
        created.booking.id,
      ]),
    ).toBe(1);
    expect((await offers.get(offer.id))?.usedCount).toBe(0);
    expect(
      await count(
        "SELECT COUNT(*) AS n FROM notifications WHERE booking_id = ? AND template = 'booking_cancelled'",
        [created.booking.id],
      ),
    ).toBe(1);
  });
});
