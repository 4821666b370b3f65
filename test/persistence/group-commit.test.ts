/**
 * Group commit of the app database with a flusher the test holds: flushes are shared and ordered, and
 * nothing leaves before the flush that covers what it tells of: the provider's calls, each notification
 * handed to its transport, and the server's answers (register, booking, payment, payment webhook).
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { startNotifier } from '../../src/jobs/notifier.js';
import { enqueueNotification } from '../../src/jobs/outbox.js';
import { createLogger } from '../../src/logger.js';
import { afterDurable, type SimulatedPaymentProvider } from '../../src/payments/index.js';
import type { PaymentProvider } from '../../src/payments/payment-provider.js';
import { openAppDb } from '../../src/persistence/app-db.js';
import { GroupCommit } from '../../src/persistence/group-commit.js';
import { SqliteStore } from '../../src/persistence/store.js';
import { insertUser } from '../helpers/app-stores.js';
import { ADMIN, ADMIN_ENV, createShow, GOOD_CARD, login, newUser } from '../helpers/catalog.js';
import { BOOKING_DATA } from '../helpers/notifications.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startSmsWebhook, type TestSms } from '../helpers/sms.js';
import { startTestSmtp, type TestSmtp } from '../helpers/smtp.js';

/** A flusher that finishes only when the test says so, counting what it was asked to do. */
function slowFlusher() {
  const pending: (() => void)[] = [];
  return {
    started: () => pending.length,
    flush: () => new Promise<void>((resolve) => pending.push(resolve)),
    /** Completes the oldest flush. */
    finishOne: async () => {
      pending.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

function settled(promise: Promise<unknown>): { isDone: () => boolean } {
  let isDone = false;
  promise.then(
    () => {
      isDone = true;
    },
    () => {
      isDone = true;
    },
  );
  return { isDone: () => isDone };
}

describe('group commit', () => {
  it('shares one flush among everyone who asks before it starts, and a later one among latecomers', async () => {
    const flusher = slowFlusher();
    let changes = 1;
    const group = new GroupCommit({ flush: flusher.flush, changes: () => changes, onFlushFailed: () => {} });
    changes = 2;
    const first = settled(group.durable());
    expect(flusher.started()).toBe(1);
    // These committed after the first flush started: it may not cover them.
    const second = settled(group.durable());
    const third = settled(group.durable());
    expect(flusher.started()).toBe(1);
    await flusher.finishOne();
    expect(first.isDone()).toBe(true);
    expect(second.isDone()).toBe(false);
    expect(flusher.started()).toBe(1); // the next flush, shared by the two latecomers
    await flusher.finishOne();
    expect([second.isDone(), third.isDone()]).toEqual([true, true]);
    expect(group.flushCount).toBe(2);
  });

  it('does not flush when nothing changed since the last flush began', async () => {
    const flusher = slowFlusher();
    let changes = 5;
    const group = new GroupCommit({ flush: flusher.flush, changes: () => changes, onFlushFailed: () => {} });
    await group.whenDurable();
    expect(flusher.started()).toBe(0);
    changes = 6;
    const waiting = settled(group.whenDurable());
    expect(flusher.started()).toBe(1);
    await flusher.finishOne();
    expect(waiting.isDone()).toBe(true);
    expect(group.isDurable).toBe(true);
  });

  it('reports a failed flush once and refuses to call anything durable afterwards', async () => {
    const failures: unknown[] = [];
    const group = new GroupCommit({
      flush: () => Promise.reject(new Error('EIO')),
      changes: () => 1,
      onFlushFailed: (err) => failures.push(err),
    });
    await expect(group.durable()).rejects.toThrow('EIO');
    await expect(group.durable()).rejects.toThrow('EIO');
    expect(failures).toHaveLength(1);
    expect(group.isDurable).toBe(false);
  });

  it('lets no payment call reach the provider before the commits before it are flushed', async () => {
    const flusher = slowFlusher();
    const calls: string[] = [];
    const provider = {
      name: 'recording',
      createIntent: async () => {
        calls.push('createIntent');
        return { ok: true };
      },
      confirm: async () => {
        calls.push('confirm');
        return { ok: true };
      },
      refund: async () => {
        calls.push('refund');
        return { ok: true };
      },
      retrieve: async () => ({ ok: true }),
      parseWebhook: () => ({ ok: false, message: 'unused' }),
    } as unknown as PaymentProvider;
    const group = new GroupCommit({ flush: flusher.flush, changes: () => 1, onFlushFailed: () => {} });
    const payments = afterDurable(provider, () => group.durable());
    const creating = settled(payments.createIntent({} as never));
    const confirming = settled(payments.confirm({} as never));
    const refunding = settled(payments.refund({} as never));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([]);
    await flusher.finishOne();
    await flusher.finishOne();
    expect(calls.sort()).toEqual(['confirm', 'createIntent', 'refund']);
    expect([creating.isDone(), confirming.isDone(), refunding.isDone()]).toEqual([true, true, true]);
  });

  // One channel at a time: a delivery on the other channel would ask for a flush that covers this one's
  // claim too, and a message that skipped its own wait could leave after that flush by luck.
  it.each(['email', 'sms'] as const)(
    'hands no %s to its transport before the flush that covers its claim',
    async (channel) => {
      const flusher = slowFlusher();
      const db = openAppDb(':memory:');
      const store = new SqliteStore(db);
      const totalChanges = db.prepare('SELECT total_changes()').pluck();
      const group = new GroupCommit({
        flush: flusher.flush,
        changes: () => totalChanges.get() as number,
        onFlushFailed: () => {},
      });
      const [smtp, sms] = await Promise.all([startTestSmtp(), startSmsWebhook()]);
      const notifier = startNotifier({
        store,
        config: {
          SMTP_URL: smtp.url,
          SMS_WEBHOOK_URL: sms.url,
          MAIL_FROM: 'BoxOffice <tickets@boxoffice.test>',
          REDIS_URL: undefined,
        },
        logger: createLogger('silent'),
        relayPollMs: 20,
        durable: () => group.whenDurable(),
      });
      const arrived = () => smtp.messages.length + sms.texts.length;
      try {
        await insertUser(store, 'usr_1', { phone: '+919812300042' });
        const id = await store.transaction((tx) =>
          enqueueNotification(tx, {
            userId: 'usr_1',
            bookingId: 'bkg_1',
            channel,
            template: 'booking_confirmed',
            recipient: channel === 'email' ? 'asha@example.com' : '+919812300042',
            data: BOOKING_DATA,
            sendAt: Date.now(),
          }),
        );
        await notifier.relayNow();
        // Nothing else here asks for a flush: the delivery's own wait starts it, after the claim.
        const deadline = Date.now() + 10_000;
        while (flusher.started() === 0 && arrived() === 0 && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 5));
        const claimed = await store.get<{ attempts: number }>(
          'SELECT attempts FROM notifications WHERE id = ?',
          [id],
        );
        expect({ arrived: arrived(), flushes: flusher.started(), attempts: claimed?.attempts }).toEqual({
          arrived: 0,
          flushes: 1,
          attempts: 1,
        });
        await flusher.finishOne();
        while (arrived() === 0 && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 5));
        const messages =
          channel === 'email'
            ? smtp.messages.map((m) => m.headers.get('x-notification-id'))
            : sms.texts.map((t) => t.notificationId);
        expect(messages).toEqual([id]);
      } finally {
        while (flusher.started() > 0) await flusher.finishOne();
        await notifier.stop();
        await Promise.all([smtp.close(), sms.close()]);
        db.close();
      }
    },
  );

  it('holds back an HTTP answer that reports a change until its flush is done', async () => {
    const flusher = slowFlusher();
    const server = await startTestServer({}, { appDbFlush: flusher.flush });
    try {
      const registering = server.api('POST', '/api/register', {
        body: { name: 'Asha', email: 'asha@example.com', password: 'a long enough passphrase' },
      });
      const answer = settled(registering);
      while (flusher.started() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // The account is committed, the flush is running: the client has not heard back.
      expect(answer.isDone()).toBe(false);
      while (flusher.started() > 0) await flusher.finishOne();
      expect((await registering).status).toBe(201);
    } finally {
      while (flusher.started() > 0) await flusher.finishOne();
      await server.destroy();
    }
  });
});

/** What the app database held when a flush started: what that flush makes durable. */
interface Committed {
  bookings: Map<string, string>;
  /** Notifications a delivery has claimed: the claim commits before the message may leave. */
  claimed: Set<string>;
}

const NOTHING_COMMITTED: Committed = { bookings: new Map(), claimed: new Set() };

/**
 * The app database's flusher for a whole server. Open, a flush finishes at once; held, each waits until
 * the test finishes it. At its start each reads what is committed (on a connection of the test's own),
 * so the test knows what every finished flush made durable.
 */
function heldFlusher() {
  let read: () => Committed = () => NOTHING_COMMITTED;
  let isHeld = false;
  const waiting: (() => void)[] = [];
  const made: Committed[] = [];
  return {
    flush: () => {
      const covers = read();
      const finish = () => made.push(covers);
      if (!isHeld) {
        finish();
        return Promise.resolve();
      }
      return new Promise<void>((resolve) =>
        waiting.push(() => {
          finish();
          resolve();
        }),
      );
    },
    /** Reads the server's app database from here on (it exists once the server has started). */
    watch(server: TestServer): () => void {
      const db = new Database(path.join(server.dataDir, 'app.db'), { readonly: true, fileMustExist: true });
      const bookings = db.prepare<[], { id: string; status: string }>('SELECT id, status FROM bookings');
      const claimed = db.prepare<[], string>('SELECT id FROM notifications WHERE attempts > 0').pluck();
      read = () => ({
        bookings: new Map(bookings.all().map((b) => [b.id, b.status])),
        claimed: new Set(claimed.all()),
      });
      return () => {
        read = () => NOTHING_COMMITTED;
        db.close();
      };
    },
    hold: () => {
      isHeld = true;
    },
    /** Finishes every waiting flush, and the later ones at once. */
    open: () => {
      isHeld = false;
      for (const finish of waiting.splice(0)) finish();
    },
    finishOne: () => waiting.shift()?.(),
    /** Whether a flush that finished started when `holds` was true of the committed rows. */
    hasMadeDurable: (holds: (committed: Committed) => boolean) => made.some(holds),
  };
}

/** Something the server lets out: an HTTP answer, a message at its transport. */
interface Leaving {
  what: string;
  hasLeft: () => boolean;
  /** What must be durable before it leaves; called once it has left. */
  tellsOf: (committed: Committed) => boolean;
}

const STEP_MS = 5;
const WAIT_MS = 20_000;

/**
 * Finishes held flushes one at a time until everything watched has left. Before each finish, whatever
 * has left did so after an earlier finish (nothing runs between the check and the finish), so it must
 * be covered by a flush already finished.
 */
async function finishFlushesUntilAllLeft(flusher: ReturnType<typeof heldFlusher>, leaving: Leaving[]) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    for (const one of leaving)
      if (one.hasLeft())
        expect(flusher.hasMadeDurable(one.tellsOf), `${one.what} left before its flush`).toBe(true);
    if (leaving.every((one) => one.hasLeft())) return;
    if (Date.now() > deadline)
      throw new Error(`never left: ${leaving.filter((one) => !one.hasLeft()).map((one) => one.what)}`);
    flusher.finishOne();
    await new Promise((resolve) => setTimeout(resolve, STEP_MS));
  }
}

