/**
 * @module catalog
 * Movies, theaters, screens and shows: the public reads (filters backed by the indexes of migrations
 * 001 and 005), ratings, and the admin writes. Scheduling a show writes its row and then creates its
 * actor; seat state itself belongs to the actor, never to this module.
 */
import type { SeatLayout } from '../actors/seat-layout.js';
import { compileLayout } from '../actors/seat-layout.js';
import type { ShowCommand, ShowReply } from '../actors/show-actor.js';
import { layoutKeyOf } from '../actors/show-codec.js';
import { newId } from '../ids.js';
import type { AppDb } from '../persistence/app-db.js';
import { type Failure, failure } from './failure.js';
import { refusal } from './holds.js';

export interface Movie {
  id: string;
  title: string;
  description: string;
  genres: string[];
  language: string;
  durationMin: number;
  certificate: string;
  rating: number;
  votes: number;
  releaseDate: string;
  posterUrl: string | null;
}

export interface MovieInput {
  title: string;
  description?: string;
  genres: string[];
  language: string;
  durationMin: number;
  certificate: string;
  releaseDate: string;
  posterUrl?: string | null;
}

export interface MovieFilters {
  city?: string;
  language?: string;
  genre?: string;
  minRating?: number;
  /** YYYY-MM-DD, a UTC day. */
  date?: string;
  q?: string;
}

export interface ScreenSummary {
  id: string;
  name: string;
  seatCount: number;
  categories: string[];
}

export interface Screen extends ScreenSummary {
  theaterId: string;
  layout: SeatLayout;
}

export interface Theater {
  id: string;
  name: string;
  city: string;
  address: string;
  /** IANA zone (`Asia/Kolkata`): show times in texts people read are given in it. */
  timeZone: string;
  screens: ScreenSummary[];
}

export interface TheaterInput {
  name: string;
  city: string;
  address?: string;
  /** An IANA zone; `DEFAULT_TIME_ZONE` when omitted. Callers check it with `canonicalTimeZone`. */
  timeZone?: string;
}

/** Every theater so far is in India; migration 009 gave existing theaters the same zone. */
export const DEFAULT_TIME_ZONE = 'Asia/Kolkata';

/**
 * The zone as stored (`europe/berlin` → `Europe/Berlin`), or undefined unless it is an IANA name
 * (Area/Location, or UTC) that Intl knows. Intl alone is too lenient: it takes abbreviations (`IST`,
 * which it reads as India, though Ireland uses it too) and, in newer runtimes, fixed offsets, which
 * lose daylight-saving rules. Intl's own spelling is taken only when it differs in case alone: this
 * ICU answers `Asia/Calcutta` for `Asia/Kolkata`, and nobody should see the old name come back.
 */
export function canonicalTimeZone(zone: string): string | undefined {
  if (!IANA_NAME.test(zone) && zone.toUpperCase() !== 'UTC') return undefined;
  try {
    const resolved = new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === zone.toLowerCase() ? resolved : zone;
  } catch {
    return undefined;
  }
}

/** `Asia/Kolkata`, `America/Argentina/Buenos_Aires`, `Etc/GMT+5`. */
const IANA_NAME = /^[A-Za-z]+(\/[A-Za-z0-9_+-]+)+$/;

export interface ShowListing {
  id: string;
  movieId: string;
  theater: { id: string; name: string; city: string; timeZone: string };
  screen: { id: string; name: string };
  startTime: string;
  format: string;
  language: string;
  seatsAvailable: number;
  priceFrom: number;
  currency: string;
}

export interface Show {
  id: string;
  movieId: string;
  movie: Movie;
  theater: { id: string; name: string; city: string; address: string; timeZone: string };
  screen: ScreenSummary;
  startTime: string;
  endTime: string;
  format: string;
  language: string;
  prices: Record<string, number>;
  priceFrom: number;
  currency: string;
  status: 'scheduled' | 'cancelled';
  forbidSingleSeatGaps: boolean;
}

export interface ShowInput {
  movieId: string;
  screenId: string;
  startTime: string;
  prices: Record<string, number>;
  format?: string;
  language?: string;
  forbidSingleSeatGaps?: boolean;
}

/** What creating a show needs from the seat allocator: the ShardRouter satisfies it. */
export interface ShowActors {
  createShow(spec: {
    showId: string;
    layoutKey: string;
    forbidSingleSeatGaps: boolean;
  }): Promise<{ ok: true } | { ok: false; code: string; message: string }>;
  send(
    showId: string,
    command: ShowCommand,
  ): Promise<ShowReply | { ok: false; code: string; message: string; seats?: string[] }>;
}

