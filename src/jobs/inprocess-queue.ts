/**
 * @module jobs/inprocess-queue
 * A `JobQueue` without Redis, the default when REDIS_URL is unset: timers in this process, the same retry
 * policy as BullMQ (bounded attempts, exponential backoff), the same handler. Only jobs due within a window
 * get a timer; later ones stay in the notifications table and the notifier's sweep schedules them as they
 * come due (and after a restart), so memory stays bounded however many reminders are booked.
 */
import type { Logger } from '../logger.js';
import { DeliveryError, type DeliveryHandler } from './deliver.js';
import type { JobQueue } from './relay.js';

/** Jobs due later than this are left to the sweep. Well under setTimeout's 24.8-day limit. */
export const IN_PROCESS_WINDOW_MS = 10 * 60_000;
/** At most this many jobs held in memory; beyond it new jobs wait in the table for the sweep. */
export const IN_PROCESS_MAX_JOBS = 10_000;
export const IN_PROCESS_CONCURRENCY = 4;

export interface RetryPolicy {
  /** Total tries, first included. */
  attempts: number;
  /** Delay before the second try; doubles for each later one (BullMQ's 'exponential'). */
  backoffMs: number;
}

export interface InProcessQueueOptions {
  handler: DeliveryHandler;
  logger: Logger;
  retry: RetryPolicy;
  windowMs?: number;
  maxJobs?: number;
  concurrency?: number;
  now?: () => number;
}

interface Entry {
  timer: NodeJS.Timeout | undefined;
  /** Tries made so far. */
  tries: number;
  isRunning: boolean;
}

/**
 * @example
 * const queue = new InProcessJobQueue({ handler: deliver, logger, retry: { attempts: 5, backoffMs: 1000 } });
 * await queue.schedule('ntf_…', Date.now() + 60_000);
 * await queue.close();
 */
export class InProcessJobQueue implements JobQueue {
  readonly #o: Required<InProcessQueueOptions>;
  readonly #entries = new Map<string, Entry>();
  /** Due jobs waiting for a free slot, oldest first; bounded by the map. */
  readonly #ready: string[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #active = 0;
  #isClosed = false;

  constructor(options: InProcessQueueOptions) {
    this.#o = {
      windowMs: IN_PROCESS_WINDOW_MS,
      maxJobs: IN_PROCESS_MAX_JOBS,
      concurrency: IN_PROCESS_CONCURRENCY,
      now: Date.now,
      ...options,
    };
    if (this.#o.retry.attempts < 1) throw new Error('retry.attempts must be at least 1');
  }

  get windowMs(): number {
    return this.#o.windowMs;
  }

  /** Jobs held in memory (timers, waiting and running). */
  get size(): number {
    return this.#entries.size;
  }

  async schedule(notificationId: string, sendAtMs: number): Promise<void> {
    if (this.#isClosed) throw new Error('in-process queue is closed');
    if (this.#entries.has(notificationId)) return;
    const delayMs = Math.max(0, sendAtMs - this.#o.now());
    // Left for the sweep: beyond the window, or over the memory bound. The row stays 'queued'.
    if (delayMs > this.#o.windowMs || this.#entries.size >= this.#o.maxJobs) return;
    const entry: Entry = { timer: undefined, tries: 0, isRunning: false };
    this.#entries.set(notificationId, entry);
    this.#wait(notificationId, entry, delayMs);
  }

  /** Timers never give up on their own: the same as `schedule`. */
  reschedule(notificationId: string, sendAtMs: number): Promise<void> {
    return this.schedule(notificationId, sendAtMs);
  }

  async unschedule(notificationId: string): Promise<void> {
    const entry = this.#entries.get(notificationId);
    if (!entry || entry.isRunning) return;
    clearTimeout(entry.timer);
    this.#entries.delete(notificationId);
    const waiting = this.#ready.indexOf(notificationId);
    if (waiting >= 0) this.#ready.splice(waiting, 1);
  }

  /** Drops every timer and waits (bounded by the handler's own timeouts) for running jobs to finish. */
  async close(): Promise<void> {
    this.#isClosed = true;
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
    this.#ready.length = 0;
    await Promise.allSettled([...this.#inFlight]);
    this.#entries.clear();
  }

  #wait(id: string, entry: Entry, delayMs: number): void {
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.#ready.push(id);
      this.#drain();
    }, delayMs);
  }

  #drain(): void {
    while (!this.#isClosed && this.#active < this.#o.concurrency && this.#ready.length > 0) {
      const id = this.#ready.shift() as string;
      const entry = this.#entries.get(id);
      if (!entry) continue;
      const run = this.#run(id, entry).finally(() => {
        this.#inFlight.delete(run);
        this.#active--;
        this.#drain();
      });
      this.#active++;
      this.#inFlight.add(run);
    }
  }

  async #run(id: string, entry: Entry): Promise<void> {
    entry.isRunning = true;
    entry.tries++;
    try {
      await this.#o.handler(id);
      this.#entries.delete(id);
    } catch (err) {
      entry.isRunning = false;
      const isFinal = err instanceof DeliveryError && err.isFinal;
      if (this.#isClosed || isFinal || entry.tries >= this.#o.retry.attempts) {
        this.#entries.delete(id);
        if (!this.#isClosed)
          this.#o.logger.warn(
            { notificationId: id, tries: entry.tries, err: (err as Error).message },
            'job gave up',
          );
        return;
      }
      this.#wait(id, entry, this.#o.retry.backoffMs * 2 ** (entry.tries - 1));
    }
  }
}
