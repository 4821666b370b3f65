/**
 * @module jobs/bullmq-queue
 * A `JobQueue` on BullMQ and Redis: one queue, 'notifications', whose job id is the notification id (a
 * re-relayed row finds its job and adds nothing), delayed jobs for reminders, bounded attempts with
 * exponential backoff, and a Worker that runs the shared delivery handler. The producer connection fails
 * fast while Redis is down (no offline queue), so the relay backs off instead of hanging; ioredis keeps
 * reconnecting in the background and both sides resume when Redis is back. A marker key tells a Redis that
 * holds our jobs from one that is new or lost its data (a restart without persistence): the notifier then
 * adds every queued notification's job again.
 */
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { DeliveryError, type DeliveryHandler } from './deliver.js';
import type { RetryPolicy } from './inprocess-queue.js';
import type { JobQueue } from './relay.js';

export const NOTIFICATIONS_QUEUE = 'notifications';
/** Set once every queued notification has its job in this Redis; missing means jobs may have been lost. */
export const SYNCED_MARKER = 'outbox-synced';
export const BULLMQ_CONCURRENCY = 4;
/** Completed jobs kept (so a re-relayed row finds its job), then trimmed. */
export const KEEP_COMPLETED_JOBS = 1_000;
/** Failed jobs kept for inspection, then trimmed. */
export const KEEP_FAILED_JOBS = 5_000;
const KEEP_COMPLETED_SECONDS = 24 * 3600;
/** Reconnect quickly at first, then every 2 s: Redis restarts are usually short. */
const RECONNECT_MAX_MS = 2_000;
const REDIS_CONNECT_TIMEOUT_MS = 5_000;
const PRODUCER_COMMAND_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 5_000;

export interface NotificationJobData {
  notificationId: string;
}

export interface BullmqQueueOptions {
  redisUrl: string;
  handler: DeliveryHandler;
  logger: Logger;
  retry: RetryPolicy;
  concurrency?: number;
  /** Redis key prefix (tests give each run its own). Defaults to BullMQ's 'bull'. */
  prefix?: string;
  /**
   * Called each time the producer connection is ready (at start and after every loss). `hasLostJobs` is
   * true when the marker is missing: a new or emptied Redis, where jobs relayed earlier may be gone.
   */
  onReady?: (event: { isReconnect: boolean; hasLostJobs: boolean }) => void;
  now?: () => number;
}

const retryStrategy = (times: number) => Math.min(100 * times, RECONNECT_MAX_MS);

/**
 * @example
 * const queue = new BullmqJobQueue({ redisUrl: config.REDIS_URL, handler: deliver, logger,
 *   retry: { attempts: 5, backoffMs: 1000 } });
 * await queue.schedule('ntf_…', Date.parse(show.startTime) - 2 * 3600_000);
 * await queue.close();
 */
export class BullmqJobQueue implements JobQueue {
  readonly #producer: Redis;
  readonly #queue: Queue<NotificationJobData>;
  readonly #worker: Worker<NotificationJobData>;
  readonly #now: () => number;
  #wasLost = false;
  readonly #markerKey: string;

