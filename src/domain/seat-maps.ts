/**
 * @module seat-maps
 * The main thread's mirror of the seat maps people are looking at. A show's seats are fetched from its
 * actor once, then kept current by the actor's events (versions rise by one; a gap means refetch). The
 * JSON body of a seat map is serialized once per version, and each delta once for every feed subscriber.
 * The actor stays the only writer of seat state: this is a read cache fed by its events.
 */

import type { CompiledLayout } from '../actors/seat-layout.js';
import type { ShardRouter, ShowEvent } from '../actors/shard-router.js';
import { SEAT_STATUSES } from '../actors/show-actor.js';
import { layoutResolver } from '../actors/show-codec.js';
import type { ShowInfoCache } from './show-info.js';

/** Shows mirrored at once; the least recently used is dropped past this. */
export const MAX_MIRRORED_SHOWS = 20_000;
/** Deltas kept per show so a reconnecting feed client can resume without a full snapshot. */
export const RECENT_DELTAS_PER_SHOW = 256;

/** A delta as kept for resuming clients. */
export interface KeptDelta {
  version: number;
  /** `{"type":"delta",...}` serialized once for every subscriber. */
  message: string;
}

/** A delta as handed to live subscribers. */
export interface Delta extends KeptDelta {
  /**
   * The message UTF-8 encoded once (sent as a string, ws would encode it again for each subscriber).
   * Not kept with the resume window, which would double its memory.
   */
  bytes: Buffer;
}

export type FeedListener = (delta: Delta) => void;

interface Mirror {
  showId: string;
  isLoaded: boolean;
  loading?: Promise<Mirror | undefined>;
  version: number;
  layout?: CompiledLayout;
  seats: Uint8Array;
  /** Events that arrived while the first fetch was in flight. */
  pending: ShowEvent[];
  recent: KeptDelta[];
  listeners: Set<FeedListener>;
  /** Per seat, the constant part of its JSON (everything but the status). */
  seatPrefixes?: string[];
  bodyJson?: string;
  /** The same body in UTF-8: sent as is, so no request pays for encoding 30 KB of text. */
  bodyBytes?: Uint8Array<ArrayBuffer>;
  bodyVersion: number;
  /** The feed's snapshot message, rendered once per version: subscribers arrive in crowds at on-sale. */
  snapshotJson?: string;
  snapshotVersion: number;
}

const UTF8 = new TextEncoder();

export interface SeatMapView {
  version: number;
  json: string;
  bytes: Uint8Array<ArrayBuffer>;
}

export class SeatMaps {
  readonly #mirrors = new Map<string, Mirror>();
  readonly #resolve = layoutResolver();

  constructor(
    private readonly router: ShardRouter,
    private readonly shows: ShowInfoCache,
  ) {
    router.onEvents((events) => {
      for (const event of events) this.#onEvent(event);
    });
  }

  /** The seat map body per API.md, serialized once per version; undefined when the show is unknown. */
  async seatMapJson(showId: string): Promise<SeatMapView | undefined> {
    const mirror = await this.#load(showId);
    return mirror?.layout ? this.#view(mirror) : undefined;
  }

  /**
   * The same, without a promise, when the show is already mirrored (the usual case on the hot path);
   * undefined otherwise, and the caller falls back to `seatMapJson`.
   */
  mirroredSeatMapJson(showId: string): SeatMapView | undefined {
    const mirror = this.#mirrors.get(showId);
    if (!mirror?.isLoaded || !mirror.layout) return undefined;
    this.#touch(mirror);
    return this.#view(mirror);
  }

