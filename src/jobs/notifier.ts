/**
 * @module jobs/notifier
 * Composes notification delivery: the email and SMS senders, the shared handler, a queue (BullMQ when
 * REDIS_URL is set, timers in this process otherwise), the outbox relay, and a sweep over queued rows that
 * (in process) schedules reminders as they come due and (with Redis) re-creates jobs Redis lost. When a
 * Redis turns out to be new or emptied (a restart without persistence), every queued row gets its job again
 * at once, so a reminder booked before the crash still goes out at its time.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../persistence/store.js';
import { BullmqJobQueue } from './bullmq-queue.js';
import { createDeliverer, DEFAULT_MAX_ATTEMPTS, type DeliveryHandler } from './deliver.js';
import { createEmailSender, type EmailSender } from './email.js';
import { IN_PROCESS_WINDOW_MS, InProcessJobQueue, type RetryPolicy } from './inprocess-queue.js';
import { OutboxRelay } from './relay.js';
import { HttpSmsSender, LogSmsSender, type SmsSender } from './sms.js';

export { listNotifications } from './outbox.js';

export const DEFAULT_BACKOFF_MS = 1_000;
/** How often queued rows are swept. Must stay well under the in-process window. */
export const SWEEP_INTERVAL_MS = 60_000;
/**
 * With Redis, a queued row this long past its send time is presumed lost from Redis (a restart without
 * persistence) and its job is added again; a job that still exists makes the add a no-op.
 */
export const SWEEP_OVERDUE_GRACE_MS = 60_000;
/** Rows looked at per sweep; the rest wait for the next one. */
export const SWEEP_BATCH = 500;
/** Rows re-added per page when Redis lost its jobs; the pages run until every queued row is covered. */
export const RESYNC_PAGE = 500;
/** Bounds one resync (pages × RESYNC_PAGE rows); a table bigger than that is finished by later sweeps. */
const MAX_RESYNC_PAGES = 10_000;
/** stop() gives the queue this long to finish running jobs. */
const STOP_TIMEOUT_MS = 10_000;

export interface Notifier {
  /** Stops the relay, the sweep and the queue (running jobs get a bounded time to finish). */
  stop(): Promise<void>;
  /** Relays pending outbox rows now instead of at the next poll; call it after a committed transaction. */
  relayNow(): Promise<void>;
  /** Age in seconds of the oldest outbox row not yet relayed (also exported as boxoffice_outbox_lag_seconds). */
  lagSeconds(): Promise<number>;
  /** Runs the sweep now (tests, and after Redis comes back). */
  sweepNow(): Promise<void>;
  /** 'bullmq' or 'in-process'. */
  readonly mode: 'bullmq' | 'in-process';
}

export interface NotifierOptions {
  store: Store;
  config: Pick<Config, 'REDIS_URL' | 'SMTP_URL' | 'MAIL_FROM' | 'SMS_WEBHOOK_URL'>;
  logger: Logger;
  metrics?: Pick<Metrics, 'outboxLag'>;
  /** Delivery attempts and backoff; defaults 5 tries, 1 s doubling. */
  retry?: Partial<RetryPolicy>;
  relayPollMs?: number;
  sweepIntervalMs?: number;
  sweepOverdueGraceMs?: number;
  /** In-process only: jobs due within this window get a timer. */
  inProcessWindowMs?: number;
  /** BullMQ only: Redis key prefix. */
  redisPrefix?: string;
  /** Replace the senders built from config (e.g. a different SMS gateway). */
  email?: EmailSender;
  sms?: SmsSender;
  /** Group commit: resolves once earlier app-database commits are flushed; awaited before each send. */
  durable?: () => Promise<void>;
  now?: () => number;
}

interface QueueAdapter {
  queue: InProcessJobQueue | BullmqJobQueue;
  /** Queued rows due up to this time are (re)scheduled by the sweep. */
  sweepUntilMs(): number;
}

/**
 * Starts delivery. Synchronous: the queue connects in the background, and the relay backs off until it can.
 *
 * @example
 * const notifier = startNotifier({ store, config, logger, metrics });
 * // after a transaction that called enqueueNotification(...):
 * void notifier.relayNow();
 * // at shutdown:
 * await notifier.stop();
 */
