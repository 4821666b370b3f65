/**
 * @module jobs/deliver
 * The one delivery handler both queues run. The notifications row is the truth: a job for a row that is
 * no longer 'queued' (sent, failed, cancelled) does nothing, which makes retried and duplicated jobs
 * harmless. A short lease on the row keeps two runs of one job from sending at the same time.
 */
import type { Logger } from '../logger.js';
import type { Queryable, Store } from '../persistence/store.js';
import type { EmailSender, OutgoingNotification } from './email.js';
import { isNotificationTemplate, type NotificationData, type NotificationStatus } from './outbox.js';
import { renderSms, type SmsSender } from './sms.js';

/**
 * - sent: delivered now.
 * - skipped: nothing to do (already sent, cancelled, failed, or no such row).
 * A failed send is not an outcome: the handler throws `DeliveryError` and the queue retries. After the
 * last allowed attempt the row is 'failed' first and the error has `isFinal` (BullMQ keeps the job in its
 * failed set for inspection; a later run of it finds the row failed and skips).
 */
export type DeliveryOutcome = 'sent' | 'skipped';
export type DeliveryHandler = (notificationId: string) => Promise<DeliveryOutcome>;

/** Thrown for a failure worth retrying (and for a row another run is sending right now). */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  constructor(
    message: string,
    readonly isFinal = false,
  ) {
    super(message);
  }
}

export const DEFAULT_MAX_ATTEMPTS = 5;
/** Longer than the slowest send (SMTP and webhook timeouts), so a live send is never taken over. */
export const DELIVERY_LEASE_MS = 60_000;
const MAX_ERROR_LENGTH = 500;

export interface DelivererOptions {
  store: Store;
  email: EmailSender;
  sms: SmsSender;
  logger: Logger;
  /** Attempts recorded on the row before it is marked 'failed'; the queues use the same number. */
  maxAttempts?: number;
  leaseMs?: number;
  /**
   * Group commit: resolves once earlier app-database commits are flushed. A message leaves only after
   * the change it tells of (a confirmed booking) and its claim are durable.
   */
  durable?: () => Promise<void>;
  now?: () => number;
}

interface Row {
  id: string;
  channel: 'email' | 'sms';
  template: string;
  recipient: string;
  data: string;
  status: NotificationStatus;
  attempts: number;
}

/**
 * Builds `deliverNotification(notificationId)`.
 *
 * @example
 * const deliver = createDeliverer({ store, email, sms, logger });
 * await deliver('ntf_…'); // 'sent' | 'skipped', or throws DeliveryError to be retried
 */