  #view(mirror: Mirror): SeatMapView {
    if (
      mirror.bodyJson === undefined ||
      mirror.bodyBytes === undefined ||
      mirror.bodyVersion !== mirror.version
    ) {
      mirror.bodyJson = this.#render(mirror);
      mirror.bodyBytes = UTF8.encode(mirror.bodyJson);
      mirror.bodyVersion = mirror.version;
    }
    return { version: mirror.version, json: mirror.bodyJson, bytes: mirror.bodyBytes };
  }

  /** Moves a mirror to the young end of the LRU order (a Map iterates in insertion order). */
  #touch(mirror: Mirror): void {
    this.#mirrors.delete(mirror.showId);
    this.#mirrors.set(mirror.showId, mirror);
  }

  /**
   * Subscribes to a show's deltas and returns the snapshot message to send first. With `fromVersion`,
   * returns the missed deltas instead when they are all still kept. Synchronous after the load, so no
   * delta can fall between the snapshot and the subscription.
   */
  async subscribe(
    showId: string,
    listener: FeedListener,
    fromVersion?: number,
  ): Promise<{ first: string[]; unsubscribe: () => void } | undefined> {
    const mirror = await this.#load(showId);
    if (!mirror?.layout) return undefined;
    mirror.listeners.add(listener);
    const unsubscribe = () => mirror.listeners.delete(listener);
    if (fromVersion !== undefined) {
      const missed = this.#missedSince(mirror, fromVersion);
      if (missed) return { first: missed, unsubscribe };
    }
    return { first: [this.#snapshotMessage(mirror)], unsubscribe };
  }

  /** Deltas after `version`, or undefined when some are no longer kept (the caller sends a snapshot). */
  resume(showId: string, version: number): string[] | undefined {
    const mirror = this.#mirrors.get(showId);
    return mirror ? this.#missedSince(mirror, version) : undefined;
  }

  /** Drops a show's rendered seat text (prices, categories), after an admin changed the show. */
  forgetRendering(showId: string): void {
    const mirror = this.#mirrors.get(showId);
    if (!mirror) return;
    mirror.seatPrefixes = undefined;
    mirror.bodyJson = undefined;
  }

  snapshotMessage(showId: string): string | undefined {
    const mirror = this.#mirrors.get(showId);
    return mirror?.isLoaded ? this.#snapshotMessage(mirror) : undefined;
  }

  #missedSince(mirror: Mirror, version: number): string[] | undefined {
    if (version === mirror.version) return [];
    if (version > mirror.version || version < 0) return undefined;
    const first = mirror.recent[0];
    if (!first || first.version > version + 1) return undefined;
    return mirror.recent.filter((d) => d.version > version).map((d) => d.message);
  }

  async #load(showId: string): Promise<Mirror | undefined> {
    const existing = this.#mirrors.get(showId);
    if (existing) {
      this.#touch(existing);
      return existing.isLoaded ? existing : existing.loading;
    }
    const mirror: Mirror = {
      showId,
      isLoaded: false,
      version: 0,
      seats: new Uint8Array(0),
      pending: [],
      recent: [],
      listeners: new Set(),
      bodyVersion: -1,
      snapshotVersion: -1,
    };
    this.#evictIfFull();
    this.#mirrors.set(showId, mirror);
    mirror.loading = this.#fetch(mirror);
    return mirror.loading;
  }

  async #fetch(mirror: Mirror): Promise<Mirror | undefined> {
    try {
      const map = await this.router.seatMap(mirror.showId);
      if (!map) {
        this.#mirrors.delete(mirror.showId);
        return undefined;
      }
      mirror.layout = this.#resolve(map.layoutKey);
      mirror.seats = map.seats;
      mirror.version = map.version;
      mirror.isLoaded = true;
      for (const event of mirror.pending) this.#onEvent(event);
      mirror.pending = [];
      return mirror;
    } catch (err) {
      this.#mirrors.delete(mirror.showId);
      throw err;
    } finally {
      mirror.loading = undefined;
    }
  }

  #onEvent(event: ShowEvent): void {
    const mirror = this.#mirrors.get(event.showId);
    if (!mirror) return;
    if (!mirror.isLoaded) {
      mirror.pending.push(event);
      return;
    }
    if (event.version <= mirror.version) return;
    // A gap: our copy can no longer be trusted. Drop it; subscribers are told to resync.
    if (event.version !== mirror.version + 1 || event.isGap) {
      this.#resync(mirror, event.version);
      return;
    }
    const layout = mirror.layout!;
    const changes: { id: string; status: string }[] = [];
    for (const [index, status] of event.changes) {
      mirror.seats[index] = status;
      changes.push({ id: layout.labels[index]!, status: SEAT_STATUSES[status]! });
    }
    mirror.version = event.version;
    const message = JSON.stringify({ type: 'delta', showId: event.showId, version: event.version, changes });
    mirror.recent.push({ version: event.version, message });
    if (mirror.recent.length > RECENT_DELTAS_PER_SHOW) mirror.recent.shift();
    if (mirror.listeners.size === 0) return;
    const delta: Delta = { version: event.version, message, bytes: Buffer.from(message) };
    for (const listener of mirror.listeners) listener(delta);
  }

  #resync(mirror: Mirror, version: number): void {
    this.#mirrors.delete(mirror.showId);
    const resync = JSON.stringify({ type: 'resync', showId: mirror.showId, version });
    const delta = { version, message: resync, bytes: Buffer.from(resync) };
    for (const listener of mirror.listeners) listener(delta);
  }

  /**
   * Events may have been missed for every show (a cluster node's relay lost its connection): every
   * copy is dropped and its subscribers told to resync.
   */
  resyncAll(): void {
    for (const mirror of [...this.#mirrors.values()])
      if (mirror.isLoaded) this.#resync(mirror, mirror.version);
  }

  #evictIfFull(): void {
    if (this.#mirrors.size < MAX_MIRRORED_SHOWS) return;
    for (const [showId, mirror] of this.#mirrors) {
      if (mirror.listeners.size > 0 || !mirror.isLoaded) continue;
      this.#mirrors.delete(showId);
      if (this.#mirrors.size < MAX_MIRRORED_SHOWS) return;
    }
  }

  #snapshotMessage(mirror: Mirror): string {
    if (mirror.snapshotJson !== undefined && mirror.snapshotVersion === mirror.version)
      return mirror.snapshotJson;
    const layout = mirror.layout!;
    const seats = layout.labels.map((id, i) => ({ id, status: SEAT_STATUSES[mirror.seats[i]!] }));
    mirror.snapshotJson = JSON.stringify({
      type: 'snapshot',
      showId: mirror.showId,
      version: mirror.version,
      seats,
    });
    mirror.snapshotVersion = mirror.version;
    return mirror.snapshotJson;
  }

  #render(mirror: Mirror): string {
    const layout = mirror.layout!;
    if (!mirror.seatPrefixes) {
      const info = this.shows.get(mirror.showId);
      mirror.seatPrefixes = layout.labels.map((id, i) => {
        const category = layout.categories[layout.categoryOf[i]!]!;
        const price = info?.prices[category] ?? null;
        const row = layout.rowLabels[layout.rowOf[i]!]!;
        return `{"id":${JSON.stringify(id)},"row":${JSON.stringify(row)},"number":${layout.numbers[i]},"column":${layout.column[i]},"category":${JSON.stringify(category)},"price":${price},"status":"`;
      });
    }
    const counts = [0, 0, 0, 0];
    const parts = new Array<string>(layout.seatCount);
    for (let i = 0; i < layout.seatCount; i++) {
      const s = mirror.seats[i]!;
      counts[s]!++;
      parts[i] = `${mirror.seatPrefixes[i]}${SEAT_STATUSES[s]}"}`;
    }
    const info = this.shows.get(mirror.showId);
    return `{"showId":${JSON.stringify(mirror.showId)},"version":${mirror.version},"currency":${JSON.stringify(info?.currency ?? null)},"seats":[${parts.join(',')}],"counts":{"available":${counts[0]},"held":${counts[1]},"booked":${counts[2]},"blocked":${counts[3]}},"layout":${layoutJson(layout)}}`;
  }
}

/**
 * The screen's geometry for drawing the map: rows from the screen backwards, and the width in columns.
 * A seat's `column` places it on that grid, so aisles and staggered rows show as empty columns.
 */
function layoutJson(layout: CompiledLayout): string {
  let columns = 0;
  for (const column of layout.column) columns = Math.max(columns, column + 1);
  return JSON.stringify({ rows: layout.rowLabels, columns, centreColumn: layout.centreColumn });
}
