/**
 * The catalog service and the show-info cache on both app stores (SQLite and PostgreSQL): reads and
 * filters, admin writes and their refusals, ratings, the demo seed, and, on PostgreSQL with real
 * concurrent connections, the races the catalog guards (overlapping shows, concurrent ratings, an
 * archive against shows being scheduled).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SeatLayout } from '../../src/actors/seat-layout.js';
import { CatalogService, type ShowActors } from '../../src/domain/catalog.js';
import { type DemoSeedDeps, seedDemo } from '../../src/domain/demo-seed.js';
import { ShowInfoCache } from '../../src/domain/show-info.js';
import { countingStore, type Store } from '../../src/persistence/store.js';
import { APP_STORES, insertUser } from '../helpers/app-stores.js';

const LAYOUT: SeatLayout = {
  rows: [
    { label: 'A', category: 'GOLD', seats: 8 },
    { label: 'B', category: 'SILVER', seats: 8 },
  ],
};
const PRICES = { GOLD: 30_000, SILVER: 20_000 };
const NOW = Date.parse('2026-06-01T10:00:00.000Z');
const HOUR = 3_600_000;
const at = (hoursFromNow: number) => new Date(NOW + hoursFromNow * HOUR).toISOString();

/** The seat allocator's side of show creation: these tests are about the rows, so it only records. */
function recordingActors(): ShowActors & { created: string[] } {
  const created: string[] = [];
  return {
    created,
    async createShow(spec) {
      created.push(spec.showId);
      return { ok: true };
    },
    async send() {
      return { ok: false, code: 'INVALID_COMMAND', message: 'not used here' };
    },
  };
}

/** A confirmed booking of the show: what makes its user eligible to rate the movie. */
async function addConfirmedBooking(store: Store, userId: string, showId: string): Promise<string> {
  const id = `bkg_${userId}_${showId}`;
  await store.run(
    `INSERT INTO bookings (id, user_id, show_id, hold_id, hold_expires_at, seats, status, subtotal, discount,
       fees, total, currency, payment_method, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, '["A1"]', 'confirmed', 100, 0, 0, 100, 'INR', 'card', ?, ?)`,
    [id, userId, showId, `hld_${id}`, at(1), at(0), at(0)],
  );
  return id;
}

