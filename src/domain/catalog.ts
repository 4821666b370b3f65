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
import { forUpdate, type Queryable, type SqlValue, type Store } from '../persistence/store.js';
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
  store: Store;
  actors: ShowActors;
  /** Re-reads a show into the hot-path cache after an admin change, once committed (ShowInfoCache.refresh). */
  showChanged: (showId: string) => Promise<void>;
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

const SELECT_THEATER = 'SELECT id, name, city, address, time_zone AS "timeZone" FROM theaters';

/** `?, ?, ?` for a list of n > 0 values: PostgreSQL has no json_each, so lists travel as placeholders. */
function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

export class CatalogService {
  readonly #store: Store;

  constructor(private readonly d: CatalogDeps) {
    this.#store = d.store;
  }

  #nowIso(): string {
    return new Date(this.d.now()).toISOString();
  }

  /** `work` on the caller's transaction when given one (the demo seed writes in one), else in its own. */
  #atomically<T>(q: Queryable | undefined, work: (tx: Queryable) => Promise<T>): Promise<T> {
    return q ? work(q) : this.#store.transaction(work);
  }

  // ---- public reads -------------------------------------------------------------------------------

  /** Cities with theaters, counting their theaters and the movies with an upcoming show there. */
  cities(): Promise<{ name: string; theaters: number; movies: number }[]> {
    return this.#store.all(
      `SELECT t.city AS name, COUNT(*) AS theaters,
         (SELECT COUNT(DISTINCT s.movie_id) FROM shows s
           WHERE s.city = t.city AND s.start_time > ? AND s.status = 'scheduled') AS movies
       FROM theaters t GROUP BY t.city ORDER BY t.city`,
      [this.#nowIso()],
    );
  }

  /** Movies matching every given filter; show-based filters (city, date) count only upcoming shows. */
  async movies(filters: MovieFilters): Promise<Movie[]> {
    const where = ['m.archived_at IS NULL'];
    const params: SqlValue[] = [];
    if (filters.language !== undefined) {
      where.push('m.language = ?');
      params.push(canonicalLanguage(filters.language));
    }
    if (filters.genre !== undefined) {
      where.push('m.id IN (SELECT movie_id FROM movie_genres WHERE genre = ?)');
      params.push(canonicalName(filters.genre));
    }
    if (filters.minRating !== undefined) {
      where.push('m.rating >= ?');
      params.push(filters.minRating);
    }
    if (filters.q !== undefined) {
      // SQLite's LIKE ignores ASCII case and PostgreSQL's does not: lower() on both sides on both.
      where.push("lower(m.title) LIKE lower(CAST(? AS TEXT)) ESCAPE '\\'");
      params.push(`%${escapeLike(filters.q.trim())}%`);
    }
    const showFilter = this.#showFilter(filters, params);
    if (showFilter) where.push(showFilter);
    params.push(MAX_LISTED_MOVIES);
    const rows = await this.#store.all<MovieRow>(
      `SELECT m.* FROM movies m WHERE ${where.join(' AND ')}
       ORDER BY m.rating DESC, m.votes DESC, m.title, m.id LIMIT ?`,
      params,
    );
    return rows.map(toMovie);
  }

  /**
   * With a city: through shows_city_start. With only a date: per movie through shows_movie_start.
   * Appends its parameters to `params` in the order of its placeholders.
   */
  #showFilter(filters: MovieFilters, params: SqlValue[]): string | undefined {
    if (filters.city === undefined && filters.date === undefined) return undefined;
    const clauses: string[] = [];
    if (filters.city !== undefined) {
      clauses.push('s.city = ?');
      params.push(canonicalName(filters.city));
    } else clauses.push('s.movie_id = m.id');
    clauses.push("s.status = 'scheduled' AND s.start_time > ?");
    params.push(this.#nowIso());
    if (filters.date !== undefined) {
      const day = utcDay(filters.date);
      clauses.push('s.start_time >= ? AND s.start_time < ?');
      params.push(day.from, day.to);
    }
    return filters.city !== undefined
      ? `m.id IN (SELECT s.movie_id FROM shows s WHERE ${clauses.join(' AND ')})`
      : `EXISTS (SELECT 1 FROM shows s WHERE ${clauses.join(' AND ')})`;
  }

  async movie(id: string, q: Queryable = this.#store): Promise<{ ok: true; movie: Movie } | Failure> {
    const row = await q.get<MovieRow>('SELECT * FROM movies WHERE id = ? AND archived_at IS NULL', [id]);
    return row ? { ok: true, movie: toMovie(row) } : failure('MOVIE_NOT_FOUND', `no movie ${id}`);
  }

  /** A movie's upcoming scheduled shows, by start time. */
  async movieShows(
    movieId: string,
    filters: { city?: string; date?: string },
  ): Promise<{ ok: true; shows: ShowListing[] } | Failure> {
    const found = await this.movie(movieId);
    if (!found.ok) return found;
    const params: SqlValue[] = [movieId, this.#nowIso()];
    let where = "s.movie_id = ? AND s.status = 'scheduled' AND s.start_time > ?";
    if (filters.date !== undefined) {
      const day = utcDay(filters.date);
      where += ' AND s.start_time >= ? AND s.start_time < ?';
      params.push(day.from, day.to);
    }
    if (filters.city !== undefined) {
      where += ' AND s.city = ?';
      params.push(canonicalName(filters.city));
    }
    params.push(MAX_LISTED_SHOWS);
    const rows = await this.#store.all<ListingRow>(
      `SELECT s.id, s.movie_id, s.theater_id, t.name AS theater_name, t.city AS theater_city,
              t.time_zone AS theater_time_zone, s.screen_id,
              sc.name AS screen_name, sc.seat_count, s.start_time, s.format, s.language, s.prices, s.currency
       FROM shows s JOIN theaters t ON t.id = s.theater_id JOIN screens sc ON sc.id = s.screen_id
       WHERE ${where} ORDER BY s.start_time, s.id LIMIT ?`,
      params,
    );
    const available = await this.#availability(rows);
    return { ok: true, shows: rows.map((r, i) => toListing(r, available[i] ?? r.seat_count)) };
  }

  async #availability(rows: ListingRow[]): Promise<(number | undefined)[]> {
    const read = this.d.availableSeats;
    if (!read || rows.length > MAX_LIVE_COUNTED_SHOWS) return [];
    return Promise.all(rows.map((r) => read(r.id).catch(() => undefined)));
  }

  async theaters(city?: string): Promise<Theater[]> {
    const rows =
      city === undefined
        ? await this.#store.all<Omit<Theater, 'screens'>>(
            `${SELECT_THEATER} ORDER BY city, name, id LIMIT ?`,
            [MAX_LISTED_THEATERS],
          )
        : await this.#store.all<Omit<Theater, 'screens'>>(
            `${SELECT_THEATER} WHERE city = ? ORDER BY name, id LIMIT ?`,
            [canonicalName(city), MAX_LISTED_THEATERS],
          );
    if (rows.length === 0) return [];
    // At most MAX_LISTED_THEATERS placeholders: within both databases' parameter limits.
    const screens = await this.#store.all<ScreenRow>(
      `SELECT id, theater_id, name, seat_count, categories FROM screens
       WHERE theater_id IN (${placeholders(rows.length)}) ORDER BY name, id`,
      rows.map((t) => t.id),
    );
    const byTheater = new Map<string, ScreenSummary[]>();
    for (const s of screens)
      byTheater.set(s.theater_id, [...(byTheater.get(s.theater_id) ?? []), toScreenSummary(s)]);
    return rows.map((t) => ({ ...t, screens: byTheater.get(t.id) ?? [] }));
  }

  /** One show with its movie, theater and screen; cancelled shows are still found (status says so). */
  async show(id: string): Promise<{ ok: true; show: Show } | Failure> {
    const row = await this.#store.get<ShowRow>('SELECT * FROM shows WHERE id = ?', [id]);
    if (!row) return failure('SHOW_NOT_FOUND', `no show ${id}`);
    const [movie, theater, screen] = await Promise.all([
      this.#store.get<MovieRow>('SELECT * FROM movies WHERE id = ?', [row.movie_id]),
      this.#store.get<Show['theater']>(`${SELECT_THEATER} WHERE id = ?`, [row.theater_id]),
      this.#store.get<ScreenRow>('SELECT * FROM screens WHERE id = ?', [row.screen_id]),
    ]);
    // Foreign keys on both stores: a show's movie, theater and screen rows are never deleted.
    if (!movie || !theater || !screen) throw new Error(`show ${id} names a missing movie, theater or screen`);
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

  /**
   * Upserts the user's score and recomputes the average (one decimal) and votes, in one transaction.
   * Race (concurrent ratings of one movie, a cancellation withdrawing one, an archive): the movie row is
   * locked first (forUpdate), so on PostgreSQL each later statement's snapshot sees the ratings the
   * others committed and the aggregate equals the rows; the primary key keeps one rating per user.
   */
  async rate(
    userId: string,
    movieId: string,
    score: number,
  ): Promise<{ ok: true; movie: Movie; score: number } | Failure> {
    return this.#store.transaction(async (tx) => {
      const movie = await tx.get<{ id: string }>(
        `SELECT id FROM movies WHERE id = ? AND archived_at IS NULL${forUpdate(tx)}`,
        [movieId],
      );
      if (!movie) return failure('MOVIE_NOT_FOUND', `no movie ${movieId}`);
      if (!(await hasConfirmedBooking(tx, userId, movieId)))
        return failure('NOT_ELIGIBLE', 'only someone with a confirmed booking of this movie can rate it');
      await tx.run(
        `INSERT INTO ratings (user_id, movie_id, score, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, movie_id) DO UPDATE SET score = excluded.score`,
        [userId, movieId, score, this.#nowIso()],
      );
      await this.#recomputeRating(tx, movieId);
      const rated = await this.movie(movieId, tx);
      if (!rated.ok) throw new Error(`movie ${movieId} vanished while locked`);
      return { ok: true as const, movie: rated.movie, score };
    });
  }

  /**
   * A rating stands only while its author has a confirmed booking of the movie: the booking saga calls
   * this inside the transaction that cancels a booking (pass its `tx`), so the rating that booking
   * qualified goes with it, unless another confirmed booking of the same movie still qualifies it.
   * Without `q` it runs in a transaction of its own. Returns whether one went. The movie row is locked
   * before the booking check (forUpdate), as in `rate`, so a rating being posted meanwhile either
   * commits first and is withdrawn here, or waits and then sees the booking cancelled.
   */
  withdrawUnbackedRating(userId: string, showId: string, q?: Queryable): Promise<boolean> {
    return this.#atomically(q, async (tx) => {
      const show = await tx.get<{ movie_id: string }>('SELECT movie_id FROM shows WHERE id = ?', [showId]);
      if (!show) return false;
      await tx.get(`SELECT id FROM movies WHERE id = ?${forUpdate(tx)}`, [show.movie_id]);
      if (await hasConfirmedBooking(tx, userId, show.movie_id)) return false;
      const { changes } = await tx.run('DELETE FROM ratings WHERE user_id = ? AND movie_id = ?', [
        userId,
        show.movie_id,
      ]);
      if (changes > 0) await this.#recomputeRating(tx, show.movie_id);
      return changes > 0;
    });
  }

  async #recomputeRating(q: Queryable, movieId: string): Promise<void> {
    await q.run(
      `UPDATE movies SET
         rating = COALESCE((SELECT ROUND(AVG(score), 1) FROM ratings WHERE movie_id = ?), 0),
         votes = (SELECT COUNT(*) FROM ratings WHERE movie_id = ?), updated_at = ?
       WHERE id = ?`,
      [movieId, movieId, this.#nowIso(), movieId],
    );
  }

  /** Recomputes every movie's rating from the ratings table (the demo seed inserts ratings in bulk). */
  recomputeAllRatings(q?: Queryable): Promise<void> {
    return this.#atomically(q, async (tx) => {
      const rows = await tx.all<{ movie_id: string }>('SELECT DISTINCT movie_id FROM ratings');
      for (const row of rows) await this.#recomputeRating(tx, row.movie_id);
    });
  }

  // ---- admin: movies ------------------------------------------------------------------------------

  createMovie(input: MovieInput, q?: Queryable): Promise<{ ok: true; movie: Movie }> {
    const id = newId('mov');
    const now = this.#nowIso();
    const genres = uniqueGenres(input.genres);
    return this.#atomically(q, async (tx) => {
      await tx.run(
        `INSERT INTO movies (id, title, description, genres, language, duration_min, certificate, release_date,
           poster_url, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
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
        ],
      );
      await setGenres(tx, id, genres);
      return (await this.movie(id, tx)) as { ok: true; movie: Movie };
    });
  }

  /** Read and written under the movie's row lock (forUpdate): concurrent patches apply one after another. */
  updateMovie(id: string, patch: Partial<MovieInput>): Promise<{ ok: true; movie: Movie } | Failure> {
    return this.#store.transaction(async (tx) => {
      const row = await tx.get<MovieRow>(
        `SELECT * FROM movies WHERE id = ? AND archived_at IS NULL${forUpdate(tx)}`,
        [id],
      );
      if (!row) return failure('MOVIE_NOT_FOUND', `no movie ${id}`);
      const next = { ...toMovie(row), ...definedOnly(patch) };
      const genres = uniqueGenres(next.genres);
      await tx.run(
        `UPDATE movies SET title = ?, description = ?, genres = ?, language = ?, duration_min = ?, certificate = ?,
           release_date = ?, poster_url = ?, updated_at = ? WHERE id = ?`,
        [
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
        ],
      );
      await setGenres(tx, id, genres);
      return this.movie(id, tx);
    });
  }

  /**
   * Archives a movie: past shows, bookings and tickets still name it, so the row stays. A movie with
   * upcoming shows is refused; cancel them first (their bookings need refunds, which is a decision).
   * Race with a show being scheduled: both lock the movie row (forUpdate), so either the show is
   * counted here or its creation waits and then finds the movie archived.
   */
  archiveMovie(id: string): Promise<{ ok: true } | Failure> {
    return this.#store.transaction(async (tx) => {
      const movie = await tx.get(
        `SELECT id FROM movies WHERE id = ? AND archived_at IS NULL${forUpdate(tx)}`,
        [id],
      );
      if (!movie) return failure('MOVIE_NOT_FOUND', `no movie ${id}`);
      const now = this.#nowIso();
      const counted = await tx.get<{ n: number }>(
        "SELECT COUNT(*) AS n FROM shows WHERE movie_id = ? AND status = 'scheduled' AND start_time > ?",
        [id, now],
      );
      const upcoming = counted?.n ?? 0;
      if (upcoming > 0)
        return failure('CONFLICT', `the movie has ${upcoming} upcoming shows; cancel them first`, {
          upcomingShows: upcoming,
        });
      await tx.run('UPDATE movies SET archived_at = ?, updated_at = ? WHERE id = ?', [now, now, id]);
      return { ok: true as const };
    });
  }

  // ---- admin: theaters and screens ----------------------------------------------------------------

  async theater(id: string, q: Queryable = this.#store): Promise<{ ok: true; theater: Theater } | Failure> {
    const row = await q.get<Omit<Theater, 'screens'>>(`${SELECT_THEATER} WHERE id = ?`, [id]);
    if (!row) return failure('THEATER_NOT_FOUND', `no theater ${id}`);
    const screens = await q.all<ScreenRow>(
      'SELECT id, name, seat_count, categories FROM screens WHERE theater_id = ? ORDER BY name, id',
      [id],
    );
    return { ok: true, theater: { ...row, screens: screens.map(toScreenSummary) } };
  }

  async createTheater(
    input: TheaterInput,
    q: Queryable = this.#store,
  ): Promise<{ ok: true; theater: Theater } | Failure> {
    const timeZone = canonicalTimeZone(input.timeZone ?? DEFAULT_TIME_ZONE);
    if (timeZone === undefined) return unknownZone(input.timeZone ?? '');
    const id = newId('thr');
    const now = this.#nowIso();
    await q.run(
      `INSERT INTO theaters (id, name, city, address, time_zone, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [
        id,
        canonicalName(input.name),
        canonicalName(input.city),
        input.address?.trim() ?? '',
        timeZone,
        now,
        now,
      ],
    );
    return (await this.theater(id, q)) as { ok: true; theater: Theater };
  }

  /**
   * A theater that moves city takes its shows along (shows carry the city for the city index). The
   * theater row is locked (forUpdate) before it is read: a show being scheduled locks it too, so its
   * row gets either the old city and is moved here, or the new one.
   */
  async updateTheater(
    id: string,
    patch: Partial<TheaterInput>,
  ): Promise<{ ok: true; theater: Theater } | Failure> {
    const result = await this.#store.transaction(async (tx) => {
      const row = await tx.get<Omit<Theater, 'screens'>>(`${SELECT_THEATER} WHERE id = ?${forUpdate(tx)}`, [
        id,
      ]);
      if (!row) return failure('THEATER_NOT_FOUND', `no theater ${id}`);
      const name = canonicalName(patch.name ?? row.name);
      const city = canonicalName(patch.city ?? row.city);
      const address = patch.address?.trim() ?? row.address;
      const timeZone = canonicalTimeZone(patch.timeZone ?? row.timeZone);
      if (timeZone === undefined) return unknownZone(patch.timeZone ?? '');
      const now = this.#nowIso();
      await tx.run(
        'UPDATE theaters SET name = ?, city = ?, address = ?, time_zone = ?, updated_at = ? WHERE id = ?',
        [name, city, address, timeZone, now, id],
      );
      await tx.run('UPDATE shows SET city = ?, updated_at = ? WHERE theater_id = ?', [city, now, id]);
      // Show info carries the theater's name, city (offer scopes read the city) and zone (booking
      // texts): re-read it now rather than after its TTL.
      const isShowInfoChanged = city !== row.city || name !== row.name || timeZone !== row.timeZone;
      const shows = isShowInfoChanged
        ? await tx.all<{ id: string }>('SELECT id FROM shows WHERE theater_id = ?', [id])
        : [];
      return { ok: true as const, showIds: shows.map((s) => s.id) };
    });
    if (!result.ok) return result;
    for (const showId of result.showIds) await this.d.showChanged(showId);
    return this.theater(id);
  }

  /** Two screens of one theater cannot share a name: the theater row is locked (forUpdate) for the check. */
  createScreen(
    theaterId: string,
    name: string,
    layout: SeatLayout,
    q?: Queryable,
  ): Promise<{ ok: true; screen: Screen } | Failure> {
    const compiled = compileLayout(layout);
    return this.#atomically(q, async (tx) => {
      const theater = await tx.get(`SELECT id FROM theaters WHERE id = ?${forUpdate(tx)}`, [theaterId]);
      if (!theater) return failure('THEATER_NOT_FOUND', `no theater ${theaterId}`);
      if (!compiled.ok)
        return failure('INVALID_LAYOUT', compiled.message, { fields: { layout: compiled.message } });
      const screenName = canonicalName(name);
      // screens.name is plain text on PostgreSQL (NOCASE only in SQLite's comparison): lower() on both.
      const clash = await tx.get('SELECT id FROM screens WHERE theater_id = ? AND lower(name) = lower(?)', [
        theaterId,
        screenName,
      ]);
      if (clash) return failure('CONFLICT', `the theater already has a screen called ${screenName}`);
      const id = newId('scr');
      const now = this.#nowIso();
      await tx.run(
        `INSERT INTO screens (id, theater_id, name, layout, seat_count, categories, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          id,
          theaterId,
          screenName,
          layoutKeyOf(layout),
          compiled.layout.seatCount,
          JSON.stringify(compiled.layout.categories),
          now,
          now,
        ],
      );
      const row = await tx.get<ScreenRow>('SELECT * FROM screens WHERE id = ?', [id]);
      if (!row) throw new Error(`screen ${id} missing right after its insert`);
      return { ok: true as const, screen: screenOf(row) };
    });
  }

  // ---- admin: shows -------------------------------------------------------------------------------

  /**
   * Writes the show row and then creates its actor. When the actor cannot be created now the row stays
   * (the router creates the actor from the row on first use) and the caller hears NOT_READY.
   */
  async createShow(input: ShowInput): Promise<{ ok: true; show: Show } | Failure> {
    const inserted = await this.insertShow(input);
    if (!inserted.ok) return inserted;
    // Before the actor: the router's resolver builds a missing actor from the cached show info.
    await this.d.showChanged(inserted.spec.showId);
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

  /**
   * The row half of createShow; on the caller's transaction when given one (the demo seed writes many
   * in one). Locks, in this order, the movie (against an archive), the screen (against an overlapping
   * show scheduled meanwhile: the overlap check and the insert happen under it) and the theater
   * (against a city move), all with forUpdate.
   */
  insertShow(
    input: ShowInput,
    q?: Queryable,
  ): Promise<
    { ok: true; spec: { showId: string; layoutKey: string; forbidSingleSeatGaps: boolean } } | Failure
  > {
    return this.#atomically(q, async (tx) => {
      const movie = await tx.get<MovieRow>(
        `SELECT * FROM movies WHERE id = ? AND archived_at IS NULL${forUpdate(tx)}`,
        [input.movieId],
      );
      if (!movie) return failure('MOVIE_NOT_FOUND', `no movie ${input.movieId}`);
      const screen = await tx.get<ScreenRow>(`SELECT * FROM screens WHERE id = ?${forUpdate(tx)}`, [
        input.screenId,
      ]);
      if (!screen) return failure('SCREEN_NOT_FOUND', `no screen ${input.screenId}`);
      const timing = await this.#timing(tx, input.startTime, movie.duration_min, screen.id);
      if (!timing.ok) return timing;
      const pricing = checkPrices(input.prices, JSON.parse(screen.categories) as string[]);
      if (pricing) return pricing;
      const theater = await tx.get<{ city: string }>(
        `SELECT city FROM theaters WHERE id = ?${forUpdate(tx)}`,
        [screen.theater_id],
      );
      if (!theater) throw new Error(`screen ${screen.id} names a missing theater`);
      const showId = newId('shw');
      const isGapFree = input.forbidSingleSeatGaps ?? false;
      const now = this.#nowIso();
      await tx.run(
        `INSERT INTO shows (id, movie_id, screen_id, theater_id, city, start_time, end_time, format, language, prices,
           currency, forbid_single_seat_gaps, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?)`,
        [
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
        ],
      );
      return {
        ok: true as const,
        spec: { showId, layoutKey: screen.layout, forbidSingleSeatGaps: isGapFree },
      };
    });
  }

  /**
   * A show starts in the future and does not overlap another scheduled show on its screen. Callers
   * hold the screen's row lock, so no overlapping show can be written between this check and their write.
   */
  async #timing(
    tx: Queryable,
    startTime: string,
    durationMin: number,
    screenId: string,
    showId?: string,
  ): Promise<{ ok: true; start: string; end: string } | Failure> {
    const startMs = Date.parse(startTime);
    if (!Number.isFinite(startMs))
      return failure('VALIDATION_FAILED', 'startTime is not a time', { fields: { startTime: 'invalid' } });
    if (startMs <= this.d.now()) return failure('RULE_VIOLATION', 'a show must start in the future');
    const start = new Date(startMs).toISOString();
    const end = new Date(startMs + durationMin * 60_000).toISOString();
    const clash = await tx.get<{ id: string; start_time: string; end_time: string }>(
      `SELECT id, start_time, end_time FROM shows WHERE screen_id = ? AND status = 'scheduled'
         AND start_time < ? AND end_time > ? AND id != ? LIMIT 1`,
      [screenId, end, start, showId ?? ''],
    );
    if (clash)
      return failure('CONFLICT', `the screen is busy from ${clash.start_time} to ${clash.end_time}`, {
        showId: clash.id,
      });
    return { ok: true, start, end };
  }

  /**
   * Prices and start time of a scheduled show; a move keeps its duration and must not overlap. The
   * screen row is locked (forUpdate) before the show is re-read, as when a show is scheduled.
   */
  async updateShow(
    id: string,
    patch: { prices?: Record<string, number>; startTime?: string },
  ): Promise<{ ok: true; show: Show } | Failure> {
    const updated = await this.#store.transaction(async (tx): Promise<{ ok: true } | Failure> => {
      const found = await tx.get<{ screen_id: string }>('SELECT screen_id FROM shows WHERE id = ?', [id]);
      if (!found) return failure('SHOW_NOT_FOUND', `no show ${id}`);
      const screen = await tx.get<ScreenRow>(`SELECT * FROM screens WHERE id = ?${forUpdate(tx)}`, [
        found.screen_id,
      ]);
      const row = await tx.get<ShowRow>(`SELECT * FROM shows WHERE id = ?${forUpdate(tx)}`, [id]);
      if (!screen || !row) throw new Error(`show ${id} or its screen vanished`);
      if (row.status !== 'scheduled') return failure('INVALID_STATE', 'a cancelled show cannot be changed');
      if (patch.prices) {
        const pricing = checkPrices(patch.prices, JSON.parse(screen.categories) as string[]);
        if (pricing) return pricing;
      }
      let start = row.start_time;
      let end = row.end_time;
      if (patch.startTime !== undefined) {
        const durationMin = (Date.parse(row.end_time) - Date.parse(row.start_time)) / 60_000;
        const timing = await this.#timing(tx, patch.startTime, durationMin, row.screen_id, id);
        if (!timing.ok) return timing;
        ({ start, end } = timing);
      }
      await tx.run('UPDATE shows SET prices = ?, start_time = ?, end_time = ?, updated_at = ? WHERE id = ?', [
        JSON.stringify(patch.prices ?? JSON.parse(row.prices)),
        start,
        end,
        this.#nowIso(),
        id,
      ]);
      return { ok: true };
    });
    if (!updated.ok) return updated;
    await this.d.showChanged(id);
    return this.show(id);
  }

  /**
   * Takes a show off sale for good. Idempotent. Refunding its bookings is the booking saga's job, so a
   * show that has already been played cannot be cancelled: that would refund every ticket, the
   * checked-in ones included (a show cut short is running, not played, and can be). The update is
   * conditional on the status and end time it was decided on, so a concurrent move or cancel cannot
   * slip between the check and the write.
   */
  async cancelShow(id: string): Promise<{ ok: true; show: Show } | Failure> {
    const row = await this.#store.get<ShowRow>('SELECT * FROM shows WHERE id = ?', [id]);
    if (!row) return failure('SHOW_NOT_FOUND', `no show ${id}`);
    const nowIso = this.#nowIso();
    if (row.status === 'scheduled' && Date.parse(row.end_time) <= this.d.now())
      return failure('INVALID_STATE', 'this show has already been played; it cannot be cancelled');
    await this.#store.run(
      "UPDATE shows SET status = 'cancelled', updated_at = ? WHERE id = ? AND status = 'scheduled' AND end_time > ?",
      [nowIso, id, nowIso],
    );
    await this.d.showChanged(id);
    return this.show(id);
  }

  /** Takes seats off sale (block) or puts them back (unblock), through the show's actor. */
  async blockSeats(
    id: string,
    seats: string[],
    isBlock: boolean,
  ): Promise<{ ok: true; seats: string[] } | Failure> {
    if (!(await this.#store.get('SELECT id FROM shows WHERE id = ?', [id])))
      return failure('SHOW_NOT_FOUND', `no show ${id}`);
    const reply = await this.d.actors.send(id, {
      type: isBlock ? 'block' : 'unblock',
      seats,
      nowMs: this.d.now(),
    });
    if (!reply.ok) return refusal(reply);
    return { ok: true, seats: 'seats' in reply ? reply.seats : seats };
  }
}

async function hasConfirmedBooking(q: Queryable, userId: string, movieId: string): Promise<boolean> {
  const row = await q.get(
    `SELECT 1 AS found FROM bookings b JOIN shows s ON s.id = b.show_id
     WHERE b.user_id = ? AND s.movie_id = ? AND b.status = 'confirmed' LIMIT 1`,
    [userId, movieId],
  );
  return row !== undefined;
}

async function setGenres(q: Queryable, movieId: string, genres: string[]): Promise<void> {
  await q.run('DELETE FROM movie_genres WHERE movie_id = ?', [movieId]);
  for (const genre of genres)
    await q.run('INSERT INTO movie_genres (movie_id, genre) VALUES (?, ?)', [movieId, genre]);
}

function screenOf(row: ScreenRow): Screen {
  return {
    ...toScreenSummary(row),
    theaterId: row.theater_id,
    layout: JSON.parse(row.layout) as SeatLayout,
  };
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
