/**
 * @module jobs/relay
 * The outbox relay: reads pending outbox rows in id order and hands each to a `JobQueue`, marking a row
 * relayed only after the queue accepted it. When the queue fails (Redis down) it stops at that row, backs
 * off and tries the same row again, so no row is lost or skipped. Relaying twice is harmless: queues key
 * jobs by notification id and delivery skips rows that are no longer queued.
 */
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Queryable, Store } from '../persistence/store.js';
import { parseOutboxRow } from './outbox.js';

/** Where relayed notifications go: BullMQ, or timers in this process. */
export interface JobQueue {
  /** Idempotent per notification id. Rejects when the queue cannot take the job now. */
  schedule(notificationId: string, sendAtMs: number): Promise<void>;
  /**
   * For a row still queued well after it was due (the sweep): like `schedule`, and also revives a job
   * the queue gave up on without the row being failed.
   */
  reschedule(notificationId: string, sendAtMs: number): Promise<void>;
  /** Removes a job that has not started; a job already running finds its row cancelled and does nothing. */
  unschedule(notificationId: string): Promise<void>;
}

export const RELAY_BATCH_SIZE = 100;
export const RELAY_POLL_MS = 250;
/** A queue call that takes longer than this counts as failed (the row is tried again later). */
export const RELAY_CALL_TIMEOUT_MS = 5_000;
export const RELAY_MAX_BACKOFF_MS = 30_000;
/** Relayed rows are kept a while for inspection, then pruned in bounded slices. */
export const RELAYED_RETENTION_MS = 7 * 24 * 3600_000;
const PRUNE_SLICE = 1_000;
const PRUNE_EVERY_TICKS = 1_000;
/** Rows marked relayed by one statement (a power of two): well under SQLite's 32,766 bound parameters. */
const MARK_SLICE = 512;
/** relayNow() drains at most this many batches, so it always returns. */
const MAX_BATCHES_PER_DRAIN = 100;

export interface OutboxRelayOptions {
  store: Store;
  queue: JobQueue;
  logger: Logger;
  metrics?: Pick<Metrics, 'outboxLag'>;
  batchSize?: number;
  pollMs?: number;
  callTimeoutMs?: number;
  /** First backoff after a queue failure; doubles per consecutive failure up to RELAY_MAX_BACKOFF_MS. */
  backoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
}

interface BatchResult {
  /** The batch was full: more rows may be waiting. */
  isFull: boolean;
  /** Rows this batch marked relayed. */
  marked: number;
}
const NOTHING_RELAYED: BatchResult = { isFull: false, marked: 0 };

interface OutboxRow {
  id: number;
  kind: string;
  payload: string;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * @example
 * const relay = new OutboxRelay({ store, queue, logger, metrics });
 * relay.start();
 * await relay.relayNow(); // after a transaction that wrote outbox rows, to skip the poll delay
 * await relay.stop();
 */
export class OutboxRelay {
  readonly #o: Required<Omit<OutboxRelayOptions, 'metrics'>> & Pick<OutboxRelayOptions, 'metrics'>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<BatchResult> | undefined;
  #isStopped = true;
  #consecutiveFailures = 0;
  #ticks = 0;

  constructor(options: OutboxRelayOptions) {
    this.#o = {
      batchSize: RELAY_BATCH_SIZE,
      pollMs: RELAY_POLL_MS,
      callTimeoutMs: RELAY_CALL_TIMEOUT_MS,
      backoffMs: 500,
      maxBackoffMs: RELAY_MAX_BACKOFF_MS,
      now: Date.now,
      ...options,
    };
    if (this.#o.batchSize < 1 || this.#o.batchSize > 10_000)
      throw new Error('relay batchSize must be 1..10000');
  }

  start(): void {
    if (!this.#isStopped) return;
    this.#isStopped = false;
    this.#arm(0);
  }

  async stop(): Promise<void> {
    this.#isStopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /**
   * Relays everything pending now (bounded); resolves early if the queue fails (the loop retries).
   * Resolves with how many rows this call marked relayed (rows another relay marked first not counted).
   */
  async relayNow(): Promise<number> {
    const wasBackingOff = this.#consecutiveFailures > 0;
    let marked = 0;
    for (let i = 0; i < MAX_BATCHES_PER_DRAIN; i++) {
      const batch = await this.#runOnce();
      marked += batch.marked;
      if (!batch.isFull) break;
    }
    // The loop may be asleep for a long backoff (up to RELAY_MAX_BACKOFF_MS); the queue works again, so
    // rows written from now on go out at the normal poll instead of after that sleep.
    if (wasBackingOff && this.#consecutiveFailures === 0) this.#arm(this.#o.pollMs);
    return marked;
  }

  /** Age in seconds of the oldest row not yet relayed; 0 when none is pending. */
  async lagSeconds(): Promise<number> {
    const oldest = await this.#o.store.get<{ created_at: string }>(
      'SELECT created_at FROM outbox WHERE relayed_at IS NULL ORDER BY id LIMIT 1',
    );
    return oldest ? Math.max(0, (this.#o.now() - Date.parse(oldest.created_at)) / 1000) : 0;
  }

  #arm(delayMs: number): void {
    if (this.#isStopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      void this.#runOnce().then(({ isFull }) => {
        const delay = this.#consecutiveFailures > 0 ? this.#backoffMs() : isFull ? 0 : this.#o.pollMs;
        this.#arm(delay);
      });
    }, delayMs);
  }

