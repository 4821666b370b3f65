/**
 * @module bench/load/feed
 * The live seat feed under load: N WebSocket subscribers on one show (in this process) while the
 * hold-release journeys change its seats. Delivery lag is the time from a hold or release being sent
 * to its delta reaching a subscriber. Deltas are matched to requests by seat, status and ordinal (the
 * k-th "A7 held" delta is the k-th successful hold of A7): one journey owns a seat at a time, so each
 * seat's changes come in the order they were answered. Changes the kit did not make stay unmatched.
 */
import { WebSocket } from 'ws';
import { mapLimit } from '../http/client.js';
import { type Stamps, wallNow } from '../http/feed-protocol.js';
import { Latencies } from '../http/latency.js';
import { type LatencySummary, summarise } from './recorder.js';

/** Subscribers connecting at once. */
const CONNECT_CONCURRENCY = 50;
/** Bound on one subscriber's connect and first message. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Receipts kept for matching; past it deliveries are counted but not timed. */
const MAX_RECEIPTS = 2_000_000;

interface Change {
  seat: string;
  status: string;
  ordinal: number;
  receipts: number[];
}

export interface FeedFigures {
  subscribers: number;
  connected: number;
  deliveries: number;
  unmatched: number;
  drops: number;
  lagMs: LatencySummary;
}

export class FeedWatch {
  readonly #sockets: WebSocket[] = [];
  readonly #changes = new Map<string, Change>();
  readonly #ordinals = new Map<string, number>();
  readonly stamps: Stamps = {};
  #receipts = 0;
  #isClosing = false;
  connected = 0;
  deliveries = 0;
  drops = 0;

  constructor(
    readonly url: string,
    readonly subscribers: number,
  ) {}

  /** The hold or release of `seat` sent at `sentAt` succeeded. */
  stamp(seat: string, status: 'held' | 'available', sentAt: number): void {
    this.stamps[seat] ??= { held: [], available: [] };
    this.stamps[seat][status].push(sentAt);
  }

  async connect(): Promise<void> {
    const results = await mapLimit(
      Array.from({ length: this.subscribers }, (_, i) => i),
      CONNECT_CONCURRENCY,
      () => this.#open(),
    );
    this.connected = results.filter(Boolean).length;
  }

  #open(): Promise<boolean> {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
      let isOpen = false;
      const timer = setTimeout(() => {
        if (!isOpen) ws.terminate();
      }, CONNECT_TIMEOUT_MS);
      ws.on('message', (data) => {
        if (!isOpen) {
          isOpen = true;
          clearTimeout(timer);
          resolve(true);
        }
        this.#onMessage(String(data));
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        clearTimeout(timer);
        if (isOpen && !this.#isClosing) this.drops++;
        if (!isOpen) resolve(false);
      });
      this.#sockets.push(ws);
    });
  }

  #onMessage(text: string): void {
    if (!text.startsWith('{"type":"delta"')) return;
    const now = wallNow();
    const delta = JSON.parse(text) as { version: number; changes: { id: string; status: string }[] };
    for (const [i, change] of delta.changes.entries()) {
      this.deliveries++;
      const key = `${delta.version}/${i}`;
      let record = this.#changes.get(key);
      if (!record) {
        const seatStatus = `${change.id}|${change.status}`;
        const ordinal = this.#ordinals.get(seatStatus) ?? 0;
        this.#ordinals.set(seatStatus, ordinal + 1);
        record = { seat: change.id, status: change.status, ordinal, receipts: [] };
        this.#changes.set(key, record);
      }
      if (this.#receipts++ < MAX_RECEIPTS) record.receipts.push(now);
    }
  }

  figures(): FeedFigures {
    const lag = new Latencies();
    let unmatched = 0;
    for (const change of this.#changes.values()) {
      const sent = this.stamps[change.seat]?.[change.status as 'held' | 'available']?.[change.ordinal];
      if (sent === undefined) unmatched += change.receipts.length;
      else for (const at of change.receipts) lag.record(Math.max(0, at - sent));
    }
    return {
      subscribers: this.subscribers,
      connected: this.connected,
      deliveries: this.deliveries,
      unmatched,
      drops: this.drops,
      lagMs: summarise(lag),
    };
  }

  close(): void {
    this.#isClosing = true;
    for (const ws of this.#sockets) ws.terminate();
  }
}

export function feedUrl(baseUrl: string, showId: string): string {
  const url = new URL(`/ws/shows/${encodeURIComponent(showId)}`, baseUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}
