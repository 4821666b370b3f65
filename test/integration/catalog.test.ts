/**
 * The public catalog over real HTTP: cities, movie filters alone and combined, a movie's shows with live
 * seat counts, theaters, one show, ratings by people who saw the movie, and the demo seed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, login, newUser } from '../helpers/catalog.js';
import type { Api } from '../helpers/server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let offsetMs = 0;
const tag = `cat${Math.random().toString(36).slice(2, 8)}`;
const dayAfter = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
const D1 = dayAfter(1);
const D2 = dayAfter(2);

interface World {
  thunder: string;
  laughs: string;
  quiet: string;
  mumbai: string;
  chennai: string;
  shimla: string;
  shows: {
    thunderMumbaiD1: string;
    thunderMumbaiD2: string;
    thunderChennaiD2: string;
    laughsChennaiD1: string;
  };
}
let world: World;

async function admin(api: Api, token: string, method: string, path: string, body: unknown) {
  const res = await api(method, path, { token, body });
  if (res.status !== 201) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function buildWorld(api: Api): Promise<World> {
  const token = await login(api, ADMIN.email, ADMIN.password);
  const movie = async (title: string, language: string, genres: string[]) =>
    (
      await admin(api, token, 'POST', '/api/admin/movies', {
        title: `${title} ${tag}`,
        genres,
        language,
        durationMin: 120,
        certificate: 'UA',
        releaseDate: '2026-01-01',
      })
    ).movie.id as string;
  const theater = async (name: string, city: string) => {
    const { theater } = await admin(api, token, 'POST', '/api/admin/theaters', {
      name,
      city,
      address: '1 Road',
    });
    const layout = {
      rows: [
        { label: 'A', category: 'GOLD', seats: 10 },
        { label: 'B', category: 'SILVER', seats: 20, aislesAfter: [10] },
      ],
    };
    const { screen } = await admin(api, token, 'POST', `/api/admin/theaters/${theater.id}/screens`, {
      name: 'One',
      layout,
    });
    return { theaterId: theater.id as string, screenId: screen.id as string };
  };
  const show = async (movieId: string, screenId: string, day: string, hour: number) =>
    (
      await admin(api, token, 'POST', '/api/admin/shows', {
        movieId,
        screenId,
        startTime: `${day}T${String(hour).padStart(2, '0')}:00:00Z`,
        prices: { GOLD: 30000, SILVER: 20000 },
      })
    ).show.id as string;
  const thunder = await movie('Thunder Road', 'Hindi', ['Action', 'Drama']);
  const laughs = await movie('Laughs Unlimited', 'tamil', ['Comedy']);
  const quiet = await movie('Quiet Rooms', 'English', ['Drama']);
  const mumbai = await theater('Regal', 'Mumbai');
  const chennai = await theater('Sathyam', 'chennai');
  const shimla = await theater('Ritz', `Shimla${tag}`);
  return {
    thunder,
    laughs,
    quiet,
    mumbai: mumbai.theaterId,
    chennai: chennai.theaterId,
    shimla: shimla.theaterId,
    shows: {
      thunderMumbaiD2: await show(thunder, mumbai.screenId, D2, 10),
      thunderMumbaiD1: await show(thunder, mumbai.screenId, D1, 10),
      thunderChennaiD2: await show(thunder, chennai.screenId, D2, 12),
      laughsChennaiD1: await show(laughs, chennai.screenId, D1, 14),
    },
  };
}

beforeAll(async () => {
  server = await startTestServer(ADMIN_ENV, { now: () => Date.now() + offsetMs });
  world = await buildWorld(server.api);
});
afterAll(() => server?.destroy());

/** The titles (without the run tag) of the movies a filter finds, among this file's movies. */
async function titles(query: string): Promise<string[]> {
  const res = await server.api('GET', `/api/movies?q=${tag}${query ? `&${query}` : ''}`);
  expect(res.status).toBe(200);
  return res.body.movies.map((m: { title: string }) => m.title.replace(` ${tag}`, '')).sort();
}

async function confirmedBooking(token: string, showId: string, seat: string): Promise<string> {
  const created = await server.api('POST', '/api/bookings', {
    token,
    body: { showId, seats: [seat], paymentMethod: 'upi' },
  });
  expect(created.status).toBe(201);
  const paid = await server.api('POST', '/api/payments', {
    token,
    body: { bookingId: created.body.booking.id, method: 'upi', upiId: 'success@upi' },
  });
  expect(paid.body.booking?.status).toBe('confirmed');
  return created.body.booking.id;
}