export function createDeliverer(options: DelivererOptions): DeliveryHandler {
  const { store, logger } = options;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const leaseMs = options.leaseMs ?? DELIVERY_LEASE_MS;
  const now = options.now ?? Date.now;
  const load = (id: string) =>
    store.get<Row>(
      'SELECT id, channel, template, recipient, data, status, attempts FROM notifications WHERE id = ?',
      [id],
    );
  // The claim is one conditional UPDATE: of concurrent runs (two queues, two nodes) only the one whose
  // statement matched the row (still queued, lease free) gets it back, so exactly one sends. RETURNING
  // gives the row to send and the attempt number as the claim made it: no read before it (a job's row
  // is nearly always queued and free, and a round trip per delivery is saved); a claim that matched
  // nothing is followed by a read that says why. Claims made in one turn of the event loop share one
  // transaction: one commit (one round trip on PostgreSQL) for a burst of messages, not one each.
  const claim = perTurn(store, 'one statement', (tx, c: { id: string; leaseUntil: string; nowIso: string }) =>
    tx.get<Row>(
      `UPDATE notifications SET attempts = attempts + 1, locked_until = ?
       WHERE id = ? AND status = 'queued' AND (locked_until IS NULL OR locked_until <= ?)
       RETURNING id, channel, template, recipient, data, status, attempts`,
      [c.leaseUntil, c.id, c.nowIso],
    ),
  );
  // The attempt and the row's new state commit together; the row updates stay conditional on 'queued'
  // so that a cancel that landed meanwhile is not overwritten. Results of one turn share a transaction,
  // as claims do; the statements of each are made together (neither needs the other's answer).
  const succeed = perTurn(store, 'statements', async (tx, r: { id: string; at: string }) => {
    await Promise.all([
      tx.run('INSERT INTO notification_attempts (notification_id, at, ok, error) VALUES (?, ?, ?, ?)', [
        r.id,
        r.at,
        1,
        null,
      ]),
      tx.run(
        `UPDATE notifications SET status = 'sent', sent_at = ?, last_error = NULL, locked_until = NULL
         WHERE id = ? AND status = 'queued'`,
        [r.at, r.id],
      ),
    ]);
  });
  const fail = (id: string, at: string, error: string, isFinal: boolean) =>
    store.transaction((tx) =>
      Promise.all([
        tx.run('INSERT INTO notification_attempts (notification_id, at, ok, error) VALUES (?, ?, ?, ?)', [
          id,
          at,
          0,
          error,
        ]),
        tx.run(
          `UPDATE notifications SET last_error = ?, locked_until = NULL,
             status = CASE WHEN ? = 1 THEN 'failed' ELSE status END
           WHERE id = ? AND status = 'queued'`,
          [error, isFinal ? 1 : 0, id],
        ),
      ]),
    );

  async function send(row: Row): Promise<void> {
    if (!isNotificationTemplate(row.template)) throw new Error(`unknown template ${row.template}`);
    const outgoing: OutgoingNotification = {
      id: row.id,
      template: row.template,
      recipient: row.recipient,
      data: JSON.parse(row.data) as NotificationData,
    };
    if (row.channel === 'email') await options.email.send(outgoing);
    else await options.sms.send({ to: row.recipient, body: renderSms(outgoing), notificationId: row.id });
  }

  return async function deliverNotification(notificationId: string): Promise<DeliveryOutcome> {
    const startedMs = now();
    const row = await claim({
      id: notificationId,
      leaseUntil: new Date(startedMs + leaseMs).toISOString(),
      nowIso: new Date(startedMs).toISOString(),
    });
    if (row === undefined) {
      const current = await load(notificationId);
      if (!current) {
        logger.warn({ notificationId }, 'notification job for a row that does not exist');
        return 'skipped';
      }
      if (current.status !== 'queued') return 'skipped';
      // Another run holds the lease: retry later, by which time it has sent (→ skipped) or let go.
      throw new DeliveryError('another delivery of this notification is in progress');
    }
    const attempt = row.attempts;
    try {
      await options.durable?.();
      await send(row);
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_LENGTH);
      const isFinal = attempt >= maxAttempts;
      await fail(notificationId, new Date(now()).toISOString(), message, isFinal);
      logger.warn({ notificationId, attempt, maxAttempts, err: message }, 'notification delivery failed');
      throw new DeliveryError(isFinal ? `gave up after ${attempt} attempts: ${message}` : message, isFinal);
    }
    await succeed({ id: notificationId, at: new Date(now()).toISOString() });
    logger.debug(
      { notificationId, channel: row.channel, template: row.template, attempt },
      'notification sent',
    );
    return 'sent';
  };
}

/**
 * `apply` for each item, the items of one turn of the event loop in one transaction: a burst of
 * deliveries makes one commit where it made one per message. Every caller learns its own item's
 * answer once that transaction committed. Items go in notification-id order, so two nodes' batches
 * lock the rows they share in the same order (no deadlock on PostgreSQL). Should a batch of several
 * fail, each item is tried again alone, so one bad row (or a deadlock) does not fail the others. An
 * item alone whose `apply` is one statement runs without a transaction: it is atomic by itself, and
 * BEGIN and COMMIT would be two more round trips.
 */
function perTurn<I extends { id: string }, O>(
  store: Store,
  shape: 'one statement' | 'statements',
  apply: (q: Queryable, item: I) => Promise<O>,
): (item: I) => Promise<O> {
  type Entry = { item: I; resolve: (o: O) => void; reject: (err: unknown) => void };
  let batch: Entry[] = [];
  const alone = (item: I): Promise<O> =>
    shape === 'one statement' ? apply(store, item) : store.transaction((tx) => apply(tx, item));
  const run = () => {
    const items = batch.sort((a, b) => (a.item.id < b.item.id ? -1 : a.item.id > b.item.id ? 1 : 0));
    batch = [];
    if (items.length === 1) {
      alone(items[0]!.item).then(items[0]!.resolve, items[0]!.reject);
      return;
    }
    store
      .transaction((tx) => Promise.all(items.map(({ item }) => apply(tx, item))))
      .then(
        (outputs) => {
          for (const [i, entry] of items.entries()) entry.resolve(outputs[i]!);
        },
        () => {
          for (const entry of items) alone(entry.item).then(entry.resolve, entry.reject);
        },
      );
  };
  return (item) =>
    new Promise<O>((resolve, reject) => {
      if (batch.length === 0) setImmediate(run);
      batch.push({ item, resolve, reject });
    });
}