  #backoffMs(): number {
    const exp = Math.min(this.#consecutiveFailures - 1, 16);
    return Math.min(this.#o.maxBackoffMs, this.#o.backoffMs * 2 ** exp);
  }

  /** One batch, never two at once. `isFull` when the batch was full (more may be waiting). */
  #runOnce(): Promise<BatchResult> {
    const previous = this.#running ?? Promise.resolve(NOTHING_RELAYED);
    const next = previous
      .then(() => this.#relayBatch())
      .catch((err: unknown) => {
        this.#consecutiveFailures++;
        this.#o.logger.error({ err }, 'outbox relay batch failed');
        return NOTHING_RELAYED;
      });
    this.#running = next;
    return next;
  }

  async #relayBatch(): Promise<BatchResult> {
    const { store, queue, logger } = this.#o;
    const rows = await store.all<OutboxRow>(
      'SELECT id, kind, payload FROM outbox WHERE relayed_at IS NULL ORDER BY id LIMIT ?',
      [this.#o.batchSize],
    );
    // Marked in one commit per batch (one disk flush, not one per row), by one statement per MARK_SLICE
    // rows (one round trip on PostgreSQL, not one per row); rows relayed before a crash and not yet
    // marked are relayed again, which the queues take as a no-op (jobs are keyed by id). Two relays on
    // one database (two nodes) may both hand a row to the queue (a no-op again), but the conditional
    // UPDATE (`relayed_at IS NULL`, counted by `changes`) lets exactly one of them mark each row.
    const relayed: number[] = [];
    const markAll = async (): Promise<number> => {
      if (relayed.length === 0) return 0;
      const at = new Date(this.#o.now()).toISOString();
      const mark = async (q: Queryable, ids: number[]): Promise<number> => {
        // The list is padded (with its last id) to a power of two: a handful of statement texts, each
        // prepared once per connection, rather than one per batch length.
        const padded = [...ids];
        while (padded.length & (padded.length - 1)) padded.push(ids[ids.length - 1]!);
        const marked = await q.run(
          `UPDATE outbox SET relayed_at = ? WHERE relayed_at IS NULL AND id IN (${padded.map(() => '?').join(', ')})`,
          [at, ...padded],
        );
        return marked.changes;
      };
      if (relayed.length <= MARK_SLICE) return mark(store, relayed);
      return store.transaction(async (tx) => {
        let marked = 0;
        for (let i = 0; i < relayed.length; i += MARK_SLICE)
          marked += await mark(tx, relayed.slice(i, i + MARK_SLICE));
        return marked;
      });
    };
    for (const row of rows) {
      const message = parseOutboxRow(row.kind, row.payload);
      if (message === null) {
        // A row no code understands would block every later notification; it is a bug, logged loudly.
        logger.error({ outboxId: row.id, kind: row.kind }, 'unreadable outbox row skipped');
      } else {
        try {
          const call =
            message.kind === 'notify'
              ? queue.schedule(message.notificationId, message.sendAtMs)
              : queue.unschedule(message.notificationId);
          await withTimeout(call, this.#o.callTimeoutMs, `queue ${message.kind}`);
        } catch (err) {
          this.#consecutiveFailures++;
          const log = { outboxId: row.id, failures: this.#consecutiveFailures, err: (err as Error).message };
          if (this.#consecutiveFailures === 1)
            logger.warn(log, 'outbox relay: queue unavailable, backing off');
          else logger.debug(log, 'outbox relay: queue still unavailable');
          const marked = await markAll();
          await this.#updateLag(false);
          return { isFull: false, marked };
        }
      }
      relayed.push(row.id);
    }
    const marked = await markAll();
    if (this.#consecutiveFailures > 0)
      logger.info({ failures: this.#consecutiveFailures }, 'outbox relay recovered');
    this.#consecutiveFailures = 0;
    const isFull = rows.length === this.#o.batchSize;
    await this.#updateLag(!isFull);
    if (++this.#ticks % PRUNE_EVERY_TICKS === 0) await this.#prune();
    return { isFull, marked };
  }

  /**
   * `isDrained`: the batch read every pending row and all of them are marked, so nothing was waiting
   * when it read: the lag is 0 without a statement (each poll of an idle outbox would cost one more).
   */
  async #updateLag(isDrained: boolean): Promise<void> {
    const { metrics } = this.#o;
    if (metrics) metrics.outboxLag.set(isDrained ? 0 : await this.lagSeconds());
  }

  async #prune(): Promise<void> {
    const before = new Date(this.#o.now() - RELAYED_RETENTION_MS).toISOString();
    await this.#o.store.run(
      `DELETE FROM outbox WHERE id IN (
         SELECT id FROM outbox WHERE relayed_at IS NOT NULL AND relayed_at < ? LIMIT ${PRUNE_SLICE})`,
      [before],
    );
  }
}
