/**
 * The delivery handler and the notification list on both stores: a row is sent once however many runs
 * of its job race for it, a failed send is recorded and retried until the last attempt fails the row,
 * and a user's list pages newest first with its delivery attempts. The senders record what they were
 * given (they stand for the SMTP server and the SMS gateway, outside the service).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createDeliverer, DeliveryError, type DeliveryOutcome } from '../../src/jobs/deliver.js';
import type { EmailSender, OutgoingNotification } from '../../src/jobs/email.js';
import { getNotification, listNotifications } from '../../src/jobs/outbox.js';
import type { SmsMessage, SmsSender } from '../../src/jobs/sms.js';
import { createLogger } from '../../src/logger.js';
import { countingStore, type Store } from '../../src/persistence/store.js';
import { APP_STORES, insertUser } from '../helpers/app-stores.js';
import { BOOKING_DATA } from '../helpers/notifications.js';

const logger = createLogger('silent');

class RecordingEmail implements EmailSender {
  readonly sent: OutgoingNotification[] = [];
  /** While set, a send waits for it (a slow SMTP server). */
  gate: Promise<void> | undefined;
  failWith: string | undefined;

  async send(notification: OutgoingNotification) {
    await this.gate;
    if (this.failWith) throw new Error(this.failWith);
    this.sent.push(notification);
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

/** A queued notification row as enqueueNotification writes it (the outbox row is the relay's concern). */
async function queuedRow(
  store: Store,
  id: string,
  options: { userId?: string; channel?: 'email' | 'sms'; createdAtMs?: number } = {},
): Promise<string> {
  const channel = options.channel ?? 'email';
  const createdAt = new Date(options.createdAtMs ?? Date.now()).toISOString();
  await store.run(
    `INSERT INTO notifications (id, user_id, booking_id, channel, template, recipient, data, status, send_at,
       attempts, created_at, dedupe_key)
     VALUES (?, ?, 'bkg_1', ?, 'booking_confirmed', ?, ?, 'queued', ?, 0, ?, NULL)`,
    [
      id,
      options.userId ?? 'usr_1',
      channel,
      channel === 'email' ? 'asha@example.com' : '+919876543210',
      JSON.stringify(BOOKING_DATA),
      createdAt,
      createdAt,
    ],
  );
  return id;
}

async function rowOf(store: Store, id: string) {
  return store.get<{
    status: string;
    attempts: number;
    last_error: string | null;
    locked_until: string | null;
  }>('SELECT status, attempts, last_error, locked_until FROM notifications WHERE id = ?', [id]);
}

async function attemptsOf(store: Store, id: string) {
  return store.all<{ ok: number; error: string | null }>(
    'SELECT ok, error FROM notification_attempts WHERE notification_id = ? ORDER BY id',
    [id],
  );
}

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe.each(APP_STORES)('notification delivery on $name', (fixture) => {
  it('sends a queued row once, records the attempt, and skips it after', async () => {
    store = await fixture.open('deliver-once');
    await insertUser(store, 'usr_1', { phone: '+919876543210' });
    const id = await queuedRow(store, 'ntf_once');
    const sms = new RecordingSms();
    const smsId = await queuedRow(store, 'ntf_text', { channel: 'sms' });
    const email = new RecordingEmail();
    const deliver = createDeliverer({ store, email, sms, logger });
    expect(await deliver(id)).toBe('sent');
    expect(await deliver(id)).toBe('skipped');
    expect(await deliver('ntf_missing')).toBe('skipped');
    expect(await deliver(smsId)).toBe('sent');
    expect(email.sent.map((n) => n.id)).toEqual([id]);
    expect(email.sent[0]?.data).toEqual(BOOKING_DATA);
    expect(sms.sent).toEqual([expect.objectContaining({ to: '+919876543210', notificationId: smsId })]);
    expect(await rowOf(store, id)).toEqual({
      status: 'sent',
      attempts: 1,
      last_error: null,
      locked_until: null,
    });
    expect(await attemptsOf(store, id)).toEqual([{ ok: 1, error: null }]);
  });

  it('sends in five round trips: the claim returns the row to send, then the attempt and the sent mark commit', async () => {
    store = await fixture.open('deliver-trips');
    await insertUser(store, 'usr_1');
    const id = await queuedRow(store, 'ntf_trips');
    const counted = countingStore(store);
    const email = new RecordingEmail();
    const deliver = createDeliverer({ store: counted.store, email, sms: new RecordingSms(), logger });
    expect(await deliver(id)).toBe('sent');
    expect(email.sent.map((n) => ({ id: n.id, data: n.data }))).toEqual([{ id, data: BOOKING_DATA }]);
    // The claim (UPDATE … RETURNING the row); BEGIN, the attempt, the row sent, COMMIT.
    expect(counted.roundTrips()).toBe(5);
    expect(await deliver(id)).toBe('skipped');
    expect(await rowOf(store, id)).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('commits a burst of deliveries together: one claim transaction and one result transaction', async () => {
    store = await fixture.open('deliver-burst');
    await insertUser(store, 'usr_1', { phone: '+919876543210' });
    const ids = await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((k, i) =>
        queuedRow(store!, `ntf_burst_${k}`, { channel: i % 2 ? 'sms' : 'email' }),
      ),
    );
    const counted = countingStore(store);
    const email = new RecordingEmail();
    const sms = new RecordingSms();
    const deliver = createDeliverer({ store: counted.store, email, sms, logger });
    // The same row twice in one burst: its second claim matches nothing (the first holds the lease),
    // so it is sent once and the other run is told to retry later.
    const outcomes = await Promise.allSettled([...ids, ids[0]!].map((id) => deliver(id)));
    expect(outcomes.slice(0, 5).map((o) => o.status === 'fulfilled' && o.value)).toEqual(
      Array(5).fill('sent'),
    );
    expect(outcomes[5]).toMatchObject({ status: 'rejected', reason: expect.any(DeliveryError) });
    expect(email.sent).toHaveLength(3);
    expect(sms.sent).toHaveLength(2);
    for (const id of ids) {
      expect(await rowOf(store, id)).toMatchObject({ status: 'sent', attempts: 1 });
      expect(await attemptsOf(store, id)).toEqual([{ ok: 1, error: null }]);
    }
    // Six claims in one transaction, five results in another, and the read that says why the
    // duplicate's claim matched nothing: not one commit per message and step (eleven).
    expect(counted.count()).toBe(3);
  });

  it('records each failed attempt and fails the row at the last one', async () => {
    store = await fixture.open('deliver-fail');
    await insertUser(store, 'usr_1', { phone: '+919876543210' });
    const id = await queuedRow(store, 'ntf_fail');
    const email = new RecordingEmail();
    email.failWith = 'connection refused';
    const deliver = createDeliverer({ store, email, sms: new RecordingSms(), logger, maxAttempts: 2 });
    const first = await deliver(id).catch((err: unknown) => err);
    expect(first).toBeInstanceOf(DeliveryError);
    expect((first as DeliveryError).isFinal).toBe(false);
    expect(await rowOf(store, id)).toMatchObject({ status: 'queued', attempts: 1, locked_until: null });
    const second = await deliver(id).catch((err: unknown) => err);
    expect((second as DeliveryError).isFinal).toBe(true);
    expect(await rowOf(store, id)).toMatchObject({
      status: 'failed',
      attempts: 2,
      last_error: 'connection refused',
    });
    expect(await attemptsOf(store, id)).toEqual([
      { ok: 0, error: 'connection refused' },
      { ok: 0, error: 'connection refused' },
    ]);
    expect(await deliver(id)).toBe('skipped');
    const view = await getNotification(store, id);
    expect(view).toMatchObject({ status: 'failed', attempts: 2, recipient: 'a***@example.com' });
    expect(view?.deliveryAttempts.map((a) => a.ok)).toEqual([false, false]);
  });

  it('lets exactly one of many concurrent runs of a job claim and send the row', async () => {
    store = await fixture.open('deliver-race');
    await insertUser(store, 'usr_1', { phone: '+919876543210' });
    const id = await queuedRow(store, 'ntf_race');
    const email = new RecordingEmail();
    let release!: () => void;
    email.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const deliver = createDeliverer({ store, email, sms: new RecordingSms(), logger });
    // Twelve runs at once (duplicated jobs, two queues, two nodes); the winner's send is held open so
    // that every other run meets the row while it is claimed.
    const runs = Array.from({ length: 12 }, () =>
      deliver(id).then(
        (outcome): DeliveryOutcome | 'busy' => outcome,
        (err: unknown) => {
          if (err instanceof DeliveryError) return 'busy';
          throw err;
        },
      ),
    );
    const others = await waitForSettled(runs, runs.length - 1);
    expect(others.every((outcome) => outcome === 'busy')).toBe(true);
    release();
    const outcomes = await Promise.all(runs);
    expect(outcomes.filter((o) => o === 'sent')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'busy')).toHaveLength(runs.length - 1);
    expect(email.sent).toHaveLength(1);
    expect(await rowOf(store, id)).toMatchObject({ status: 'sent', attempts: 1 });
    expect(await attemptsOf(store, id)).toHaveLength(1);
  });

  it('lists a user’s notifications newest first, by pages, with their attempts', async () => {
    store = await fixture.open('deliver-list');
    await insertUser(store, 'usr_1', { phone: '+919876543210' });
    await insertUser(store, 'usr_other', { phone: '+919876543210' });
    const base = Date.now();
    const ids = await Promise.all(
      [0, 1, 2].map((i) =>
        queuedRow(store as Store, `ntf_list${i}`, {
          channel: i === 1 ? 'sms' : 'email',
          createdAtMs: base + i,
        }),
      ),
    );
    await queuedRow(store, 'ntf_not_mine', { userId: 'usr_other' });
    const deliver = createDeliverer({ store, email: new RecordingEmail(), sms: new RecordingSms(), logger });
    expect(await deliver(ids[2] ?? '')).toBe('sent');
    const first = await listNotifications(store, 'usr_1', { limit: 2 });
    expect(first.notifications.map((n) => n.id)).toEqual([ids[2], ids[1]]);
    expect(first.notifications[0]).toMatchObject({
      recipient: 'a***@example.com',
      status: 'sent',
      attempts: 1,
    });
    expect(first.notifications[0]?.deliveryAttempts).toEqual([
      { at: expect.any(String), ok: true, error: null },
    ]);
    expect(first.notifications[1]).toMatchObject({ recipient: '+91******3210', deliveryAttempts: [] });
    const second = await listNotifications(store, 'usr_1', { limit: 2, cursor: first.nextCursor ?? '' });
    expect(second.notifications.map((n) => n.id)).toEqual([ids[0]]);
    expect(second.nextCursor).toBeNull();
    expect((await listNotifications(store, 'usr_nobody', { limit: 10 })).notifications).toEqual([]);
    expect(await getNotification(store, 'ntf_missing')).toBeUndefined();
  });
});

/** Resolves with the outcomes of the first `count` promises to settle, in the order they settled. */
function waitForSettled<T>(promises: Promise<T>[], count: number): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const settled: T[] = [];
    for (const promise of promises)
      promise.then((value) => {
        settled.push(value);
        if (settled.length === count) resolve(settled.slice());
      }, reject);
  });
}
