/**
 * The write side of notifications on both stores: a booking's notifications queued together cost two
 * statements (their rows, their outbox rows) whatever their number, each once however often the saga
 * runs, and the outbox rows follow the order they were given in.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { enqueueNotifications, type NotificationInput } from '../../src/jobs/outbox.js';
import { countingStore, type Store } from '../../src/persistence/store.js';
import { APP_STORES, insertUser } from '../helpers/app-stores.js';
import { BOOKING_DATA } from '../helpers/notifications.js';

const SEND_AT = Date.UTC(2030, 11, 7, 13, 0, 0);

function message(channel: 'email' | 'sms', template: string, sendAtMs = SEND_AT): NotificationInput {
  return {
    userId: 'usr_1',
    bookingId: 'bkg_1',
    channel,
    template,
    recipient: channel === 'email' ? 'asha@example.com' : '+919876543210',
    data: { ...BOOKING_DATA, timeZone: 'Asia/Kolkata' },
    sendAt: sendAtMs,
  };
}

async function outboxIds(store: Store): Promise<string[]> {
  const rows = await store.all<{ payload: string }>('SELECT payload FROM outbox ORDER BY id');
  return rows.map((r) => (JSON.parse(r.payload) as { notificationId: string }).notificationId);
}

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe.each(APP_STORES)('queueing notifications on $name', (fixture) => {
  it("queues a booking's messages in two statements, in order, and each once however often the saga runs", async () => {
    store = await fixture.open('outbox-batch');
    await insertUser(store, 'usr_1', { phone: '+919876543210' });
    const counted = countingStore(store);
    const messages = [
      message('email', 'booking_confirmed'),
      message('sms', 'booking_confirmed'),
      message('email', 'show_reminder', SEND_AT + 3_600_000),
      message('sms', 'show_reminder', SEND_AT + 3_600_000),
    ];
    const ids = await counted.store.transaction((tx) => enqueueNotifications(tx, messages));
    // BEGIN, the four rows, their four outbox rows, COMMIT.
    expect(counted.roundTrips()).toBe(4);
    expect(new Set(ids).size).toBe(4);
    expect(await outboxIds(store)).toEqual(ids);
    const rows = await store.all<{ id: string; channel: string; template: string; send_at: string }>(
      `SELECT id, channel, template, send_at FROM notifications WHERE status = 'queued' ORDER BY send_at, channel`,
    );
    expect(rows).toEqual([
      {
        id: ids[0],
        channel: 'email',
        template: 'booking_confirmed',
        send_at: new Date(SEND_AT).toISOString(),
      },
      { id: ids[1], channel: 'sms', template: 'booking_confirmed', send_at: new Date(SEND_AT).toISOString() },
      {
        id: ids[2],
        channel: 'email',
        template: 'show_reminder',
        send_at: new Date(SEND_AT + 3_600_000).toISOString(),
      },
      {
        id: ids[3],
        channel: 'sms',
        template: 'show_reminder',
        send_at: new Date(SEND_AT + 3_600_000).toISOString(),
      },
    ]);

    // The saga again (a retry, reconciliation): the same ids, nothing new for the relay.
    const again = await store.transaction((tx) => enqueueNotifications(tx, messages));
    expect(again).toEqual(ids);
    expect(await outboxIds(store)).toEqual(ids);

    // Some old, some new: the old keep their ids, only the new ones get outbox rows.
    const cancelled = message('email', 'booking_cancelled');
    const mixed = await store.transaction((tx) =>
      enqueueNotifications(tx, [messages[1]!, cancelled, { ...cancelled }]),
    );
    expect(mixed[0]).toBe(ids[1]);
    expect(mixed[1]).not.toBe(ids[1]);
    expect(mixed[2]).toBe(mixed[1]);
    expect(await outboxIds(store)).toEqual([...ids, mixed[1]]);
  });

  it('refuses to queue outside a transaction, and more than a bounded batch', async () => {
    store = await fixture.open('outbox-bounds');
    await insertUser(store, 'usr_1');
    await expect(enqueueNotifications(store, [message('email', 'booking_confirmed')])).rejects.toThrow(
      /inside the caller/,
    );
    const many = Array.from({ length: 17 }, (_, i) => ({
      ...message('email', 'custom'),
      dedupeKey: `k${i}`,
    }));
    await expect(store.transaction((tx) => enqueueNotifications(tx, many))).rejects.toThrow(/too many/);
  });
});