function answered<T>(promise: Promise<T>): { hasLeft: () => boolean; value: () => T } {
  let result: { value: T } | undefined;
  promise.then((value) => {
    result = { value };
  });
  return {
    hasLeft: () => result !== undefined,
    value: () => {
      if (!result) throw new Error('no answer yet');
      return result.value;
    },
  };
}

interface Booked {
  server: TestServer;
  flusher: ReturnType<typeof heldFlusher>;
  smtp: TestSmtp;
  sms: TestSms;
  customer: Awaited<ReturnType<typeof newUser>>;
  showId: string;
}

/** A server with a held-able flusher, a real SMTP server and SMS gateway, a show and a customer. */
async function withBookingServer(run: (booked: Booked) => Promise<void>) {
  const flusher = heldFlusher();
  const [smtp, sms] = await Promise.all([startTestSmtp(), startSmsWebhook()]);
  const server = await startTestServer(
    {
      ...ADMIN_ENV,
      SMTP_URL: smtp.url,
      SMS_WEBHOOK_URL: sms.url,
      MAIL_FROM: 'BoxOffice <tickets@boxoffice.test>',
    },
    { appDbFlush: flusher.flush },
  );
  const stopWatching = flusher.watch(server);
  try {
    const adminToken = await login(server.api, ADMIN.email, ADMIN.password);
    const { showId } = await createShow(server.api, { adminToken });
    const customer = await newUser(server.api, { name: 'Asha Rao', phone: '+919812300042' });
    await run({ server, flusher, smtp, sms, customer, showId });
  } finally {
    flusher.open();
    stopWatching();
    await server.destroy();
    await Promise.all([smtp.close(), sms.close()]);
  }
}