export interface CatalogDeps {
  db: AppDb;
  actors: ShowActors;
  /** Drops a show from the hot-path cache after an admin change (ShowInfoCache.forget). */
  forgetShow: (showId: string) => void;
  /** Seats available now, from the live seat map; undefined when it cannot be had cheaply. */
  availableSeats?: (showId: string) => Promise<number | undefined>;
  currency: string;
  now: () => number;
}

/** Bounds on list answers: the catalog of one city's current movies is far smaller. */
export const MAX_LISTED_MOVIES = 500;
export const MAX_LISTED_THEATERS = 500;
export const MAX_LISTED_SHOWS = 500;
/**
 * Show lists up to this long report live seat counts (one seat-map read per show, served from the main
 * thread's mirror once loaded); longer lists report the screen's capacity instead, so one request can
 * never fan out to hundreds of actors.
 */
export const MAX_LIVE_COUNTED_SHOWS = 50;

interface MovieRow {
  id: string;
  title: string;
  description: string;
  genres: string;
  language: string;
  duration_min: number;
  certificate: string;
  rating: number;
  votes: number;
  release_date: string;
  poster_url: string | null;
  archived_at: string | null;
}

interface ScreenRow {
  id: string;
  theater_id: string;
  name: string;
  layout: string;
  seat_count: number;
  categories: string;
}

interface ShowRow {
  id: string;
  movie_id: string;
  screen_id: string;
  theater_id: string;
  start_time: string;
  end_time: string;
  format: string;
  language: string;
  prices: string;
  currency: string;
  status: 'scheduled' | 'cancelled';
  forbid_single_seat_gaps: number;
}

function toMovie(r: MovieRow): Movie {
  return {
    id: r.id,
    title: r.title,
    description: r.description,
    genres: JSON.parse(r.genres) as string[],
    language: r.language,
    durationMin: r.duration_min,
    certificate: r.certificate,
    rating: r.rating,
    votes: r.votes,
    releaseDate: r.release_date,
    posterUrl: r.poster_url,
  };
}

function toScreenSummary(r: Pick<ScreenRow, 'id' | 'name' | 'seat_count' | 'categories'>): ScreenSummary {
  return {
    id: r.id,
    name: r.name,
    seatCount: r.seat_count,
    categories: JSON.parse(r.categories) as string[],
  };
}

/** "hindi", "HINDI" → "Hindi": languages are stored in one spelling so the plain index serves the filter. */
export function canonicalLanguage(language: string): string {
  return language
    .trim()
    .toLowerCase()
    .replace(/(^|[\s-])\p{L}/gu, (m) => m.toUpperCase());
}

/** Collapses inner whitespace; matching is case-insensitive (the columns are COLLATE NOCASE). */
export function canonicalName(name: string): string {
  return name.trim().replace(/\s+/g, ' ');
}

function uniqueGenres(genres: string[]): string[] {
  const seen = new Map<string, string>();
  for (const g of genres.map(canonicalName))
    if (g && !seen.has(g.toLowerCase())) seen.set(g.toLowerCase(), g);
  return [...seen.values()];
}

function priceFrom(prices: Record<string, number>): number {
  return Math.min(...Object.values(prices));
}