describe('cities', () => {
  it('lists each city once with its theaters and the movies showing there', async () => {
    const res = await server.api('GET', '/api/cities');
    expect(res.status).toBe(200);
    const byName = new Map(res.body.cities.map((c: { name: string }) => [c.name.toLowerCase(), c]));
    expect(byName.get('mumbai')).toEqual({ name: 'Mumbai', theaters: 1, movies: 1 });
    expect(byName.get('chennai')).toEqual({ name: 'chennai', theaters: 1, movies: 2 });
    expect(byName.get(`shimla${tag}`)).toMatchObject({ theaters: 1, movies: 0 });
  });
});

describe('movie filters', () => {
  it('finds movies by text in the title, case-insensitively, with wildcards taken literally', async () => {
    expect(await titles('')).toEqual(['Laughs Unlimited', 'Quiet Rooms', 'Thunder Road']);
    const res = await server.api(
      'GET',
      `/api/movies?q=${encodeURIComponent(`thunder road ${tag.toUpperCase()}`)}`,
    );
    expect(res.body.movies.map((m: { id: string }) => m.id)).toEqual([world.thunder]);
    expect((await server.api('GET', '/api/movies?q=%25%25%25')).body.movies).toEqual([]);
  });

  it('filters by language and genre, case-insensitively', async () => {
    expect(await titles('language=TAMIL')).toEqual(['Laughs Unlimited']);
    expect(await titles('language=hindi')).toEqual(['Thunder Road']);
    expect(await titles('genre=drama')).toEqual(['Quiet Rooms', 'Thunder Road']);
    expect(await titles('genre=Western')).toEqual([]);
  });

  it('filters by city: only movies with an upcoming show there', async () => {
    expect(await titles('city=Mumbai')).toEqual(['Thunder Road']);
    expect(await titles('city=CHENNAI')).toEqual(['Laughs Unlimited', 'Thunder Road']);
    expect(await titles(`city=Shimla${tag}`)).toEqual([]);
  });

  it('filters by date: movies with a show that day', async () => {
    expect(await titles(`date=${D1}`)).toEqual(['Laughs Unlimited', 'Thunder Road']);
    expect(await titles(`date=${D2}`)).toEqual(['Thunder Road']);
    expect(await titles(`date=${dayAfter(5)}`)).toEqual([]);
  });

  it('combines every filter', async () => {
    expect(await titles(`city=chennai&date=${D1}`)).toEqual(['Laughs Unlimited']);
    expect(await titles(`city=chennai&date=${D2}`)).toEqual(['Thunder Road']);
    expect(await titles(`city=Mumbai&date=${D1}&genre=action&language=Hindi&minRating=0`)).toEqual([
      'Thunder Road',
    ]);
    expect(await titles('city=chennai&genre=drama')).toEqual(['Thunder Road']);
    expect(await titles('language=hindi&genre=comedy')).toEqual([]);
  });

  it('takes an empty parameter (a URL template left blank) as no filter', async () => {
    const all = await titles('');
    expect(all.length).toBeGreaterThan(1);
    expect(await titles('city=&language=&genre=&minRating=&date=')).toEqual(all);
    expect(await titles(`city=chennai&date=${D1}&genre=`)).toEqual(['Laughs Unlimited']);
    const blank = await server.api('GET', '/api/movies?q=');
    expect(blank.status).toBe(200);
    expect(blank.body).toEqual((await server.api('GET', '/api/movies')).body);
    const shows = await server.api('GET', `/api/movies/${world.laughs}/shows?city=&date=`);
    expect(shows.status).toBe(200);
    expect(shows.body.shows).toEqual(
      (await server.api('GET', `/api/movies/${world.laughs}/shows`)).body.shows,
    );
    expect((await server.api('GET', '/api/theaters?city=')).body.theaters).toEqual(
      (await server.api('GET', '/api/theaters')).body.theaters,
    );
  });

  it('answers 400 naming a bad filter', async () => {
    for (const query of ['minRating=eleven', 'minRating=11', 'date=2026-13-45', 'date=tomorrow', 'q=%20']) {
      const res = await server.api('GET', `/api/movies?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(Object.keys(res.body.error.details.fields)).toHaveLength(1);
    }
  });
});

describe('one movie', () => {
  it('answers the movie with every contract field', async () => {
    const res = await server.api('GET', `/api/movies/${world.laughs}`);
    expect(res.status).toBe(200);
    expect(res.body.movie).toMatchObject({
      id: world.laughs,
      title: `Laughs Unlimited ${tag}`,
      genres: ['Comedy'],
      language: 'Tamil',
      durationMin: 120,
      certificate: 'UA',
      rating: 0,
      votes: 0,
      releaseDate: '2026-01-01',
    });
  });

  it('answers 404 MOVIE_NOT_FOUND for an unknown id', async () => {
    const res = await server.api('GET', '/api/movies/mov_nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('MOVIE_NOT_FOUND');
  });
});

describe("a movie's shows", () => {
  it('lists upcoming shows by start time with theater, screen, live seats and the lowest price', async () => {
    const res = await server.api('GET', `/api/movies/${world.thunder}/shows`);
    expect(res.status).toBe(200);
    expect(res.body.shows.map((s: { id: string }) => s.id)).toEqual([
      world.shows.thunderMumbaiD1,
      world.shows.thunderMumbaiD2,
      world.shows.thunderChennaiD2,
    ]);
    expect(res.body.shows[0]).toEqual({
      id: world.shows.thunderMumbaiD1,
      movieId: world.thunder,
      theater: { id: world.mumbai, name: 'Regal', city: 'Mumbai', timeZone: 'Asia/Kolkata' },
      screen: { id: expect.any(String), name: 'One' },
      startTime: `${D1}T10:00:00.000Z`,
      format: '2D',
      language: 'Hindi',
      seatsAvailable: 30,
      priceFrom: 20000,
      currency: 'INR',
    });
  });

  it('filters by city and date', async () => {
    const inChennai = await server.api('GET', `/api/movies/${world.thunder}/shows?city=Chennai`);
    expect(inChennai.body.shows.map((s: { id: string }) => s.id)).toEqual([world.shows.thunderChennaiD2]);
    const onD1 = await server.api('GET', `/api/movies/${world.thunder}/shows?date=${D1}`);
    expect(onD1.body.shows.map((s: { id: string }) => s.id)).toEqual([world.shows.thunderMumbaiD1]);
    const none = await server.api('GET', `/api/movies/${world.thunder}/shows?city=Chennai&date=${D1}`);
    expect(none.body.shows).toEqual([]);
  });

  it('counts held seats out of seatsAvailable', async () => {
    const alice = await newUser(server.api);
    const held = await server.api('POST', `/api/shows/${world.shows.thunderChennaiD2}/holds`, {
      token: alice.token,
      body: { seats: ['B1', 'B2', 'B3'] },
    });
    expect(held.status).toBe(201);
    const res = await server.api('GET', `/api/movies/${world.thunder}/shows?city=chennai`);
    expect(res.body.shows[0].seatsAvailable).toBe(27);
  });

  it('answers 404 for an unknown movie and 400 for a bad date', async () => {
    expect((await server.api('GET', '/api/movies/mov_nope/shows')).status).toBe(404);
    expect((await server.api('GET', `/api/movies/${world.thunder}/shows?date=31-12-2026`)).status).toBe(400);
  });
});

describe('theaters', () => {
  it('lists theaters with their screens, by city', async () => {
    const res = await server.api('GET', '/api/theaters?city=MUMBAI');
    expect(res.status).toBe(200);
    expect(res.body.theaters).toEqual([
      {
        id: world.mumbai,
        name: 'Regal',
        city: 'Mumbai',
        address: '1 Road',
        timeZone: 'Asia/Kolkata',
        screens: [{ id: expect.any(String), name: 'One', seatCount: 30, categories: ['GOLD', 'SILVER'] }],
      },
    ]);
    const all = await server.api('GET', '/api/theaters');
    const ids = all.body.theaters.map((t: { id: string }) => t.id);
    expect(ids).toEqual(expect.arrayContaining([world.mumbai, world.chennai, world.shimla]));
    expect((await server.api('GET', '/api/theaters?city=Atlantis')).body.theaters).toEqual([]);
  });
});

describe('one show', () => {
  it('answers the show with its movie, theater, screen and prices', async () => {
    const res = await server.api('GET', `/api/shows/${world.shows.laughsChennaiD1}`);
    expect(res.status).toBe(200);
    expect(res.body.show).toMatchObject({
      id: world.shows.laughsChennaiD1,
      movieId: world.laughs,
      movie: { id: world.laughs, title: `Laughs Unlimited ${tag}` },
      theater: {
        id: world.chennai,
        name: 'Sathyam',
        city: 'chennai',
        address: '1 Road',
        timeZone: 'Asia/Kolkata',
      },
      screen: { name: 'One', seatCount: 30, categories: ['GOLD', 'SILVER'] },
      startTime: `${D1}T14:00:00.000Z`,
      endTime: `${D1}T16:00:00.000Z`,
      prices: { GOLD: 30000, SILVER: 20000 },
      priceFrom: 20000,
      currency: 'INR',
      status: 'scheduled',
      language: 'Tamil',
    });
  });

  it('answers 404 SHOW_NOT_FOUND for an unknown id', async () => {
    const res = await server.api('GET', '/api/shows/shw_nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('SHOW_NOT_FOUND');
  });
});

describe('ratings', () => {
  it('refuses anyone without a confirmed booking of the movie', async () => {
    const alice = await newUser(server.api);
    const res = await server.api('POST', `/api/movies/${world.quiet}/ratings`, {
      token: alice.token,
      body: { score: 9 },
    });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('NOT_ELIGIBLE');
    // A booking not yet paid is not enough either.
    const pending = await server.api('POST', '/api/bookings', {
      token: alice.token,
      body: { showId: world.shows.laughsChennaiD1, seats: ['A9'], paymentMethod: 'upi' },
    });
    expect(pending.status).toBe(201);
    const early = await server.api('POST', `/api/movies/${world.laughs}/ratings`, {
      token: alice.token,
      body: { score: 9 },
    });
    expect(early.status).toBe(422);
  });

  it('updates the average and votes, and a second score from the same person replaces the first', async () => {
    const alice = await newUser(server.api);
    const bob = await newUser(server.api);
    await confirmedBooking(alice.token, world.shows.thunderMumbaiD1, 'A1');
    await confirmedBooking(bob.token, world.shows.thunderMumbaiD2, 'A1');
    const rate = (token: string, score: number) =>
      server.api('POST', `/api/movies/${world.thunder}/ratings`, { token, body: { score } });
    const first = await rate(alice.token, 9);
    expect(first.status).toBe(200);
    expect(first.body.movie).toMatchObject({ id: world.thunder, rating: 9, votes: 1 });
    expect((await rate(bob.token, 6)).body.movie).toMatchObject({ rating: 7.5, votes: 2 });
    expect((await rate(alice.token, 7)).body.movie).toMatchObject({ rating: 6.5, votes: 2 });
    expect((await server.api('GET', `/api/movies/${world.thunder}`)).body.movie).toMatchObject({
      rating: 6.5,
      votes: 2,
    });
    expect(await titles('minRating=6.5')).toEqual(['Thunder Road']);
    expect(await titles('minRating=6.6')).toEqual([]);
  });

  it('withdraws a rating once no confirmed booking of the movie is left to qualify it', async () => {
    const dev = await newUser(server.api);
    const erin = await newUser(server.api);
    const first = await confirmedBooking(dev.token, world.shows.laughsChennaiD1, 'B3');
    const second = await confirmedBooking(dev.token, world.shows.laughsChennaiD1, 'B4');
    await confirmedBooking(erin.token, world.shows.laughsChennaiD1, 'B5');
    const rate = (token: string, score: number) =>
      server.api('POST', `/api/movies/${world.laughs}/ratings`, { token, body: { score } });
    const cancel = async (bookingId: string) => {
      const res = await server.api('POST', `/api/bookings/${bookingId}/cancel`, { token: dev.token });
      expect(res.body.booking?.status).toBe('cancelled');
    };
    const movie = async () => (await server.api('GET', `/api/movies/${world.laughs}`)).body.movie;
    expect((await rate(erin.token, 8)).status).toBe(200);
    expect((await rate(dev.token, 4)).body.movie).toMatchObject({ rating: 6, votes: 2 });

    // Another confirmed booking of the movie still qualifies the rating.
    await cancel(first);
    expect(await movie()).toMatchObject({ rating: 6, votes: 2 });

    await cancel(second);
    expect(await movie()).toMatchObject({ rating: 8, votes: 1 });
    const again = await rate(dev.token, 4);
    expect(again.status).toBe(422);
    expect(again.body.error.code).toBe('NOT_ELIGIBLE');
    expect(await movie()).toMatchObject({ rating: 8, votes: 1 });
  });

  it('checks the score, the token and the movie', async () => {
    const alice = await newUser(server.api);
    for (const score of [0, 11, 7.5, '9']) {
      const res = await server.api('POST', `/api/movies/${world.thunder}/ratings`, {
        token: alice.token,
        body: { score },
      });
      expect(res.status).toBe(400);
    }
    expect(
      (await server.api('POST', `/api/movies/${world.thunder}/ratings`, { body: { score: 5 } })).status,
    ).toBe(401);
    const unknown = await server.api('POST', '/api/movies/mov_nope/ratings', {
      token: alice.token,
      body: { score: 5 },
    });
    expect(unknown.status).toBe(404);
  });
});

describe('the passing of time', () => {
  it('drops shows that have started from every listing', async () => {
    offsetMs = 3 * 86_400_000;
    try {
      expect((await server.api('GET', `/api/movies/${world.thunder}/shows`)).body.shows).toEqual([]);
      expect(await titles('city=Mumbai')).toEqual([]);
      expect(await titles(`date=${D1}`)).toEqual([]);
      const cities = (await server.api('GET', '/api/cities')).body.cities;
      expect(cities.find((c: { name: string }) => c.name === 'Mumbai')).toMatchObject({ movies: 0 });
      // The show itself is still there to look at.
      expect((await server.api('GET', `/api/shows/${world.shows.thunderMumbaiD1}`)).status).toBe(200);
    } finally {
      offsetMs = 0;
    }
  });
});

describe('demo seed', () => {
  it('seeds the stated minimums once, and a restart does not seed again', async () => {
    const demo = await startTestServer({ SEED_DEMO: 'true' });
    let again: TestServer | undefined;
    try {
      const cities = (await demo.api('GET', '/api/cities')).body.cities as { name: string; movies: number }[];
      expect(cities.length).toBeGreaterThanOrEqual(5);
      expect(cities.every((c) => c.movies > 0)).toBe(true);
      const movies = (await demo.api('GET', '/api/movies')).body.movies as {
        id: string;
        language: string;
        genres: string[];
        rating: number;
      }[];
      expect(movies.length).toBeGreaterThanOrEqual(20);
      expect(new Set(movies.map((m) => m.language)).size).toBeGreaterThanOrEqual(4);
      expect(new Set(movies.flatMap((m) => m.genres)).size).toBeGreaterThanOrEqual(6);
      const theaters = (await demo.api('GET', '/api/theaters')).body.theaters as {
        screens: { seatCount: number; categories: string[] }[];
      }[];
      expect(theaters.length).toBeGreaterThanOrEqual(30);
      for (const screen of theaters.flatMap((t) => t.screens)) {
        expect(screen.seatCount).toBeGreaterThanOrEqual(150);
        expect(screen.seatCount).toBeLessThanOrEqual(400);
        expect([2, 3]).toContain(screen.categories.length);
      }
      const shows = (await demo.api('GET', `/api/movies/${movies[0]!.id}/shows`)).body.shows as {
        startTime: string;
      }[];
      expect(shows.length).toBeGreaterThan(0);
      for (const show of shows) expect(Date.parse(show.startTime)).toBeLessThan(Date.now() + 8 * 86_400_000);
      const offers = (await demo.api('GET', '/api/offers')).body.offers as unknown[];
      expect(offers.length).toBeGreaterThanOrEqual(1);
      const rated = (await demo.api('GET', '/api/movies?minRating=8')).body.movies as { rating: number }[];
      expect(rated.length).toBeGreaterThan(0);
      expect(rated.length).toBeLessThan(movies.length);
      expect(rated.every((m) => m.rating >= 8)).toBe(true);
      const map = await demo.api('GET', `/api/shows/${(shows[0] as { id?: string }).id}/seats`);
      expect(map.status).toBe(200);
      await demo.close();
      again = await startTestServer({ SEED_DEMO: 'true', DATA_DIR: demo.dataDir });
      expect((await again.api('GET', '/api/movies')).body.movies).toHaveLength(movies.length);
    } finally {
      await (again ?? demo).destroy();
    }
  });
});
