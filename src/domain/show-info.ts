/**
 * @module show-info
 * What the hot paths need to know about a show from the app database (start time, status, prices),
 * kept in memory so holds, seat maps and the shard router's resolver read it synchronously. Every show
 * is loaded at start (`start`); the catalog re-reads one after changing it (`refresh`), so on one node
 * memory follows every write. An entry older than a short TTL is re-read in the background on its next
 * read (bounding how stale a change made elsewhere can be, once several nodes share PostgreSQL), and a
 * miss starts a background load too; `load` is the awaitable read for callers that can wait.
 */
import type { CompiledLayout } from '../actors/seat-layout.js';
import { layoutResolver } from '../actors/show-codec.js';
import type { Queryable } from '../persistence/store.js';

export interface ShowInfo {
  id: string;
  movieId: string;
  movieTitle: string;
  theaterId: string;
  theaterName: string;
  /** The theater's IANA zone: the texts a booking sends give the show's time in it. */
  timeZone: string;
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
/** Ids found missing, remembered apart so a flood of unknown ids never evicts a real show. */
export const MAX_REMEMBERED_MISSING_SHOWS = 10_000;
/** Background re-reads in flight at once; a read past it is skipped (the next `get` asks again). */
export const MAX_SHOW_INFO_LOADS_IN_FLIGHT = 64;

interface Row {
  id: string;
  movie_id: string;
  title: string;
  theater_id: string;
  theater_name: string;
  time_zone: string;
  city: string;
  screen_name: string;
  start_time: string;
  status: 'scheduled' | 'cancelled';
  prices: string;
  currency: string;
  layout: string;
  forbid_single_seat_gaps: number;
}

const SELECT = `
  SELECT s.id, s.movie_id, m.title, s.theater_id, t.name AS theater_name, t.time_zone, s.city, sc.name AS screen_name,
         s.start_time, s.status, s.prices, s.currency, sc.layout, s.forbid_single_seat_gaps
  FROM shows s JOIN movies m ON m.id = s.movie_id JOIN theaters t ON t.id = s.theater_id
  JOIN screens sc ON sc.id = s.screen_id`;

interface Entry {
  info: ShowInfo;
  fetchedAtMs: number;
  /** The read that produced it: an older read finishing later (another connection) must not win. */
  readSeq: number;
}

export class ShowInfoCache {
  readonly #cache = new Map<string, Entry>();
  /** Id → when it was found missing. */
  readonly #missing = new Map<string, number>();
  /** Background reads in flight, by show: a caller that must wait for one joins it. */
  readonly #loading = new Map<string, Promise<ShowInfo | undefined>>();
  readonly #layouts = layoutResolver();
  #readSeq = 0;

  constructor(
    private readonly store: Queryable,
    private readonly now: () => number,
  ) {}

  /** Loads every show (the newest MAX_CACHED_SHOW_INFO) before the service answers. */
  async start(): Promise<void> {
    const readSeq = ++this.#readSeq;
    const rows = await this.store.all<Row>(`${SELECT} ORDER BY s.start_time DESC, s.id LIMIT ?`, [
      MAX_CACHED_SHOW_INFO,
    ]);
    const fetchedAtMs = this.now();
    for (const row of rows.reverse()) this.#put(row.id, this.#infoOf(row), fetchedAtMs, readSeq);
  }

  /** From memory; a stale entry or a miss is (re)read in the background for the next caller. */
  get(showId: string): ShowInfo | undefined {
    const hit = this.#cache.get(showId);
    const fetchedAtMs = hit?.fetchedAtMs ?? this.#missing.get(showId);
    if (fetchedAtMs === undefined || this.now() - fetchedAtMs >= SHOW_INFO_TTL_MS)
      this.#loadInBackground(showId);
    return hit?.info;
  }

  /**
   * From memory like `get` (a stale entry is answered and refreshed behind); a show not in memory is
   * read now, joining the read `get` started rather than making a second (a show another node just
   * created). Misses are remembered for SHOW_INFO_TTL_MS like `load`'s.
   */
  async lookup(showId: string): Promise<ShowInfo | undefined> {
    return this.get(showId) ?? (await (this.#loading.get(showId) ?? this.load(showId)));
  }

  /** From memory when fresh, else read now. */
  async load(showId: string): Promise<ShowInfo | undefined> {
    const hit = this.#cache.get(showId);
    if (hit && this.now() - hit.fetchedAtMs < SHOW_INFO_TTL_MS) return hit.info;
    const missingAtMs = this.#missing.get(showId);
    if (!hit && missingAtMs !== undefined && this.now() - missingAtMs < SHOW_INFO_TTL_MS) return undefined;
    return this.refresh(showId);
  }

  /** Reads the show now (after a change committed) and keeps the answer. */
  async refresh(showId: string): Promise<ShowInfo | undefined> {
    const readSeq = ++this.#readSeq;
    const row = await this.store.get<Row>(`${SELECT} WHERE s.id = ?`, [showId]);
    if (row) this.#put(showId, this.#infoOf(row), this.now(), readSeq);
    else if (!this.#cache.has(showId)) {
      // Show rows are never deleted: a miss only stands for ids never known here.
      if (this.#missing.size >= MAX_REMEMBERED_MISSING_SHOWS) this.#missing.clear();
      this.#missing.set(showId, this.now());
    }
    return this.#cache.get(showId)?.info;
  }

  #loadInBackground(showId: string): void {
    if (this.#loading.has(showId) || this.#loading.size >= MAX_SHOW_INFO_LOADS_IN_FLIGHT) return;
    // A failed read keeps the old entry; the next get after it tries again.
    const loading = this.refresh(showId)
      .catch(() => undefined)
      .finally(() => this.#loading.delete(showId));
    this.#loading.set(showId, loading);
  }

  #put(showId: string, info: ShowInfo, fetchedAtMs: number, readSeq: number): void {
    this.#missing.delete(showId);
    const current = this.#cache.get(showId);
    if (current && current.readSeq > readSeq) return;
    if (!current && this.#cache.size >= MAX_CACHED_SHOW_INFO) {
      // Map order is insertion order: the first key is the entry written longest ago.
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(showId, { info, fetchedAtMs, readSeq });
  }

  #infoOf(row: Row): ShowInfo {
    return {
      id: row.id,
      movieId: row.movie_id,
      movieTitle: row.title,
      theaterId: row.theater_id,
      theaterName: row.theater_name,
      timeZone: row.time_zone,
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
  }
}