/** The UTC day [from, to) of a YYYY-MM-DD date, as ISO strings comparable with stored times. */
export function utcDay(date: string): { from: string; to: string } {
  const from = Date.parse(`${date}T00:00:00.000Z`);
  return { from: new Date(from).toISOString(), to: new Date(from + 86_400_000).toISOString() };
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export class CatalogService {
  readonly #movie;
  readonly #theater;
  readonly #screen;
  readonly #show;

  constructor(private readonly d: CatalogDeps) {
    this.#movie = d.db.prepare('SELECT * FROM movies WHERE id = ? AND archived_at IS NULL');
    this.#theater = d.db.prepare(
      'SELECT id, name, city, address, time_zone AS timeZone FROM theaters WHERE id = ?',
    );
    this.#screen = d.db.prepare('SELECT * FROM screens WHERE id = ?');
    this.#show = d.db.prepare('SELECT * FROM shows WHERE id = ?');
  }

  #nowIso(): string {
    return new Date(this.d.now()).toISOString();
  }

  // ---- public reads -------------------------------------------------------------------------------

  /** Cities with theaters, counting their theaters and the movies with an upcoming show there. */
  cities(): { name: string; theaters: number; movies: number }[] {
    return this.d.db
      .prepare(
        `SELECT t.city AS name, COUNT(*) AS theaters,
           (SELECT COUNT(DISTINCT s.movie_id) FROM shows s
             WHERE s.city = t.city AND s.start_time > @now AND s.status = 'scheduled') AS movies
         FROM theaters t GROUP BY t.city ORDER BY t.city`,
      )
      .all({ now: this.#nowIso() }) as { name: string; theaters: number; movies: number }[];
  }

  /** Movies matching every given filter; show-based filters (city, date) count only upcoming shows. */
  movies(filters: MovieFilters): Movie[] {
    const where = ['m.archived_at IS NULL'];
    const params: Record<string, unknown> = { now: this.#nowIso(), limit: MAX_LISTED_MOVIES };
    if (filters.language !== undefined) {
      where.push('m.language = @language');
      params.language = canonicalLanguage(filters.language);
    }
    if (filters.genre !== undefined) {
      where.push('m.id IN (SELECT movie_id FROM movie_genres WHERE genre = @genre)');
      params.genre = canonicalName(filters.genre);
    }
    if (filters.minRating !== undefined) {
      where.push('m.rating >= @minRating');
      params.minRating = filters.minRating;
    }
    if (filters.q !== undefined) {
      where.push("m.title LIKE @q ESCAPE '\\'");
      params.q = `%${escapeLike(filters.q.trim())}%`;
    }
    const showFilter = this.#showFilter(filters, params);
    if (showFilter) where.push(showFilter);
    const rows = this.d.db
      .prepare(
        `SELECT m.* FROM movies m WHERE ${where.join(' AND ')}
         ORDER BY m.rating DESC, m.votes DESC, m.title, m.id LIMIT @limit`,
      )
      .all(params) as MovieRow[];
    return rows.map(toMovie);
  }

  /** With a city: through shows_city_start. With only a date: per movie through shows_movie_start. */
  #showFilter(filters: MovieFilters, params: Record<string, unknown>): string | undefined {
    const upcoming = "s.status = 'scheduled' AND s.start_time > @now";
    if (filters.date !== undefined) {
      const day = utcDay(filters.date);
      params.from = day.from;
      params.to = day.to;
    }
    const inDay = filters.date === undefined ? '' : ' AND s.start_time >= @from AND s.start_time < @to';
    if (filters.city !== undefined) {
      params.city = canonicalName(filters.city);
      return `m.id IN (SELECT s.movie_id FROM shows s WHERE s.city = @city AND ${upcoming}${inDay})`;
    }
    if (filters.date !== undefined)
      return `EXISTS (SELECT 1 FROM shows s WHERE s.movie_id = m.id AND ${upcoming}${inDay})`;
    return undefined;
  }

  movie(id: string): { ok: true; movie: Movie } | Failure {
    const row = this.#movie.get(id) as MovieRow | undefined;
    return row ? { ok: true, movie: toMovie(row) } : failure('MOVIE_NOT_FOUND', `no movie ${id}`);
  }

  /** A movie's upcoming scheduled shows, by start time. */
  async movieShows(
    movieId: string,
    filters: { city?: string; date?: string },
  ): Promise<{ ok: true; shows: ShowListing[] } | Failure> {
    const found = this.movie(movieId);
    if (!found.ok) return found;
    const params: Record<string, unknown> = { movieId, now: this.#nowIso(), limit: MAX_LISTED_SHOWS };
    let where = "s.movie_id = @movieId AND s.status = 'scheduled' AND s.start_time > @now";
    if (filters.date !== undefined) {
      Object.assign(params, utcDay(filters.date));
      where += ' AND s.start_time >= @from AND s.start_time < @to';
    }
    if (filters.city !== undefined) {
      params.city = canonicalName(filters.city);
      where += ' AND s.city = @city';
    }
    const rows = this.d.db
      .prepare(
        `SELECT s.id, s.movie_id, s.theater_id, t.name AS theater_name, t.city AS theater_city,
                t.time_zone AS theater_time_zone, s.screen_id,
                sc.name AS screen_name, sc.seat_count, s.start_time, s.format, s.language, s.prices, s.currency
         FROM shows s JOIN theaters t ON t.id = s.theater_id JOIN screens sc ON sc.id = s.screen_id
         WHERE ${where} ORDER BY s.start_time, s.id LIMIT @limit`,
      )
      .all(params) as ListingRow[];
    const available = await this.#availability(rows);
    return { ok: true, shows: rows.map((r, i) => toListing(r, available[i] ?? r.seat_count)) };
  }

  async #availability(rows: ListingRow[]): Promise<(number | undefined)[]> {
    const read = this.d.availableSeats;
    if (!read || rows.length > MAX_LIVE_COUNTED_SHOWS) return [];
    return Promise.all(rows.map((r) => read(r.id).catch(() => undefined)));
  }

  theaters(city?: string): Theater[] {
    const rows = (
      city === undefined
        ? this.d.db
            .prepare(
              'SELECT id, name, city, address, time_zone AS timeZone FROM theaters ORDER BY city, name, id LIMIT ?',
            )
            .all(MAX_LISTED_THEATERS)
        : this.d.db
            .prepare(
              `SELECT id, name, city, address, time_zone AS timeZone FROM theaters WHERE city = ?
               ORDER BY name, id LIMIT ?`,
            )
            .all(canonicalName(city), MAX_LISTED_THEATERS)
    ) as Omit<Theater, 'screens'>[];
    const screens = this.d.db
      .prepare(
        `SELECT id, theater_id, name, seat_count, categories FROM screens
         WHERE theater_id IN (SELECT value FROM json_each(?)) ORDER BY name, id`,
      )
      .all(JSON.stringify(rows.map((t) => t.id))) as ScreenRow[];
    const byTheater = new Map<string, ScreenSummary[]>();
    for (const s of screens)
      byTheater.set(s.theater_id, [...(byTheater.get(s.theater_id) ?? []), toScreenSummary(s)]);
    return rows.map((t) => ({ ...t, screens: byTheater.get(t.id) ?? [] }));
  }

  /** One show with its movie, theater and screen; cancelled shows are still found (status says so). */
  show(id: string): { ok: true; show: Show } | Failure {
    const row = this.#show.get(id) as ShowRow | undefined;
    if (!row) return failure('SHOW_NOT_FOUND', `no show ${id}`);
    const movie = this.d.db.prepare('SELECT * FROM movies WHERE id = ?').get(row.movie_id) as MovieRow;
    const theater = this.#theater.get(row.theater_id) as Show['theater'];
    const screen = this.#screen.get(row.screen_id) as ScreenRow;
    const prices = JSON.parse(row.prices) as Record<string, number>;
    return {
      ok: true,
      show: {
        id: row.id,
        movieId: row.movie_id,
        movie: toMovie(movie),
        theater,
        screen: toScreenSummary(screen),
        startTime: row.start_time,
        endTime: row.end_time,
        format: row.format,
        language: row.language,
        prices,
        priceFrom: priceFrom(prices),
        currency: row.currency,
        status: row.status,
        forbidSingleSeatGaps: row.forbid_single_seat_gaps === 1,
      },
    };
  }

  // ---- ratings ------------------------------------------------------------------------------------

  /** Upserts the user's score and recomputes the average (one decimal) and votes, in one transaction. */
  rate(userId: string, movieId: string, score: number): { ok: true; movie: Movie; score: number } | Failure {
    const found = this.movie(movieId);
    if (!found.ok) return found;
    if (!this.#hasConfirmedBooking(userId, movieId))
      return failure('NOT_ELIGIBLE', 'only someone with a confirmed booking of this movie can rate it');
    this.d.db.transaction(() => {
      this.d.db
        .prepare(
          `INSERT INTO ratings (user_id, movie_id, score, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (user_id, movie_id) DO UPDATE SET score = excluded.score`,
        )
        .run(userId, movieId, score, this.#nowIso());
      this.#recomputeRating(movieId);
    })();
    return { ok: true, movie: (this.movie(movieId) as { movie: Movie }).movie, score };
  }

  #hasConfirmedBooking(userId: string, movieId: string): boolean {
    return (
      this.d.db
        .prepare(
          `SELECT 1 FROM bookings b JOIN shows s ON s.id = b.show_id
           WHERE b.user_id = ? AND s.movie_id = ? AND b.status = 'confirmed' LIMIT 1`,
        )
        .get(userId, movieId) !== undefined
    );
  }

  /**
   * A rating stands only while its author has a confirmed booking of the movie: the booking saga calls
   * this inside the transaction that cancels a booking, so the rating that booking qualified goes with
   * it, unless another confirmed booking of the same movie still qualifies it. Returns whether one went.
   */
  withdrawUnbackedRating(userId: string, showId: string): boolean {
    const movieId = this.d.db.prepare('SELECT movie_id FROM shows WHERE id = ?').pluck().get(showId) as
      | string
      | undefined;
    if (movieId === undefined || this.#hasConfirmedBooking(userId, movieId)) return false;
    return this.d.db.transaction(() => {
      const removed = this.d.db
        .prepare('DELETE FROM ratings WHERE user_id = ? AND movie_id = ?')
        .run(userId, movieId).changes;
      if (removed > 0) this.#recomputeRating(movieId);
      return removed > 0;
    })();
  }

  #recomputeRating(movieId: string): void {
    this.d.db
      .prepare(
        `UPDATE movies SET
           rating = COALESCE((SELECT ROUND(AVG(score), 1) FROM ratings WHERE movie_id = @id), 0),
           votes = (SELECT COUNT(*) FROM ratings WHERE movie_id = @id), updated_at = @now
         WHERE id = @id`,
      )
      .run({ id: movieId, now: this.#nowIso() });
  }

  /** Recomputes every movie's rating from the ratings table (the demo seed inserts ratings in bulk). */
  recomputeAllRatings(): void {
    for (const id of this.d.db.prepare('SELECT DISTINCT movie_id FROM ratings').pluck().all() as string[])
      this.#recomputeRating(id);
  }

  // ---- admin: movies ------------------------------------------------------------------------------

  createMovie(input: MovieInput): { ok: true; movie: Movie } {
    const id = newId('mov');
    const now = this.#nowIso();
    const genres = uniqueGenres(input.genres);
    this.d.db.transaction(() => {
      this.d.db
        .prepare(
          `INSERT INTO movies (id, title, description, genres, language, duration_min, certificate, release_date,
             poster_url, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          id,
          input.title.trim(),
          input.description ?? '',
          JSON.stringify(genres),
          canonicalLanguage(input.language),
          input.durationMin,
          input.certificate,
          input.releaseDate,
          input.posterUrl ?? null,
          now,
          now,
        );
      this.#setGenres(id, genres);
    })();
    return this.movie(id) as { ok: true; movie: Movie };
  }

  #setGenres(movieId: string, genres: string[]): void {
    this.d.db.prepare('DELETE FROM movie_genres WHERE movie_id = ?').run(movieId);
    const insert = this.d.db.prepare('INSERT INTO movie_genres (movie_id, genre) VALUES (?, ?)');
    for (const genre of genres) insert.run(movieId, genre);
  }

  updateMovie(id: string, patch: Partial<MovieInput>): { ok: true; movie: Movie } | Failure {
    const found = this.movie(id);
    if (!found.ok) return found;
    const next = { ...found.movie, ...definedOnly(patch) };
    const genres = uniqueGenres(next.genres);
    this.d.db.transaction(() => {
      this.d.db
        .prepare(
          `UPDATE movies SET title = ?, description = ?, genres = ?, language = ?, duration_min = ?, certificate = ?,
             release_date = ?, poster_url = ?, updated_at = ? WHERE id = ?`,
        )
        .run(
          next.title.trim(),
          next.description,
          JSON.stringify(genres),
          canonicalLanguage(next.language),
          next.durationMin,
          next.certificate,
          next.releaseDate,
          next.posterUrl ?? null,
          this.#nowIso(),
          id,
        );
      this.#setGenres(id, genres);
    })();
    return this.movie(id);
  }

  /**
   * Archives a movie: past shows, bookings and tickets still name it, so the row stays. A movie with
   * upcoming shows is refused; cancel them first (their bookings need refunds, which is a decision).
   */
  archiveMovie(id: string): { ok: true } | Failure {
    const found = this.movie(id);
    if (!found.ok) return found;
    const upcoming = this.d.db
      .prepare("SELECT COUNT(*) FROM shows WHERE movie_id = ? AND status = 'scheduled' AND start_time > ?")
      .pluck()
      .get(id, this.#nowIso()) as number;
    if (upcoming > 0)
      return failure('CONFLICT', `the movie has ${upcoming} upcoming shows; cancel them first`, {
        upcomingShows: upcoming,
      });
    this.d.db
      .prepare('UPDATE movies SET archived_at = ?, updated_at = ? WHERE id = ?')
      .run(this.#nowIso(), this.#nowIso(), id);
    return { ok: true };
  }

  // ---- admin: theaters and screens ----------------------------------------------------------------

  theater(id: string): { ok: true; theater: Theater } | Failure {
    const row = this.#theater.get(id) as Omit<Theater, 'screens'> | undefined;
    if (!row) return failure('THEATER_NOT_FOUND', `no theater ${id}`);
    const screens = this.d.db
      .prepare('SELECT id, name, seat_count, categories FROM screens WHERE theater_id = ? ORDER BY name, id')
      .all(id) as ScreenRow[];
    return { ok: true, theater: { ...row, screens: screens.map(toScreenSummary) } };
  }

  createTheater(input: TheaterInput): { ok: true; theater: Theater } | Failure {
    const timeZone = canonicalTimeZone(input.timeZone ?? DEFAULT_TIME_ZONE);
    if (timeZone === undefined) return unknownZone(input.timeZone ?? '');
    const id = newId('thr');
    const now = this.#nowIso();
    this.d.db
      .prepare(
        `INSERT INTO theaters (id, name, city, address, time_zone, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        canonicalName(input.name),
        canonicalName(input.city),
        input.address?.trim() ?? '',
        timeZone,
        now,
        now,
      );
    return this.theater(id) as { ok: true; theater: Theater };
  }

  /** A theater that moves city takes its shows along (shows carry the city for the city index). */
  updateTheater(id: string, patch: Partial<TheaterInput>): { ok: true; theater: Theater } | Failure {
    const found = this.theater(id);
    if (!found.ok) return found;
    const name = canonicalName(patch.name ?? found.theater.name);
    const city = canonicalName(patch.city ?? found.theater.city);
    const address = patch.address?.trim() ?? found.theater.address;
    const timeZone = canonicalTimeZone(patch.timeZone ?? found.theater.timeZone);
    if (timeZone === undefined) return unknownZone(patch.timeZone ?? '');
    this.d.db.transaction(() => {
      this.d.db
        .prepare(
          'UPDATE theaters SET name = ?, city = ?, address = ?, time_zone = ?, updated_at = ? WHERE id = ?',
        )
        .run(name, city, address, timeZone, this.#nowIso(), id);
      this.d.db
        .prepare('UPDATE shows SET city = ?, updated_at = ? WHERE theater_id = ?')
        .run(city, this.#nowIso(), id);
    })();
    // Offer scopes read the city from the cached show info: drop it rather than wait for its expiry.
    if (city !== found.theater.city)
      for (const showId of this.d.db.prepare('SELECT id FROM shows WHERE theater_id = ?').pluck().iterate(id))
        this.d.forgetShow(showId as string);
    return this.theater(id);
  }

  createScreen(theaterId: string, name: string, layout: SeatLayout): { ok: true; screen: Screen } | Failure {
    if (!this.#theater.get(theaterId)) return failure('THEATER_NOT_FOUND', `no theater ${theaterId}`);
    const compiled = compileLayout(layout);
    if (!compiled.ok) return failure('INVALID_LAYOUT', compiled.message);
    const screenName = canonicalName(name);
    const clash = this.d.db
      .prepare('SELECT id FROM screens WHERE theater_id = ? AND name = ? COLLATE NOCASE')
      .get(theaterId, screenName);
    if (clash) return failure('CONFLICT', `the theater already has a screen called ${screenName}`);
    const id = newId('scr');
    const now = this.#nowIso();
    this.d.db
      .prepare(
        `INSERT INTO screens (id, theater_id, name, layout, seat_count, categories, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        theaterId,
        screenName,
        layoutKeyOf(layout),
        compiled.layout.seatCount,
        JSON.stringify(compiled.layout.categories),
        now,
        now,
      );
    return { ok: true, screen: this.#screenOf(this.#screen.get(id) as ScreenRow) };
  }

  #screenOf(row: ScreenRow): Screen {
    return {
      ...toScreenSummary(row),
      theaterId: row.theater_id,
      layout: JSON.parse(row.layout) as SeatLayout,
    };
  }

  // ---- admin: shows -------------------------------------------------------------------------------

  /**
   * Writes the show row and then creates its actor. When the actor cannot be created now the row stays
   * (the router creates the actor from the row on first use) and the caller hears NOT_READY.
   */
  async createShow(input: ShowInput): Promise<{ ok: true; show: Show } | Failure> {
    const inserted = this.insertShow(input);
    if (!inserted.ok) return inserted;
    const created = await this.d.actors.createShow(inserted.spec).catch((err: unknown) => ({
      ok: false as const,
      code: 'WORKER_FAILED',
      message: err instanceof Error ? err.message : String(err),
    }));
    if (!created.ok)
      return failure(
        'NOT_READY',
        'the show was saved but its seats are not ready yet; try it again shortly',
        {
          showId: inserted.spec.showId,
          reason: created.code,
        },
      );
    return this.show(inserted.spec.showId);
  }

  /** The row half of createShow, synchronous so the demo seed can write many in one transaction. */
  insertShow(
    input: ShowInput,
  ): { ok: true; spec: { showId: string; layoutKey: string; forbidSingleSeatGaps: boolean } } | Failure {
    const movie = this.#movie.get(input.movieId) as MovieRow | undefined;
    if (!movie) return failure('MOVIE_NOT_FOUND', `no movie ${input.movieId}`);
    const screen = this.#screen.get(input.screenId) as ScreenRow | undefined;
    if (!screen) return failure('SCREEN_NOT_FOUND', `no screen ${input.screenId}`);
    const timing = this.#timing(input.startTime, movie.duration_min, screen.id);
    if (!timing.ok) return timing;
    const pricing = checkPrices(input.prices, JSON.parse(screen.categories) as string[]);
    if (pricing) return pricing;
    const theater = this.#theater.get(screen.theater_id) as { city: string };
    const showId = newId('shw');
    const isGapFree = input.forbidSingleSeatGaps ?? false;
    const now = this.#nowIso();
    this.d.db
      .prepare(
        `INSERT INTO shows (id, movie_id, screen_id, theater_id, city, start_time, end_time, format, language, prices,
           currency, forbid_single_seat_gaps, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?)`,
      )
      .run(
        showId,
        movie.id,
        screen.id,
        screen.theater_id,
        theater.city,
        timing.start,
        timing.end,
        input.format ?? '2D',
        input.language === undefined ? movie.language : canonicalLanguage(input.language),
        JSON.stringify(input.prices),
        this.d.currency,
        isGapFree ? 1 : 0,
        now,
        now,
      );
    return { ok: true, spec: { showId, layoutKey: screen.layout, forbidSingleSeatGaps: isGapFree } };
  }

  /** A show starts in the future and does not overlap another scheduled show on its screen. */
  #timing(
    startTime: string,
    durationMin: number,
    screenId: string,
    showId?: string,
  ): { ok: true; start: string; end: string } | Failure {
    const startMs = Date.parse(startTime);
    if (!Number.isFinite(startMs))
      return failure('VALIDATION_FAILED', 'startTime is not a time', { fields: { startTime: 'invalid' } });
    if (startMs <= this.d.now()) return failure('RULE_VIOLATION', 'a show must start in the future');
    const start = new Date(startMs).toISOString();
    const end = new Date(startMs + durationMin * 60_000).toISOString();
    const clash = this.d.db
      .prepare(
        `SELECT id, start_time, end_time FROM shows WHERE screen_id = ? AND status = 'scheduled'
           AND start_time < ? AND end_time > ? AND id != ? LIMIT 1`,
      )
      .get(screenId, end, start, showId ?? '') as
      | { id: string; start_time: string; end_time: string }
      | undefined;
    if (clash)
      return failure('CONFLICT', `the screen is busy from ${clash.start_time} to ${clash.end_time}`, {
        showId: clash.id,
      });
    return { ok: true, start, end };
  }

  /** Prices and start time of a scheduled show; a move keeps its duration and must not overlap. */
  updateShow(
    id: string,
    patch: { prices?: Record<string, number>; startTime?: string },
  ): { ok: true; show: Show } | Failure {
    const row = this.#show.get(id) as ShowRow | undefined;
    if (!row) return failure('SHOW_NOT_FOUND', `no show ${id}`);
    if (row.status !== 'scheduled') return failure('INVALID_STATE', 'a cancelled show cannot be changed');
    if (patch.prices) {
      const screen = this.#screen.get(row.screen_id) as ScreenRow;
      const pricing = checkPrices(patch.prices, JSON.parse(screen.categories) as string[]);
      if (pricing) return pricing;
    }
    let start = row.start_time;
    let end = row.end_time;
    if (patch.startTime !== undefined) {
      const durationMin = (Date.parse(row.end_time) - Date.parse(row.start_time)) / 60_000;
      const timing = this.#timing(patch.startTime, durationMin, row.screen_id, id);
      if (!timing.ok) return timing;
      ({ start, end } = timing);
    }
    this.d.db
      .prepare('UPDATE shows SET prices = ?, start_time = ?, end_time = ?, updated_at = ? WHERE id = ?')
      .run(JSON.stringify(patch.prices ?? JSON.parse(row.prices)), start, end, this.#nowIso(), id);
    this.d.forgetShow(id);
    return this.show(id);
  }

  /**
   * Takes a show off sale for good. Idempotent. Refunding its bookings is the booking saga's job, so a
   * show that has already been played cannot be cancelled: that would refund every ticket, the
   * checked-in ones included (a show cut short is running, not played, and can be).
   */
  cancelShow(id: string): { ok: true; show: Show } | Failure {
    const row = this.#show.get(id) as ShowRow | undefined;
    if (!row) return failure('SHOW_NOT_FOUND', `no show ${id}`);
    if (row.status === 'scheduled' && Date.parse(row.end_time) <= this.d.now())
      return failure('INVALID_STATE', 'this show has already been played; it cannot be cancelled');
    this.d.db
      .prepare("UPDATE shows SET status = 'cancelled', updated_at = ? WHERE id = ? AND status = 'scheduled'")
      .run(this.#nowIso(), id);
    this.d.forgetShow(id);
    return this.show(id);
  }

  /** Takes seats off sale (block) or puts them back (unblock), through the show's actor. */
  async blockSeats(
    id: string,
    seats: string[],
    isBlock: boolean,
  ): Promise<{ ok: true; seats: string[] } | Failure> {
    if (!this.#show.get(id)) return failure('SHOW_NOT_FOUND', `no show ${id}`);
    const reply = await this.d.actors.send(id, {
      type: isBlock ? 'block' : 'unblock',
      seats,
      nowMs: this.d.now(),
    });
    if (!reply.ok) return refusal(reply);
    return { ok: true, seats: 'seats' in reply ? reply.seats : seats };
  }
}

interface ListingRow {
  id: string;
  movie_id: string;
  theater_id: string;
  theater_name: string;
  theater_city: string;
  theater_time_zone: string;
  screen_id: string;
  screen_name: string;
  seat_count: number;
  start_time: string;
  format: string;
  language: string;
  prices: string;
  currency: string;
}

function toListing(r: ListingRow, seatsAvailable: number): ShowListing {
  return {
    id: r.id,
    movieId: r.movie_id,
    theater: { id: r.theater_id, name: r.theater_name, city: r.theater_city, timeZone: r.theater_time_zone },
    screen: { id: r.screen_id, name: r.screen_name },
    startTime: r.start_time,
    format: r.format,
    language: r.language,
    seatsAvailable,
    priceFrom: priceFrom(JSON.parse(r.prices) as Record<string, number>),
    currency: r.currency,
  };
}

/** Every category of the layout has a price, and no price names a category the layout lacks. */
export function checkPrices(prices: Record<string, number>, categories: string[]): Failure | undefined {
  const missing = categories.filter((c) => prices[c] === undefined);
  const unknown = Object.keys(prices).filter((c) => !categories.includes(c));
  if (missing.length === 0 && unknown.length === 0) return undefined;
  const fields: Record<string, string> = {};
  for (const c of missing) fields[`prices.${c}`] = 'missing: the layout has this category';
  for (const c of unknown) fields[`prices.${c}`] = 'the layout has no such category';
  return failure(
    'VALIDATION_FAILED',
    `prices must name exactly the layout's categories: ${categories.join(', ')}`,
    {
      fields,
    },
  );
}

function unknownZone(zone: string): Failure {
  return failure('VALIDATION_FAILED', `timeZone ${zone} is not an IANA time zone such as Asia/Kolkata`, {
    fields: { timeZone: 'not an IANA time zone' },
  });
}

function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Live availability from the seat-map mirror: the rendered body ends with its counts, so they are read
 * from its tail instead of parsing every seat.
 */
export function liveAvailability(seatMaps: {
  seatMapJson(showId: string): Promise<{ json: string } | undefined>;
}): (showId: string) => Promise<number | undefined> {
  return async (showId) => {
    const view = await seatMaps.seatMapJson(showId);
    if (!view) return undefined;
    const at = view.json.lastIndexOf('"counts":');
    if (at < 0) return undefined;
    // `counts` is a flat object: it ends at its first closing brace, wherever it sits in the answer.
    const end = view.json.indexOf('}', at);
    if (end < 0) return undefined;
    const counts = JSON.parse(view.json.slice(at + '"counts":'.length, end + 1)) as { available?: unknown };
    return typeof counts.available === 'number' ? counts.available : undefined;
  };
}