  constructor(options: BullmqQueueOptions) {
    this.#now = options.now ?? Date.now;
    const { logger } = options;
    // The producer refuses commands while disconnected instead of buffering them, so a relay call fails now.
    this.#producer = new Redis(options.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
      commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
      retryStrategy,
    });
    this.#producer.on('error', (err) =>
      logger.debug({ err: err.message }, 'redis producer connection error'),
    );
    this.#producer.on('close', () => {
      this.#wasLost = true;
    });
    this.#producer.on('ready', () => {
      const isReconnect = this.#wasLost;
      this.#wasLost = false;
      if (isReconnect) logger.info('redis connection restored');
      this.#producer
        .exists(this.#markerKey)
        .then((found) => options.onReady?.({ isReconnect, hasLostJobs: found === 0 }))
        .catch((err: Error) => logger.debug({ err: err.message }, 'redis marker check failed'));
    });
    this.#queue = new Queue<NotificationJobData>(NOTIFICATIONS_QUEUE, {
      connection: this.#producer,
      ...(options.prefix ? { prefix: options.prefix } : {}),
      defaultJobOptions: {
        attempts: options.retry.attempts,
        backoff: { type: 'exponential', delay: options.retry.backoffMs },
        removeOnComplete: { count: KEEP_COMPLETED_JOBS, age: KEEP_COMPLETED_SECONDS },
        removeOnFail: { count: KEEP_FAILED_JOBS },
      },
    });
    this.#queue.on('error', (err) => logger.debug({ err: err.message }, 'notifications queue error'));
    this.#markerKey = this.#queue.toKey(SYNCED_MARKER);
    // Workers block on Redis, so their connection must retry forever (maxRetriesPerRequest: null).
    this.#worker = new Worker<NotificationJobData>(
      NOTIFICATIONS_QUEUE,
      async (job) => {
        try {
          return await options.handler(job.data.notificationId);
        } catch (err) {
          // The row is already 'failed': move the job to the failed set now, whatever BullMQ's count says.
          if (err instanceof DeliveryError && err.isFinal) throw new UnrecoverableError(err.message);
          throw err;
        }
      },
      {
        connection: { url: options.redisUrl, maxRetriesPerRequest: null, retryStrategy },
        ...(options.prefix ? { prefix: options.prefix } : {}),
        concurrency: options.concurrency ?? BULLMQ_CONCURRENCY,
      },
    );
    this.#worker.on('error', (err) => logger.debug({ err: err.message }, 'notifications worker error'));
    this.#worker.on('failed', (job, err) => {
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1))
        logger.warn({ notificationId: job.id, err: err.message }, 'notification job failed for good');
    });
  }

  async schedule(notificationId: string, sendAtMs: number): Promise<void> {
    this.#assertConnected();
    await this.#queue.add(
      'deliver',
      { notificationId },
      { jobId: notificationId, delay: Math.max(0, sendAtMs - this.#now()) },
    );
  }

  /**
   * A job whose retries were spent on something other than a delivery attempt (another run holding the
   * row's lease, a database error) sits in the failed set while its row is still 'queued', and `add`
   * with the same id does nothing: such a job is retried with its attempts reset. The row's own count
   * still bounds real delivery attempts (the deliverer fails the row at the limit).
   */
  async reschedule(notificationId: string, sendAtMs: number): Promise<void> {
    this.#assertConnected();
    const job = await this.#queue.getJob(notificationId);
    if (job && (await job.isFailed()))
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    else await this.schedule(notificationId, sendAtMs);
  }

  async unschedule(notificationId: string): Promise<void> {
    this.#assertConnected();
    // 0 when the job is running (locked) or gone; either way its row is cancelled and it will not send.
    await this.#queue.remove(notificationId);
  }

  /** Records that every queued notification has its job in this Redis (see `onReady`). */
  async markSynced(): Promise<void> {
    this.#assertConnected();
    await this.#producer.set(this.#markerKey, new Date(this.#now()).toISOString());
  }

  /** Whether the producer connection is up right now. */
  get isConnected(): boolean {
    return this.#producer.status === 'ready';
  }

  /** Lets running jobs finish (bounded), then drops the connections; safe while Redis is down. */
  async close(): Promise<void> {
    const bounded = (p: Promise<void>) =>
      Promise.race([
        p.catch(() => undefined),
        new Promise<void>((r) => setTimeout(r, CLOSE_TIMEOUT_MS).unref()),
      ]);
    await bounded(this.#worker.close());
    await bounded(this.#queue.close());
    this.#producer.disconnect();
    if (this.#worker.isRunning()) await this.#worker.close(true).catch(() => undefined);
  }

  #assertConnected(): void {
    // Before the first connection BullMQ would wait for Redis; fail now so the relay can back off.
    if (this.#producer.status !== 'ready')
      throw new Error(`redis is not connected (${this.#producer.status})`);
  }
}