/**
 * The booking's confirmation at its transports: the email and the text, each by its notification id.
 * Either may leave after a flush the other's delivery asked for; that each delivery waits for one itself
 * is what the one-channel tests above show.
 */
function confirmationLeaving({ smtp, sms, customer }: Booked, bookingId: string): Leaving[] {
  const mail = () => smtp.messages.find((m) => m.to.includes(customer.email));
  const text = () => sms.texts.find((t) => t.to === customer.phone);
  const claimedAndConfirmed = (id: string | undefined) => (committed: Committed) =>
    id !== undefined && committed.claimed.has(id) && committed.bookings.get(bookingId) === 'confirmed';
  return [
    {
      what: 'the confirmation email',
      hasLeft: () => mail() !== undefined,
      tellsOf: (committed) => claimedAndConfirmed(mail()?.headers.get('x-notification-id'))(committed),
    },
    {
      what: 'the confirmation text',
      hasLeft: () => text() !== undefined,
      tellsOf: (committed) => claimedAndConfirmed(text()?.notificationId)(committed),
    },
  ];
}

describe('group commit: nothing leaves the server before its flush', () => {
  it("holds back a booking's and a payment's answers, and the confirmation's email and text, until flushes cover them", async () => {
    await withBookingServer(async (booked) => {
      const { server, flusher, customer, showId } = booked;
      const hold = await server.api('POST', `/api/shows/${showId}/holds`, {
        body: { seats: ['A1', 'A2'] },
        token: customer.token,
      });
      expect(hold.status).toBe(201);
      flusher.hold();
      const booking = answered(
        server.api('POST', '/api/bookings', {
          body: { holdId: hold.body.hold.id, paymentMethod: 'card' },
          token: customer.token,
        }),
      );
      await finishFlushesUntilAllLeft(flusher, [
        {
          what: "the booking's answer",
          hasLeft: booking.hasLeft,
          tellsOf: (committed) =>
            committed.bookings.get(booking.value().body.booking.id) === 'pending_payment',
        },
      ]);
      const bookingId: string = booking.value().body.booking.id;
      expect(booking.value().status).toBe(201);

      const payment = answered(
        server.api('POST', '/api/payments', {
          body: { bookingId, method: 'card', card: GOOD_CARD },
          token: customer.token,
        }),
      );
      await finishFlushesUntilAllLeft(flusher, [
        {
          what: "the payment's answer",
          hasLeft: payment.hasLeft,
          tellsOf: (committed) => committed.bookings.get(bookingId) === 'confirmed',
        },
        ...confirmationLeaving(booked, bookingId),
      ]);
      expect(payment.value().status).toBe(200);
      expect(payment.value().body.booking.status).toBe('confirmed');
    });
  });

  it("holds back a payment webhook's acknowledgement until a flush covers what it applied", async () => {
    await withBookingServer(async (booked) => {
      const { server, flusher, customer, showId } = booked;
      const created = await server.api('POST', '/api/bookings', {
        body: { showId, seats: ['B1'], paymentMethod: 'upi' },
        token: customer.token,
      });
      expect(created.status).toBe(201);
      const bookingId: string = created.body.booking.id;
      const paid = await server.api('POST', '/api/payments', {
        body: { bookingId, method: 'upi', upiId: 'pending@upi' },
        token: customer.token,
      });
      expect(paid.status).toBe(202);
      // The bank settles the UPI collect request and tells the service by webhook.
      const bank = server.deps.payments as SimulatedPaymentProvider;
      const { payload, signature } = await bank.settle(created.body.payment.intentId, 'succeeded');
      flusher.hold();
      const acknowledgement = answered(
        server.api('POST', '/api/payments/webhook', {
          raw: payload,
          headers: { 'boxoffice-signature': signature },
        }),
      );
      await finishFlushesUntilAllLeft(flusher, [
        {
          what: "the webhook's acknowledgement",
          hasLeft: acknowledgement.hasLeft,
          tellsOf: (committed) => committed.bookings.get(bookingId) === 'confirmed',
        },
        ...confirmationLeaving(booked, bookingId),
      ]);
      expect(acknowledgement.value().status).toBe(200);
    });
  });
});