export function startNotifier(options: NotifierOptions): Notifier {
  const { store, config, logger } = options;
  const now = options.now ?? Date.now;
  const retry: RetryPolicy = {
    attempts: options.retry?.attempts ?? DEFAULT_MAX_ATTEMPTS,
    backoffMs: options.retry?.backoffMs ?? DEFAULT_BACKOFF_MS,
  };
  const email =
    options.email ?? createEmailSender({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, logger });
  const sms =
    options.sms ??
    (config.SMS_WEBHOOK_URL ? new HttpSmsSender(config.SMS_WEBHOOK_URL) : new LogSmsSender(logger));
  const handler: DeliveryHandler = createDeliverer({
    store,
    email,
    sms,
    logger,
    maxAttempts: retry.attempts,
    durable: options.durable,
    now,
  });
  const sweepIntervalMs = options.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
  const graceMs = options.sweepOverdueGraceMs ?? SWEEP_OVERDUE_GRACE_MS;

  // Bound below, once the relay and the sweep exist; the BullMQ queue calls it whenever Redis is ready.
  let onRedisReady: (event: { isReconnect: boolean; hasLostJobs: boolean }) => void = () => {};
  let sweep: () => Promise<void> = async () => {};
  const adapter: QueueAdapter = config.REDIS_URL
    ? {
        queue: new BullmqJobQueue({
          redisUrl: config.REDIS_URL,
          handler,
          logger,
          retry,
          now,
          ...(options.redisPrefix ? { prefix: options.redisPrefix } : {}),
          onReady: (event) => onRedisReady(event),
        }),
        sweepUntilMs: () => now() - graceMs,
      }
    : (() => {
        const windowMs = options.inProcessWindowMs ?? IN_PROCESS_WINDOW_MS;
        if (sweepIntervalMs >= windowMs)
          throw new Error('sweep interval must be shorter than the in-process window');
        return {
          queue: new InProcessJobQueue({ handler, logger, retry, windowMs, now }),
          sweepUntilMs: () => now() + windowMs,
        };
      })();
  const relay = new OutboxRelay({
    store,
    queue: adapter.queue,
    logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.relayPollMs ? { pollMs: options.relayPollMs } : {}),
    now,
  });
  const runSweep = async () => {
    try {
      const nowIso = new Date(now()).toISOString();
      // Read-only: rescheduling is idempotent per notification id and delivery claims the row itself.
      const rows = await store.all<{ id: string; send_at: string }>(
        `SELECT id, send_at FROM notifications
         WHERE status = 'queued' AND send_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
         ORDER BY send_at LIMIT ${SWEEP_BATCH}`,
        [new Date(adapter.sweepUntilMs()).toISOString(), nowIso],
      );
      for (const row of rows)
        try {
          await adapter.queue.reschedule(row.id, Date.parse(row.send_at));
        } catch (err) {
          // One job that cannot be revived must not hold up the rows behind it.
          if (adapter.queue instanceof BullmqJobQueue && !adapter.queue.isConnected) throw err;
          logger.warn(
            { err: (err as Error).message, notificationId: row.id },
            'could not reschedule a notification',
          );
        }
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'notification sweep stopped early; the next one retries');
    }
  };
  let sweeping: Promise<void> | undefined;
  sweep = () => {
    sweeping ??= runSweep().finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  };

  /** Adds the job of every queued row (a no-op for jobs Redis still has), then marks Redis as synced. */
  const resyncOnce = async (queue: BullmqJobQueue) => {
    let after = { sendAt: '', id: '' };
    for (let page = 0; page < MAX_RESYNC_PAGES; page++) {
      const rows = await store.all<{ id: string; send_at: string }>(
        `SELECT id, send_at FROM notifications
         WHERE status = 'queued' AND (send_at > ? OR (send_at = ? AND id > ?))
         ORDER BY send_at, id LIMIT ${RESYNC_PAGE}`,
        [after.sendAt, after.sendAt, after.id],
      );
      for (const row of rows) await queue.schedule(row.id, Date.parse(row.send_at));
      const last = rows[rows.length - 1];
      if (!last || rows.length < RESYNC_PAGE) break;
      after = { sendAt: last.send_at, id: last.id };
    }
    await queue.markSynced();
    logger.info('notification jobs re-added to Redis');
  };
  let isStopping = false;
  let isResyncWanted = false;
  let resyncing: Promise<void> | undefined;
  const resync = (queue: BullmqJobQueue) => {
    isResyncWanted = true;
    resyncing ??= (async () => {
      // Another loss while a resync runs asks for one more pass after it.
      while (isResyncWanted && !isStopping) {
        isResyncWanted = false;
        await relay.relayNow();
        await resyncOnce(queue).catch((err: Error) =>
          logger.warn({ err: err.message }, 'notification resync stopped early; the next connection retries'),
        );
      }
    })().finally(() => {
      resyncing = undefined;
    });
    return resyncing;
  };
  onRedisReady = ({ isReconnect, hasLostJobs }) => {
    const { queue } = adapter;
    // Relay what piled up without waiting out the backoff; when Redis lost its jobs, add them all again.
    if (hasLostJobs && queue instanceof BullmqJobQueue) void resync(queue);
    else void relay.relayNow().then(() => (isReconnect ? sweep() : undefined));
  };
  relay.start();
  void sweep();
  const sweepTimer = setInterval(() => void sweep(), sweepIntervalMs);
  const mode = config.REDIS_URL ? 'bullmq' : 'in-process';
  logger.info({ mode }, 'notifications started');

  let stopping: Promise<void> | undefined;
  return {
    mode,
    relayNow: async () => {
      await relay.relayNow();
    },
    lagSeconds: () => relay.lagSeconds(),
    sweepNow: () => sweep(),
    stop() {
      stopping ??= (async () => {
        isStopping = true;
        clearInterval(sweepTimer);
        await relay.stop();
        await sweeping;
        await resyncing;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          adapter.queue.close(),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, STOP_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
        email.close();
      })();
      return stopping;
    },
  };
}
