/**
 * @module show-info
 * What the hot paths need to know about a show from the app database (start time, status, prices),
 * cached briefly in memory so holds and seat maps do not query SQLite on every request. A short TTL
 * rather than invalidation hooks: admin changes are rare and seconds of staleness only affect prices
 * shown on a seat map, never seat state (which the actor owns).
 */
import type { CompiledLayout } from '../actors/seat-layout.js';
import { layoutResolver } from '../actors/show-codec.js';
import type { AppDb } from '../persistence/app-db.js';

export interface ShowInfo {
  id: string;
  movieId: string;
  movieTitle: string;
  theaterId: string;
  theaterName: string;
  city: string;
  screenName: string;
  startTime: string;
  startMs: number;
  status: 'scheduled' | 'cancelled';
  prices: Record<string, number>;
  currency: string;
  layout: CompiledLayout;
  /** The screen's canonical layout JSON (`layoutKeyOf`), which the show's actor was created from. */
  layoutKey: string;
  forbidSingleSeatGaps: boolean;
}

export const SHOW_INFO_TTL_MS = 5_000;
export const MAX_CACHED_SHOW_INFO = 50_000;

interface Row {
  id: string;
  movie_id: string;
  title: string;
  theater_id: string;
  theater_name: string;
  city: string;
  screen_name: string;
  start_time: string;
  status: 'scheduled' | 'cancelled';
  prices: string;
  currency: string;
  layout: string;
  forbid_single_seat_gaps: number;
}

export class ShowInfoCache {
  readonly #cache = new Map<string, { info: ShowInfo | undefined; fetchedAtMs: number }>();
  readonly #select;
  readonly #layouts = layoutResolver();

  constructor(
    db: AppDb,
    private readonly now: () => number,
  ) {
    this.#select = db.prepare(`
      SELECT s.id, s.movie_id, m.title, s.theater_id, t.name AS theater_name, s.city, sc.name AS screen_name,
             s.start_time, s.status, s.prices, s.currency, sc.layout, s.forbid_single_seat_gaps
      FROM shows s JOIN movies m ON m.id = s.movie_id JOIN theaters t ON t.id = s.theater_id
      JOIN screens sc ON sc.id = s.screen_id WHERE s.id = ?`);
  }

  get(showId: string): ShowInfo | undefined {
    const now = this.now();
    const hit = this.#cache.get(showId);
    if (hit && now - hit.fetchedAtMs < SHOW_INFO_TTL_MS) return hit.info;
    const row = this.#select.get(showId) as Row | undefined;
    const info: ShowInfo | undefined = row && {
      id: row.id,
      movieId: row.movie_id,
      movieTitle: row.title,
      theaterId: row.theater_id,
      theaterName: row.theater_name,
      city: row.city,
      screenName: row.screen_name,
      startTime: row.start_time,
      startMs: Date.parse(row.start_time),
      status: row.status,
      prices: JSON.parse(row.prices) as Record<string, number>,
      currency: row.currency,
      layout: this.#layouts(row.layout),
      layoutKey: row.layout,
      forbidSingleSeatGaps: row.forbid_single_seat_gaps === 1,
    };
    if (this.#cache.size >= MAX_CACHED_SHOW_INFO) this.#cache.clear();
    this.#cache.set(showId, { info, fetchedAtMs: now });
    return info;
  }

  forget(showId: string): void {
    this.#cache.delete(showId);
  }
}
