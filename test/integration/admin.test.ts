/**
 * Catalog administration over real HTTP: access control on every admin route, creating and changing
 * movies, theaters, screens and shows, layout and price validation, cancelling shows, and blocking seats.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowLabel } from '../../src/actors/seat-layout.js';
import { ADMIN, ADMIN_ENV, createShow, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let adminToken: string;
beforeAll(async () => {
  server = await startTestServer(ADMIN_ENV);
  adminToken = await login(server.api, ADMIN.email, ADMIN.password);
});
afterAll(() => server?.destroy());

const MOVIE = {
  title: 'Admin Movie',
  genres: ['Drama', 'drama', 'Family'],
  language: 'hindi',
  durationMin: 150,
  certificate: 'UA',
  releaseDate: '2026-02-01',
};
const LAYOUT = {
  rows: [
    { label: 'A', category: 'CLASSIC', seats: 8, aislesAfter: [4] },
    { label: 'B', category: 'PRIME', seats: 8, firstNumber: 1, offset: 1 },
  ],
};
const inHours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();

async function post(path: string, body: unknown, token = adminToken) {
  return server.api('POST', path, { token, body });
}

async function screenFixture() {
  const { theater } = (await post('/api/admin/theaters', { name: 'Admin Cinema', city: 'Pune' })).body;
  const { screen } = (
    await post(`/api/admin/theaters/${theater.id}/screens`, { name: 'Audi 1', layout: LAYOUT })
  ).body;
  const { movie } = (await post('/api/admin/movies', MOVIE)).body;
  return { theaterId: theater.id as string, screenId: screen.id as string, movieId: movie.id as string };
}

describe('access control', () => {
  it('answers 401 without a token and 403 for a user on every admin route', async () => {
    const user = await newUser(server.api);
    const routes: [string, string][] = [
      ['POST', '/api/admin/movies'],
      ['PATCH', '/api/admin/movies/mov_x'],
      ['DELETE', '/api/admin/movies/mov_x'],
      ['POST', '/api/admin/theaters'],
      ['PATCH', '/api/admin/theaters/thr_x'],
      ['POST', '/api/admin/theaters/thr_x/screens'],
      ['POST', '/api/admin/shows'],
      ['PATCH', '/api/admin/shows/shw_x'],
      ['DELETE', '/api/admin/shows/shw_x'],
      ['POST', '/api/admin/shows/shw_x/block'],
      ['POST', '/api/admin/shows/shw_x/unblock'],
    ];
    for (const [method, path] of routes) {
      const body = method === 'DELETE' ? undefined : {};
      const anonymous = await server.api(method, path, { body });
      expect(anonymous.status, `${method} ${path}`).toBe(401);
      const forbidden = await server.api(method, path, { body, token: user.token });
      expect(forbidden.status, `${method} ${path}`).toBe(403);
      expect(forbidden.body.error.code).toBe('FORBIDDEN');
    }
  });
});

describe('movies', () => {
  it('creates a movie with canonical language and unique genres', async () => {
    const res = await post('/api/admin/movies', {
      ...MOVIE,
      description: 'A drama.',
      posterUrl: 'https://img.example/p.jpg',
    });
    expect(res.status).toBe(201);
    expect(res.body.movie).toEqual({
      id: expect.stringMatching(/^mov_/),
      title: 'Admin Movie',
      description: 'A drama.',
      genres: ['Drama', 'Family'],
      language: 'Hindi',
      durationMin: 150,
      certificate: 'UA',
      rating: 0,
      votes: 0,
      releaseDate: '2026-02-01',
      posterUrl: 'https://img.example/p.jpg',
    });
    expect((await server.api('GET', `/api/movies/${res.body.movie.id}`)).body.movie).toEqual(res.body.movie);
  });

  it('refuses a bad movie naming the fields', async () => {
    const res = await post('/api/admin/movies', {
      ...MOVIE,
      durationMin: 0,
      releaseDate: 'soon',
      genres: [],
    });
    expect(res.status).toBe(400);
    expect(Object.keys(res.body.error.details.fields).sort()).toEqual([
      'durationMin',
      'genres',
      'releaseDate',
    ]);
  });

  it('changes a movie, and its genres follow in the genre filter', async () => {
    const { movie } = (await post('/api/admin/movies', { ...MOVIE, title: 'Patch Me' })).body;
    const res = await server.api('PATCH', `/api/admin/movies/${movie.id}`, {
      token: adminToken,
      body: { title: 'Patched', genres: ['Thriller'] },
    });
    expect(res.status).toBe(200);
    expect(res.body.movie).toMatchObject({
      title: 'Patched',
      genres: ['Thriller'],
      language: 'Hindi',
      durationMin: 150,
    });
    const thrillers = (await server.api('GET', '/api/movies?genre=thriller&q=Patched')).body.movies;
    expect(thrillers.map((m: { id: string }) => m.id)).toEqual([movie.id]);
    expect((await server.api('GET', '/api/movies?genre=drama&q=Patched')).body.movies).toEqual([]);
    const missing = await server.api('PATCH', '/api/admin/movies/mov_nope', {
      token: adminToken,
      body: { title: 'x' },
    });
    expect(missing.status).toBe(404);
  });

  it('archives a movie without upcoming shows, and refuses one with them', async () => {
    const { movie } = (await post('/api/admin/movies', MOVIE)).body;
    expect((await server.api('DELETE', `/api/admin/movies/${movie.id}`, { token: adminToken })).status).toBe(
      204,
    );
    expect((await server.api('GET', `/api/movies/${movie.id}`)).status).toBe(404);
    expect((await server.api('DELETE', `/api/admin/movies/${movie.id}`, { token: adminToken })).status).toBe(
      404,
    );
    const fixture = await createShow(server.api, { adminToken });
    const busy = await server.api('DELETE', `/api/admin/movies/${fixture.movieId}`, { token: adminToken });
    expect(busy.status).toBe(409);
    expect(busy.body.error.details).toEqual({ upcomingShows: 1 });
    // The show is still on sale and still names its movie.
    expect((await server.api('GET', `/api/shows/${fixture.showId}`)).body.show.movie.id).toBe(
      fixture.movieId,
    );
  });

  it('answers a repeated create with the same Idempotency-Key with the first movie', async () => {
    const headers = { 'idempotency-key': `movie-${Math.random()}` };
    const first = await server.api('POST', '/api/admin/movies', { token: adminToken, headers, body: MOVIE });
    const again = await server.api('POST', '/api/admin/movies', { token: adminToken, headers, body: MOVIE });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body.movie.id).toBe(first.body.movie.id);
    const other = await server.api('POST', '/api/admin/movies', {
      token: adminToken,
      headers,
      body: { ...MOVIE, title: 'Other' },
    });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('theaters and screens', () => {
  it('creates a theater and a screen from a layout', async () => {
    const created = await post('/api/admin/theaters', {
      name: '  Grand   Palace ',
      city: 'Jaipur',
      address: 'MI Road',
    });
    expect(created.status).toBe(201);
    expect(created.body.theater).toEqual({
      id: expect.stringMatching(/^thr_/),
      name: 'Grand Palace',
      city: 'Jaipur',
      address: 'MI Road',
      timeZone: 'Asia/Kolkata',
      screens: [],
    });
    const res = await post(`/api/admin/theaters/${created.body.theater.id}/screens`, {
      name: 'Audi 1',
      layout: LAYOUT,
    });
    expect(res.status).toBe(201);
    expect(res.body.screen).toMatchObject({
      id: expect.stringMatching(/^scr_/),
      theaterId: created.body.theater.id,
      name: 'Audi 1',
      seatCount: 16,
      categories: ['CLASSIC', 'PRIME'],
    });
    expect(res.body.screen.layout.rows[0]).toEqual({
      label: 'A',
      category: 'CLASSIC',
      seats: 8,
      firstNumber: 1,
      aislesAfter: [4],
      offset: 0,
    });
    const listed = (await server.api('GET', '/api/theaters?city=jaipur')).body.theaters;
    expect(listed[0].screens).toEqual([
      { id: res.body.screen.id, name: 'Audi 1', seatCount: 16, categories: ['CLASSIC', 'PRIME'] },
    ]);
  });

  it('refuses a layout the allocator could not use with 400 INVALID_LAYOUT', async () => {
    const { theater } = (await post('/api/admin/theaters', { name: 'Layouts', city: 'Pune' })).body;
    const bad = [
      { rows: [] },
      {
        rows: [
          { label: 'A', category: 'GOLD', seats: 5 },
          { label: 'A', category: 'GOLD', seats: 5 },
        ],
      },
      { rows: [{ label: 'a1', category: 'GOLD', seats: 5 }] },
      { rows: [{ label: 'A', category: 'gold class', seats: 5 }] },
      { rows: [{ label: 'A', category: 'GOLD', seats: 0 }] },
      { rows: [{ label: 'A', category: 'GOLD', seats: 81 }] },
      { rows: Array.from({ length: 61 }, (_, i) => ({ label: rowLabel(i), category: 'GOLD', seats: 1 })) },
      { rows: Array.from({ length: 30 }, (_, i) => ({ label: rowLabel(i), category: 'GOLD', seats: 80 })) },
      { rows: Array.from({ length: 9 }, (_, i) => ({ label: rowLabel(i), category: `C${i}`, seats: 2 })) },
    ];
    for (const layout of bad) {
      const res = await post(`/api/admin/theaters/${theater.id}/screens`, {
        name: `S${Math.random()}`,
        layout,
      });
      expect(res.status, JSON.stringify(layout).slice(0, 80)).toBe(400);
      expect(res.body.error.code).toBe('INVALID_LAYOUT');
      expect(res.body.error.message).toBeTruthy();
      expect(res.body.error.details.fields).toEqual({ layout: res.body.error.message });
    }
    const shapeless = await post(`/api/admin/theaters/${theater.id}/screens`, {
      name: 'S',
      layout: { rows: [{ label: 'A', seats: 'ten' }] },
    });
    expect(shapeless.status).toBe(400);
    expect(shapeless.body.error.code).toBe('VALIDATION_FAILED');
    expect(
      (await server.api('GET', '/api/theaters?city=pune')).body.theaters.find(
        (t: { id: string }) => t.id === theater.id,
      ).screens,
    ).toEqual([]);
  });

  it('refuses a second screen of the same name and an unknown theater', async () => {
    const { theater } = (await post('/api/admin/theaters', { name: 'Twins', city: 'Pune' })).body;
    expect(
      (await post(`/api/admin/theaters/${theater.id}/screens`, { name: 'Audi 1', layout: LAYOUT })).status,
    ).toBe(201);
    const twin = await post(`/api/admin/theaters/${theater.id}/screens`, { name: 'audi 1', layout: LAYOUT });
    expect(twin.status).toBe(409);
    const nowhere = await post('/api/admin/theaters/thr_nope/screens', { name: 'Audi 1', layout: LAYOUT });
    expect(nowhere.status).toBe(404);
    expect(nowhere.body.error.code).toBe('THEATER_NOT_FOUND');
  });

  it('moves a theater to another city together with its shows', async () => {
    const fixture = await createShow(server.api, { adminToken, city: 'Nagpur' });
    const res = await server.api('PATCH', `/api/admin/theaters/${fixture.theaterId}`, {
      token: adminToken,
      body: { city: 'Indore', name: 'Moved Cinema' },
    });
    expect(res.status).toBe(200);
    expect(res.body.theater).toMatchObject({ city: 'Indore', name: 'Moved Cinema', address: '1 Test Road' });
    const inIndore = (await server.api('GET', '/api/movies?city=Indore')).body.movies.map(
      (m: { id: string }) => m.id,
    );
    expect(inIndore).toContain(fixture.movieId);
    expect((await server.api('GET', '/api/movies?city=Nagpur')).body.movies).toEqual([]);
    expect(
      (await server.api('PATCH', '/api/admin/theaters/thr_nope', { token: adminToken, body: { city: 'X' } }))
        .status,
    ).toBe(404);
  });
});

describe('shows', () => {
  it('schedules a show: end time from the duration, city and currency filled in, seats on sale', async () => {
    const { screenId, movieId, theaterId } = await screenFixture();
    const startTime = inHours(30);
    const res = await post('/api/admin/shows', {
      movieId,
      screenId,
      startTime,
      prices: { CLASSIC: 15000, PRIME: 25000 },
      format: 'IMAX',
      language: 'english',
      forbidSingleSeatGaps: true,
    });
    expect(res.status).toBe(201);
    expect(res.body.show).toMatchObject({
      id: expect.stringMatching(/^shw_/),
      movieId,
      theater: { id: theaterId, city: 'Pune' },
      screen: { id: screenId, seatCount: 16 },
      startTime,
      endTime: new Date(Date.parse(startTime) + 150 * 60_000).toISOString(),
      format: 'IMAX',
      language: 'English',
      prices: { CLASSIC: 15000, PRIME: 25000 },
      priceFrom: 15000,
      currency: 'INR',
      status: 'scheduled',
      forbidSingleSeatGaps: true,
    });
    const seats = await server.api('GET', `/api/shows/${res.body.show.id}/seats`);
    expect(seats.status).toBe(200);
    expect(seats.body.counts).toEqual({ available: 16, held: 0, booked: 0, blocked: 0 });
    expect(seats.body.seats.find((s: { id: string }) => s.id === 'B1')).toMatchObject({
      category: 'PRIME',
      price: 25000,
    });
  });

  it('wants a price for exactly the layout categories', async () => {
    const { screenId, movieId } = await screenFixture();
    const base = { movieId, screenId, startTime: inHours(30) };
    const missing = await post('/api/admin/shows', { ...base, prices: { CLASSIC: 15000 } });
    expect(missing.status).toBe(400);
    expect(missing.body.error.details.fields).toHaveProperty(['prices.PRIME']);
    const extra = await post('/api/admin/shows', { ...base, prices: { CLASSIC: 1, PRIME: 2, VIP: 3 } });
    expect(extra.status).toBe(400);
    const free = await post('/api/admin/shows', { ...base, prices: { CLASSIC: 0, PRIME: 2 } });
    expect(free.status).toBe(400);
  });

  it('refuses unknown movies and screens, past starts and a busy screen', async () => {
    const { screenId, movieId } = await screenFixture();
    const prices = { CLASSIC: 15000, PRIME: 25000 };
    const noMovie = await post('/api/admin/shows', {
      movieId: 'mov_nope',
      screenId,
      startTime: inHours(30),
      prices,
    });
    expect([noMovie.status, noMovie.body.error.code]).toEqual([404, 'MOVIE_NOT_FOUND']);
    const noScreen = await post('/api/admin/shows', {
      movieId,
      screenId: 'scr_nope',
      startTime: inHours(30),
      prices,
    });
    expect([noScreen.status, noScreen.body.error.code]).toEqual([404, 'SCREEN_NOT_FOUND']);
    const past = await post('/api/admin/shows', { movieId, screenId, startTime: inHours(-1), prices });
    expect([past.status, past.body.error.code]).toEqual([422, 'RULE_VIOLATION']);
    const first = await post('/api/admin/shows', { movieId, screenId, startTime: inHours(30), prices });
    expect(first.status).toBe(201);
    const overlapping = await post('/api/admin/shows', { movieId, screenId, startTime: inHours(31), prices });
    expect(overlapping.status).toBe(409);
    expect(overlapping.body.error.details).toEqual({ showId: first.body.show.id });
    const after = await post('/api/admin/shows', { movieId, screenId, startTime: inHours(33), prices });
    expect(after.status).toBe(201);
  });

  it('changes prices and start time, and refuses a move onto another show', async () => {
    const { screenId, movieId } = await screenFixture();
    const prices = { CLASSIC: 15000, PRIME: 25000 };
    const a = (await post('/api/admin/shows', { movieId, screenId, startTime: inHours(30), prices })).body
      .show;
    const b = (await post('/api/admin/shows', { movieId, screenId, startTime: inHours(40), prices })).body
      .show;
    const patch = (id: string, body: unknown) =>
      server.api('PATCH', `/api/admin/shows/${id}`, { token: adminToken, body });
    const repriced = await patch(a.id, { prices: { CLASSIC: 10000, PRIME: 20000 } });
    expect(repriced.status).toBe(200);
    expect(repriced.body.show).toMatchObject({
      prices: { CLASSIC: 10000, PRIME: 20000 },
      priceFrom: 10000,
      startTime: a.startTime,
    });
    expect((await server.api('GET', `/api/shows/${a.id}`)).body.show.prices).toEqual({
      CLASSIC: 10000,
      PRIME: 20000,
    });
    const moved = await patch(a.id, { startTime: inHours(50) });
    expect(moved.status).toBe(200);
    expect(Date.parse(moved.body.show.endTime) - Date.parse(moved.body.show.startTime)).toBe(150 * 60_000);
    expect((await patch(a.id, { startTime: b.startTime })).status).toBe(409);
    expect((await patch(a.id, { prices: { CLASSIC: 1 } })).status).toBe(400);
    expect((await patch('shw_nope', { prices })).status).toBe(404);
  });

  it('cancels a show: off sale, out of listings, and no longer changeable', async () => {
    const fixture = await createShow(server.api, { adminToken });
    const user = await newUser(server.api);
    const res = await server.api('DELETE', `/api/admin/shows/${fixture.showId}`, { token: adminToken });
    expect(res.status).toBe(204);
    expect((await server.api('GET', `/api/shows/${fixture.showId}`)).body.show.status).toBe('cancelled');
    const hold = await server.api('POST', `/api/shows/${fixture.showId}/holds`, {
      token: user.token,
      body: { seats: ['A1'] },
    });
    expect(hold.status).toBe(422);
    expect((await server.api('GET', `/api/movies/${fixture.movieId}/shows`)).body.shows).toEqual([]);
    const change = await server.api('PATCH', `/api/admin/shows/${fixture.showId}`, {
      token: adminToken,
      body: { prices: { GOLD: 1, SILVER: 1 } },
    });
    expect(change.status).toBe(409);
    expect(
      (await server.api('DELETE', `/api/admin/shows/${fixture.showId}`, { token: adminToken })).status,
    ).toBe(204);
    expect((await server.api('DELETE', '/api/admin/shows/shw_nope', { token: adminToken })).status).toBe(404);
  });
});

describe('blocking seats', () => {
  it('takes seats off sale and puts them back', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const user = await newUser(server.api);
    const blocked = await post(`/api/admin/shows/${showId}/block`, { seats: ['A1', 'A2'] });
    expect(blocked.status).toBe(200);
    expect(blocked.body).toEqual({ showId, seats: ['A1', 'A2'] });
    const map = (await server.api('GET', `/api/shows/${showId}/seats`)).body;
    expect(map.counts).toEqual({ available: 28, held: 0, booked: 0, blocked: 2 });
    const hold = await server.api('POST', `/api/shows/${showId}/holds`, {
      token: user.token,
      body: { seats: ['A2'] },
    });
    expect(hold.status).toBe(409);
    expect(hold.body.error.details.seats).toEqual(['A2']);
    expect((await post(`/api/admin/shows/${showId}/unblock`, { seats: ['A2'] })).status).toBe(200);
    expect(
      (await server.api('POST', `/api/shows/${showId}/holds`, { token: user.token, body: { seats: ['A2'] } }))
        .status,
    ).toBe(201);
  });

  it('refuses held seats, unknown seats and unknown shows', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const user = await newUser(server.api);
    await server.api('POST', `/api/shows/${showId}/holds`, { token: user.token, body: { seats: ['B5'] } });
    const held = await post(`/api/admin/shows/${showId}/block`, { seats: ['B4', 'B5'] });
    expect(held.status).toBe(409);
    expect(held.body.error).toMatchObject({ code: 'SEATS_UNAVAILABLE', details: { seats: ['B5'] } });
    const unknown = await post(`/api/admin/shows/${showId}/block`, { seats: ['Z99'] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'UNKNOWN_SEAT', details: { seats: ['Z99'] } });
    expect((await post(`/api/admin/shows/${showId}/unblock`, { seats: ['C1'] })).status).toBe(409);
    expect((await post('/api/admin/shows/shw_nope/block', { seats: ['A1'] })).status).toBe(404);
    expect((await post(`/api/admin/shows/${showId}/block`, { seats: [] })).status).toBe(400);
  });
});