describe.each(APP_STORES)('catalog on $name', (fixture) => {
  let store: Store;
  let shows: ShowInfoCache;
  let actors: ReturnType<typeof recordingActors>;
  let catalog: CatalogService;

  beforeEach(async (context) => {
    store = await fixture.open(`catalog-${context.task.id}`);
    shows = new ShowInfoCache(store, () => NOW);
    actors = recordingActors();
    catalog = new CatalogService({
      store,
      actors,
      showChanged: async (showId) => {
        await shows.refresh(showId);
      },
      currency: 'INR',
      now: () => NOW,
    });
  });

  afterEach(async () => {
    await store.close();
  });

  async function world() {
    const { movie } = await catalog.createMovie({
      title: 'Thunder Road',
      genres: ['Action', 'drama', 'Action'],
      language: 'hindi',
      durationMin: 120,
      certificate: 'UA',
      releaseDate: '2026-05-01',
    });
    const theater = await catalog.createTheater({ name: '  PVR   Phoenix ', city: 'Mumbai' });
    if (!theater.ok) throw new Error(theater.message);
    const screen = await catalog.createScreen(theater.theater.id, 'Audi 1', LAYOUT);
    if (!screen.ok) throw new Error(screen.message);
    return { movie, theater: theater.theater, screen: screen.screen };
  }

  async function scheduled(movieId: string, screenId: string, hoursFromNow: number) {
    const created = await catalog.createShow({
      movieId,
      screenId,
      startTime: at(hoursFromNow),
      prices: PRICES,
    });
    if (!created.ok) throw new Error(`${created.code}: ${created.message}`);
    return created.show;
  }

  it('writes a movie, theater, screen and show and reads them back', async () => {
    const { movie, theater, screen } = await world();
    expect(movie).toMatchObject({ language: 'Hindi', genres: ['Action', 'drama'], rating: 0, votes: 0 });
    expect(theater).toMatchObject({ name: 'PVR Phoenix', city: 'Mumbai', timeZone: 'Asia/Kolkata' });
    expect(screen).toMatchObject({ name: 'Audi 1', seatCount: 16, categories: ['GOLD', 'SILVER'] });
    const show = await scheduled(movie.id, screen.id, 24);
    expect(actors.created).toEqual([show.id]);
    expect(show).toMatchObject({
      movieId: movie.id,
      theater: { id: theater.id, city: 'Mumbai', timeZone: 'Asia/Kolkata' },
      screen: { id: screen.id, seatCount: 16 },
      startTime: at(24),
      endTime: at(26),
      priceFrom: 20_000,
      status: 'scheduled',
      forbidSingleSeatGaps: false,
    });
    expect(shows.get(show.id)).toMatchObject({
      movieTitle: 'Thunder Road',
      city: 'Mumbai',
      status: 'scheduled',
    });
    const theaters = await catalog.theaters('mumbai');
    expect(theaters.map((t) => [t.id, t.screens.map((s) => s.id)])).toEqual([[theater.id, [screen.id]]]);
    expect(await catalog.cities()).toEqual([{ name: 'Mumbai', theaters: 1, movies: 1 }]);
  });

  it('filters movies the same way on both stores', async () => {
    const { movie, screen } = await world();
    const other = await catalog.createMovie({
      title: 'Quiet 100% Days',
      genres: ['Romance'],
      language: 'Tamil',
      durationMin: 90,
      certificate: 'U',
      releaseDate: '2026-05-02',
    });
    await scheduled(movie.id, screen.id, 30);
    const ids = async (filters: Parameters<CatalogService['movies']>[0]) =>
      (await catalog.movies(filters)).map((m) => m.id);
    expect(await ids({ q: 'THUNDER' })).toEqual([movie.id]);
    expect(await ids({ q: '100%' })).toEqual([other.movie.id]);
    expect(await ids({ q: '10_' })).toEqual([]);
    expect(await ids({ genre: 'DRAMA' })).toEqual([movie.id]);
    expect(await ids({ language: 'TAMIL' })).toEqual([other.movie.id]);
    expect(await ids({ city: 'mumbai' })).toEqual([movie.id]);
    expect(await ids({ date: at(30).slice(0, 10) })).toEqual([movie.id]);
    expect(await ids({ city: 'Mumbai', date: '2026-07-01' })).toEqual([]);
    expect(await ids({ minRating: 0.5 })).toEqual([]);
    const listed = await catalog.movieShows(movie.id, { city: 'MUMBAI' });
    expect(listed.ok && listed.shows.map((s) => s.screen.id)).toEqual([screen.id]);
    expect(await catalog.theaters()).toHaveLength(1);
  });

  it('refuses an overlapping show, a clashing screen name and a past start', async () => {
    const { movie, theater, screen } = await world();
    const first = await scheduled(movie.id, screen.id, 24);
    const overlapping = await catalog.createShow({
      movieId: movie.id,
      screenId: screen.id,
      startTime: at(25),
      prices: PRICES,
    });
    expect(overlapping).toMatchObject({ ok: false, code: 'CONFLICT', details: { showId: first.id } });
    expect(await catalog.createScreen(theater.id, 'AUDI   1', LAYOUT)).toMatchObject({ code: 'CONFLICT' });
    expect(
      await catalog.createShow({ movieId: movie.id, screenId: screen.id, startTime: at(-1), prices: PRICES }),
    ).toMatchObject({ code: 'RULE_VIOLATION' });
    const second = await scheduled(movie.id, screen.id, 27);
    expect(await catalog.updateShow(second.id, { startTime: at(25) })).toMatchObject({ code: 'CONFLICT' });
    const moved = await catalog.updateShow(second.id, { startTime: at(30), prices: { GOLD: 1, SILVER: 2 } });
    expect(moved).toMatchObject({ ok: true, show: { startTime: at(30), priceFrom: 1 } });
    expect(shows.get(second.id)?.prices).toEqual({ GOLD: 1, SILVER: 2 });
  });

  it('archives a movie only without upcoming shows, and cancels shows', async () => {
    const { movie, screen } = await world();
    const show = await scheduled(movie.id, screen.id, 24);
    expect(await catalog.archiveMovie(movie.id)).toMatchObject({
      code: 'CONFLICT',
      details: { upcomingShows: 1 },
    });
    expect(await catalog.cancelShow(show.id)).toMatchObject({ ok: true, show: { status: 'cancelled' } });
    expect(shows.get(show.id)?.status).toBe('cancelled');
    expect(await catalog.archiveMovie(movie.id)).toEqual({ ok: true });
    expect(await catalog.movie(movie.id)).toMatchObject({ code: 'MOVIE_NOT_FOUND' });
    expect(
      await catalog.createShow({ movieId: movie.id, screenId: screen.id, startTime: at(48), prices: PRICES }),
    ).toMatchObject({ code: 'MOVIE_NOT_FOUND' });
  });

  it('moves shows along with their theater and refreshes their cached city', async () => {
    const { movie, theater, screen } = await world();
    const show = await scheduled(movie.id, screen.id, 24);
    const moved = await catalog.updateTheater(theater.id, { city: 'pune' });
    expect(moved).toMatchObject({ ok: true, theater: { city: 'pune' } });
    expect(shows.get(show.id)?.city).toBe('pune');
    expect(await catalog.movies({ city: 'Pune' })).toHaveLength(1);
  });

  it('rates only with a confirmed booking, one score per user, and withdraws an unbacked rating', async () => {
    const { movie, screen } = await world();
    const show = await scheduled(movie.id, screen.id, 24);
    await insertUser(store, 'usr_a');
    await insertUser(store, 'usr_b');
    expect(await catalog.rate('usr_a', movie.id, 8)).toMatchObject({ code: 'NOT_ELIGIBLE' });
    const booking = await addConfirmedBooking(store, 'usr_a', show.id);
    await addConfirmedBooking(store, 'usr_b', show.id);
    await catalog.rate('usr_a', movie.id, 8);
    expect(await catalog.rate('usr_a', movie.id, 7)).toMatchObject({
      ok: true,
      movie: { rating: 7, votes: 1 },
    });
    expect(await catalog.rate('usr_b', movie.id, 10)).toMatchObject({ movie: { rating: 8.5, votes: 2 } });
    expect(await catalog.withdrawUnbackedRating('usr_a', show.id)).toBe(false);
    await store.run("UPDATE bookings SET status = 'cancelled' WHERE id = ?", [booking]);
    // On the booking saga's transaction, as it calls it when it cancels.
    expect(await store.transaction((tx) => catalog.withdrawUnbackedRating('usr_a', show.id, tx))).toBe(true);
    expect(await catalog.movie(movie.id)).toMatchObject({ movie: { rating: 10, votes: 1 } });
  });

  it('loads every show at start and reads a show it has not seen yet', async () => {
    const { movie, screen } = await world();
    const show = await scheduled(movie.id, screen.id, 24);
    const fresh = new ShowInfoCache(store, () => NOW);
    expect(fresh.get(show.id)).toBeUndefined();
    await fresh.start();
    expect(fresh.get(show.id)).toMatchObject({
      id: show.id,
      layoutKey: expect.any(String),
      startTime: at(24),
    });
    const later = new ShowInfoCache(store, () => NOW);
    expect(await later.load(show.id)).toMatchObject({ id: show.id });
    expect(await later.load('shw_missing')).toBeUndefined();
  });

  it('looks up a show it has not seen with one read, joining the read a miss started', async () => {
    const { movie, screen } = await world();
    const show = await scheduled(movie.id, screen.id, 24);
    const counted = countingStore(store);
    const cache = new ShowInfoCache(counted.store, () => NOW);
    // The seat-map route's path: a miss (which starts a read behind), then the lookup that waits.
    expect(cache.get(show.id)).toBeUndefined();
    expect(await cache.lookup(show.id)).toMatchObject({ id: show.id });
    expect(counted.count()).toBe(1);
    expect(await cache.lookup('shw_missing')).toBeUndefined();
    expect(await cache.lookup('shw_missing')).toBeUndefined();
    expect(counted.count()).toBe(2);
  });

  it('seeds the demo catalog once, with ratings equal to their rows', async () => {
    const offers: unknown[] = [];
    const deps = {
      store,
      catalog,
      actors,
      // The offers module has its own tests; here only the two demo offers asked of it are counted.
      offers: {
        create: ((input: unknown) => {
          offers.push(input);
          return { ok: true };
        }) as unknown as DemoSeedDeps['offers']['create'],
      },
      now: () => NOW,
    };
    const summary = await seedDemo(deps);
    expect(summary).toMatchObject({ movies: expect.any(Number), offers: 2 });
    expect(offers).toHaveLength(2);
    expect(summary?.shows).toBe(actors.created.length);
    expect(await seedDemo(deps)).toBeUndefined();
    const mismatched = await store.all(
      `SELECT m.id FROM movies m
       WHERE m.votes != (SELECT COUNT(*) FROM ratings r WHERE r.movie_id = m.id)
          OR m.rating != COALESCE((SELECT ROUND(AVG(r.score), 1) FROM ratings r WHERE r.movie_id = m.id), 0)`,
    );
    expect(mismatched).toEqual([]);
    await shows.start();
    expect(shows.get(actors.created[0] ?? '')).toBeDefined();
  }, 60_000);
});

