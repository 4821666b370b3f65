/**
 * The whole notifier (relay, queue, sweep, delivery) on both stores: rows written as a booking's
 * transaction writes them are delivered once, a row relayed before a restart is found by the sweep, two
 * notifiers sharing one database (two nodes) send each notification once, and with BullMQ a Redis that
 * lost its jobs gets them back from the table. The senders record what they were given (they stand
 * for the SMTP server and the SMS gateway); Redis is a real redis-server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EmailSender, OutgoingNotification } from '../../src/jobs/email.js';
import { type Notifier, type NotifierOptions, startNotifier } from '../../src/jobs/notifier.js';
import type { SmsMessage, SmsSender } from '../../src/jobs/sms.js';
import { createLogger } from '../../src/logger.js';
import type { Store } from '../../src/persistence/store.js';
import { APP_STORES, insertUser } from '../helpers/app-stores.js';
import { BOOKING_DATA } from '../helpers/notifications.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

const logger = createLogger('silent');

class RecordingEmail implements EmailSender {
  readonly sent: string[] = [];
  async send(notification: OutgoingNotification) {
    this.sent.push(notification.id);
    return { threadId: 0 };
  }
  close(): void {}
}

class RecordingSms implements SmsSender {
  readonly sent: SmsMessage[] = [];
  async send(message: SmsMessage): Promise<void> {
    this.sent.push(message);
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A notification and its outbox row in one transaction, as a booking's transaction writes them. */
async function queueNotification(store: Store, id: string, sendAtMs = Date.now()): Promise<string> {
  const nowIso = new Date().toISOString();
  await store.transaction(async (tx) => {
    await tx.run(
      `INSERT INTO notifications (id, user_id, booking_id, channel, template, recipient, data, status, send_at,
         attempts, created_at)
       VALUES (?, 'usr_1', 'bkg_1', 'email', 'show_reminder', 'asha@example.com', ?, 'queued', ?, 0, ?)`,
      [id, JSON.stringify(BOOKING_DATA), new Date(sendAtMs).toISOString(), nowIso],
    );
    await tx.run('INSERT INTO outbox (kind, payload, created_at) VALUES (?, ?, ?)', [
      'notify',
      JSON.stringify({ notificationId: id, sendAtMs }),
      nowIso,
    ]);
  });
  return id;
}

async function statusOf(store: Store, id: string): Promise<string | undefined> {
  return (await store.get<{ status: string }>('SELECT status FROM notifications WHERE id = ?', [id]))?.status;
}

async function allSent(store: Store, ids: string[]): Promise<boolean> {
  const statuses = await Promise.all(ids.map((id) => statusOf(store, id)));
  return statuses.every((s) => s === 'sent');
}

const notifiers: Notifier[] = [];
let store: Store | undefined;
let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(async () => {
  await Promise.all(notifiers.splice(0).map((n) => n.stop()));
  await store?.close();
  store = undefined;
});
afterAll(async () => {
  await redis.stop();
});

function start(target: Store, email: EmailSender, overrides: Partial<NotifierOptions> = {}): Notifier {
  const notifier = startNotifier({
    store: target,
    config: { SMTP_URL: undefined, SMS_WEBHOOK_URL: undefined, MAIL_FROM: 'x@y.z', REDIS_URL: undefined },
    logger,
    email,
    sms: new RecordingSms(),
    retry: { attempts: 5, backoffMs: 50 },
    relayPollMs: 50,
    sweepIntervalMs: 100,
    ...overrides,
  });
  notifiers.push(notifier);
  return notifier;
}

describe.each(APP_STORES)('the notifier on $name', (fixture) => {
  it('delivers queued rows once, and a row relayed before a restart through the sweep', async () => {
    store = await fixture.open('notifier-inprocess');
    await insertUser(store, 'usr_1', { email: 'asha@example.com', phone: '+919876543210' });
    const relayedBefore = await queueNotification(store, 'ntf_restart');
    // The previous process relayed the row, then died before its timer fired.
    await store.run('UPDATE outbox SET relayed_at = ?', [new Date().toISOString()]);
    const email = new RecordingEmail();
    const notifier = start(store, email);
    const now = await queueNotification(store, 'ntf_now');
    const later = await queueNotification(store, 'ntf_later', Date.now() + 700);
    await notifier.relayNow();
    await waitFor(() => allSent(store as Store, [relayedBefore, now, later]));
    expect(email.sent.sort()).toEqual(['ntf_later', 'ntf_now', 'ntf_restart']);
    expect(await notifier.lagSeconds()).toBe(0);
  });

  it('sends each notification once when two notifiers share the database', async () => {
    store = await fixture.open('notifier-two-nodes');
    await insertUser(store, 'usr_1', { email: 'asha@example.com', phone: '+919876543210' });
    const email = new RecordingEmail();
    // Two nodes: each relays the outbox and runs its own queue and sweep; both claim the same rows.
    const first = start(store, email);
    const second = start(store, email);
    const ids = await Promise.all(
      Array.from({ length: 20 }, (_, i) => queueNotification(store as Store, `ntf_node${i}`)),
    );
    await Promise.all([first.relayNow(), second.relayNow()]);
    await waitFor(() => allSent(store as Store, ids));
    // Runs that lost the claim retry and then find the row sent; give them that time.
    await new Promise((r) => setTimeout(r, 400));
    expect(email.sent.sort()).toEqual([...ids].sort());
    const attempts = await store.get<{ n: number }>('SELECT COUNT(*) AS n FROM notification_attempts');
    expect(attempts?.n).toBe(ids.length);
  });

  it('with BullMQ, gives Redis back the jobs it lost from the table', async () => {
    store = await fixture.open('notifier-bullmq');
    await insertUser(store, 'usr_1', { email: 'asha@example.com', phone: '+919876543210' });
    const email = new RecordingEmail();
    const notifier = start(store, email, {
      config: { SMTP_URL: undefined, SMS_WEBHOOK_URL: undefined, MAIL_FROM: 'x@y.z', REDIS_URL: redis.url },
      redisPrefix: `bo-stores-${fixture.name}-${process.pid}`,
      sweepOverdueGraceMs: 60_000,
      sweepIntervalMs: 60_000,
    });
    expect(notifier.mode).toBe('bullmq');
    // Delayed jobs only Redis holds when it dies; restarted without persistence, it has none of them.
    const ids = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        queueNotification(store as Store, `ntf_lost${i}`, Date.now() + 1_500),
      ),
    );
    await waitFor(async () => {
      const left = await (store as Store).get<{ n: number }>(
        'SELECT COUNT(*) AS n FROM outbox WHERE relayed_at IS NULL',
      );
      return left?.n === 0;
    });
    await redis.kill();
    await redis.restart();
    await waitFor(() => allSent(store as Store, ids), 30_000);
    expect(email.sent.sort()).toEqual([...ids].sort());
  });
});