const RACE_MOVIE = {
  title: 'Race',
  genres: ['Drama'],
  language: 'Hindi',
  durationMin: 120,
  certificate: 'UA',
  releaseDate: '2026-05-01',
};

describe.each(APP_STORES.filter((f) => f.name === 'postgres'))('catalog races on $name', (fixture) => {
  let store: Store;
  let catalog: CatalogService;

  beforeEach(async (context) => {
    store = await fixture.open(`catalog-race-${context.task.id}`);
    catalog = new CatalogService({
      store,
      actors: recordingActors(),
      showChanged: async () => undefined,
      currency: 'INR',
      now: () => NOW,
    });
  });

  afterEach(async () => {
    await store.close();
  });

  async function movieAndScreen() {
    const { movie } = await catalog.createMovie(RACE_MOVIE);
    const theater = await catalog.createTheater({ name: 'Racecourse', city: 'Mumbai' });
    if (!theater.ok) throw new Error(theater.message);
    const screen = await catalog.createScreen(theater.theater.id, 'Audi 1', LAYOUT);
    if (!screen.ok) throw new Error(screen.message);
    return { movie, screen: screen.screen };
  }

  it('schedules one of many overlapping shows created at once', async () => {
    const { movie, screen } = await movieAndScreen();
    // Other movies too: only the screen's row lock stands between them (each movie's lock is its own).
    const movies = [movie];
    for (let i = 1; i < 12; i++)
      movies.push((await catalog.createMovie({ ...RACE_MOVIE, title: `Race ${i}` })).movie);
    const results = await Promise.all(
      movies.map((m, i) =>
        catalog.createShow({
          movieId: m.id,
          screenId: screen.id,
          startTime: at(24 + i * 0.1),
          prices: PRICES,
        }),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.code)).toEqual(Array(11).fill('CONFLICT'));
    const rows = await store.all('SELECT id FROM shows WHERE screen_id = ?', [screen.id]);
    expect(rows).toHaveLength(1);
  });

  it('keeps the rating aggregate equal to the rows under concurrent ratings', async () => {
    const { movie, screen } = await movieAndScreen();
    const show = await catalog.createShow({
      movieId: movie.id,
      screenId: screen.id,
      startTime: at(24),
      prices: PRICES,
    });
    if (!show.ok) throw new Error(show.message);
    const users = Array.from({ length: 16 }, (_, i) => `usr_${i}`);
    for (const user of users) {
      await insertUser(store, user);
      await addConfirmedBooking(store, user, show.show.id);
    }
    // Every user twice at once (one row each, the last score standing), all users concurrently.
    const rated = await Promise.all(
      users.flatMap((user, i) => [
        catalog.rate(user, movie.id, 1 + (i % 10)),
        catalog.rate(user, movie.id, 10),
      ]),
    );
    expect(rated.every((r) => r.ok)).toBe(true);
    const rows = await store.all<{ score: number }>('SELECT score FROM ratings WHERE movie_id = ?', [
      movie.id,
    ]);
    expect(rows).toHaveLength(users.length);
    const stored = await catalog.movie(movie.id);
    const average = Math.round((rows.reduce((sum, r) => sum + r.score, 0) / rows.length) * 10) / 10;
    expect(stored).toMatchObject({ ok: true, movie: { votes: users.length, rating: average } });
  });

  it('never archives a movie that a concurrently scheduled show still plays', async () => {
    for (let round = 0; round < 5; round++) {
      const { movie, screen } = await movieAndScreen();
      const [archived, ...created] = await Promise.all([
        catalog.archiveMovie(movie.id),
        ...Array.from({ length: 6 }, (_, i) =>
          catalog.createShow({
            movieId: movie.id,
            screenId: screen.id,
            startTime: at(24 + i * 3),
            prices: PRICES,
          }),
        ),
      ]);
      const upcoming = await store.get<{ n: number }>(
        "SELECT COUNT(*) AS n FROM shows WHERE movie_id = ? AND status = 'scheduled'",
        [movie.id],
      );
      const isArchived = (
        await store.get<{ archived_at: string | null }>('SELECT archived_at FROM movies WHERE id = ?', [
          movie.id,
        ])
      )?.archived_at;
      expect(upcoming?.n).toBe(created.filter((r) => r?.ok).length);
      if (archived?.ok) expect(upcoming?.n).toBe(0);
      else expect(isArchived).toBeNull();
    }
  });
});
