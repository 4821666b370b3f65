/**
 * Notifications without Redis: the outbox relay, the in-process timer queue and the delivery handler,
 * against a real SMTP server and a real SMS webhook on loopback.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDeliverer } from '../../src/jobs/deliver.js';
import { createEmailSender } from '../../src/jobs/email.js';
import { type Notifier, type NotifierOptions, startNotifier } from '../../src/jobs/notifier.js';
import {
  cancelBookingReminders,
  enqueueNotification,
  listNotifications,
  type NotificationInput,
} from '../../src/jobs/outbox.js';
import { LogSmsSender } from '../../src/jobs/sms.js';
import { createLogger } from '../../src/logger.js';
import { type AppDb, openAppDb } from '../../src/persistence/app-db.js';
import { SqliteStore } from '../../src/persistence/store.js';
import { BOOKING_DATA } from '../helpers/notifications.js';

const logger = createLogger('silent');
const dirs: string[] = [];
const notifiers: Notifier[] = [];
const mail: { raw: string; id: string | undefined }[] = [];
const texts: { to: string; body: string }[] = [];
let smtp: SMTPServer;
let smtpUrl: string;
let smsServer: http.Server;
let smsUrl: string;

function sentTo(id: string) {
  return mail.filter((m) => m.id === id);
}

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function tempDb(): AppDb {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-notify-'));
  dirs.push(dir);
  const db = openAppDb(path.join(dir, 'app.db'));
  const at = new Date().toISOString();
  db.prepare(
    `INSERT INTO users (id, name, email, phone, password_hash, role, created_at, updated_at)
     VALUES ('usr_1', 'Asha', 'asha@example.com', '+919876543210', 'x', 'user', ?, ?)`,
  ).run(at, at);
  return db;
}

function start(db: AppDb, overrides: Partial<NotifierOptions> = {}): Notifier {
  const notifier = startNotifier({
    // enqueueNotification still writes through `db` here, so both go through the same connection.
    store: new SqliteStore(db),
    config: {
      SMTP_URL: smtpUrl,
      SMS_WEBHOOK_URL: smsUrl,
      MAIL_FROM: 'BoxOffice <t@boxoffice.test>',
      REDIS_URL: undefined,
    },
    logger,
    retry: { attempts: 3, backoffMs: 100 },
    relayPollMs: 50,
    sweepIntervalMs: 200,
    ...overrides,
  });
  notifiers.push(notifier);
  return notifier;
}

/** One store per database: its transactions queue behind each other (SqliteStore's lock). */
const stores = new WeakMap<AppDb, SqliteStore>();
function storeOf(db: AppDb): SqliteStore {
  let store = stores.get(db);
  if (!store) {
    store = new SqliteStore(db);
    stores.set(db, store);
  }
  return store;
}

function enqueue(db: AppDb, input: Partial<NotificationInput> = {}): Promise<string> {
  return storeOf(db).transaction((tx) =>
    enqueueNotification(tx, {
      userId: 'usr_1',
      bookingId: 'bkg_1',
      channel: 'email',
      template: 'booking_confirmed',
      recipient: 'asha@example.com',
      data: BOOKING_DATA,
      sendAt: new Date().toISOString(),
      ...input,
    }),
  );
}

function row(db: AppDb, id: string) {
  return db
    .prepare('SELECT status, attempts, last_error, send_at, sent_at FROM notifications WHERE id = ?')
    .get(id) as {
    status: string;
    attempts: number;
    last_error: string | null;
    send_at: string;
    sent_at: string | null;
  };
}

function attempts(db: AppDb, id: string) {
  return db
    .prepare('SELECT at, ok, error FROM notification_attempts WHERE notification_id = ? ORDER BY id')
    .all(id) as {
    at: string;
    ok: number;
    error: string | null;
  }[];
}

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        mail.push({ raw, id: /^X-Notification-Id: (\S+)/im.exec(raw)?.[1] });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
  smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
  smsServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      texts.push(JSON.parse(body));
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => smsServer.listen(0, '127.0.0.1', () => resolve()));
  smsUrl = `http://127.0.0.1:${(smsServer.address() as AddressInfo).port}/sms`;
});

afterEach(async () => {
  await Promise.all(notifiers.splice(0).map((n) => n.stop()));
});

afterAll(async () => {
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await new Promise<void>((resolve) => smsServer.close(() => resolve()));
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('notifications without Redis', () => {
  it('emails the booking confirmation with text, HTML and the ticket QR inline', async () => {
    const db = tempDb();
    const notifier = start(db);
    const id = await enqueue(db);
    await notifier.relayNow();
    await waitFor(() => row(db, id).status === 'sent');
    const [message, ...more] = sentTo(id);
    expect(more).toHaveLength(0);
    expect(message?.raw).toMatch(/^Subject: Your tickets for The Long Night/m);
    expect(message?.raw).toMatch(/Content-Type: text\/plain/);
    expect(message?.raw).toMatch(/Content-Type: text\/html/);
    expect(message?.raw).toMatch(/Content-Type: image\/png/);
    expect(message?.raw).toMatch(/Content-ID: <ticket-qr@boxoffice>/);
    expect(message?.raw).toMatch(/cid:ticket-qr@boxoffice/);
    expect(message?.raw).toContain('C4, C5');
    expect(message?.raw).toContain('bkg_1');
    expect(attempts(db, id)).toMatchObject([{ ok: 1, error: null }]);
    expect(row(db, id)).toMatchObject({ status: 'sent', attempts: 1, last_error: null });
    expect(await notifier.lagSeconds()).toBe(0);
  });

  it('queues a booking notification once however often the saga runs', async () => {
    const db = tempDb();
    const first = await enqueue(db);
    const second = await enqueue(db);
    expect(second).toBe(first);
    expect(db.prepare('SELECT COUNT(*) FROM outbox').pluck().get()).toBe(1);
    await expect(enqueueNotification(storeOf(db), { ...({} as NotificationInput) })).rejects.toThrow(
      /inside the caller/,
    );
  });

  it('texts the confirmation through the SMS webhook', async () => {
    const db = tempDb();
    const notifier = start(db);
    const id = await enqueue(db, { channel: 'sms', recipient: '+919876543210' });
    await notifier.relayNow();
    await waitFor(() => row(db, id).status === 'sent');
    const text = texts.find((t) => t.body.includes('bkg_1'));
    expect(text?.to).toBe('+919876543210');
    expect(text?.body).toMatch(/confirmed.*The Long Night.*Seats C4, C5/);
  });

  it('sends a reminder at its time, and not once the booking cancelled its reminders', async () => {
    const db = tempDb();
    const notifier = start(db);
    const sendAtMs = Date.now() + 1_200;
    const kept = await enqueue(db, { bookingId: 'bkg_kept', template: 'show_reminder', sendAt: sendAtMs });
    const withdrawn = await enqueue(db, {
      bookingId: 'bkg_gone',
      template: 'show_reminder',
      sendAt: sendAtMs,
    });
    await notifier.relayNow();
    await storeOf(db).transaction((tx) => cancelBookingReminders(tx, 'bkg_gone'));
    await notifier.relayNow();
    expect(sentTo(kept)).toHaveLength(0);
    await waitFor(() => row(db, kept).status === 'sent');
    expect(Date.parse(row(db, kept).sent_at ?? '')).toBeGreaterThanOrEqual(sendAtMs);
    await new Promise((r) => setTimeout(r, 500));
    expect(sentTo(withdrawn)).toHaveLength(0);
    expect(row(db, withdrawn)).toMatchObject({ status: 'cancelled', attempts: 0 });
    expect(sentTo(kept)[0]?.raw).toMatch(/^Subject: Reminder: The Long Night starts soon/m);
  });

  it('keeps reminders beyond the timer window in the table and sends them when they come due', async () => {
    const db = tempDb();
    const notifier = start(db, { inProcessWindowMs: 500, sweepIntervalMs: 100 });
    const sendAtMs = Date.now() + 1_500;
    const id = await enqueue(db, { bookingId: 'bkg_far', template: 'show_reminder', sendAt: sendAtMs });
    await notifier.relayNow();
    await waitFor(() => row(db, id).status === 'sent');
    expect(Date.parse(row(db, id).sent_at ?? '')).toBeGreaterThanOrEqual(sendAtMs);
    expect(sentTo(id)).toHaveLength(1);
  });

  it('delivers notifications still queued from before a restart', async () => {
    const db = tempDb();
    const id = await enqueue(db, { bookingId: 'bkg_restart' });
    // The previous process relayed the row, then died before its timer fired.
    db.prepare('UPDATE outbox SET relayed_at = ?').run(new Date().toISOString());
    start(db);
    await waitFor(() => row(db, id).status === 'sent');
    expect(sentTo(id)).toHaveLength(1);
  });

  it('retries a failing delivery with backoff, records each attempt, and ends failed', async () => {
    const db = tempDb();
    const notifier = start(db, {
      config: {
        SMTP_URL: 'smtp://127.0.0.1:1',
        SMS_WEBHOOK_URL: smsUrl,
        MAIL_FROM: 'x@y.z',
        REDIS_URL: undefined,
      },
    });
    const id = await enqueue(db, { bookingId: 'bkg_down' });
    await notifier.relayNow();
    await waitFor(() => row(db, id).status === 'failed');
    const tries = attempts(db, id);
    expect(tries).toHaveLength(3);
    expect(tries.every((t) => t.ok === 0 && (t.error ?? '').length > 0)).toBe(true);
    const gaps = tries.slice(1).map((t, i) => Date.parse(t.at) - Date.parse(tries[i]?.at ?? ''));
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(190);
    expect(row(db, id)).toMatchObject({ status: 'failed', attempts: 3 });
    expect(row(db, id).last_error).toBeTruthy();
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts(db, id)).toHaveLength(3);
  });

  it('never sends twice when a delivered job runs again', async () => {
    const db = tempDb();
    const notifier = start(db);
    const id = await enqueue(db, { bookingId: 'bkg_twice' });
    await notifier.relayNow();
    await waitFor(() => row(db, id).status === 'sent');
    // The relay sees the row again (as after a crash before it marked it), and the handler runs again.
    db.prepare('UPDATE outbox SET relayed_at = NULL').run();
    await notifier.relayNow();
    const deliver = createDeliverer({
      store: new SqliteStore(db),
      email: createEmailSender({ smtpUrl, from: 'x@y.z', logger }),
      sms: new LogSmsSender(logger),
      logger,
    });
    expect(await deliver(id)).toBe('skipped');
    await new Promise((r) => setTimeout(r, 300));
    expect(sentTo(id)).toHaveLength(1);
    expect(row(db, id).attempts).toBe(1);
  });

  it('lists a user’s notifications newest first with masked recipients', async () => {
    const db = tempDb();
    const ids = await Promise.all(
      [0, 1, 2].map((i) =>
        enqueue(db, {
          bookingId: `bkg_list${i}`,
          channel: i === 1 ? 'sms' : 'email',
          recipient: i === 1 ? '+919876543210' : 'asha@example.com',
          now: Date.now() + i,
        }),
      ),
    );
    const first = await listNotifications(new SqliteStore(db), 'usr_1', { limit: 2 });
    expect(first.notifications.map((n) => n.id)).toEqual([ids[2], ids[1]]);
    expect(first.notifications[0]).toMatchObject({
      recipient: 'a***@example.com',
      status: 'queued',
      attempts: 0,
    });
    expect(first.notifications[1]?.recipient).toBe('+91******3210');
    const second = await listNotifications(new SqliteStore(db), 'usr_1', {
      limit: 2,
      cursor: first.nextCursor ?? '',
    });
    expect(second.notifications.map((n) => n.id)).toEqual([ids[0]]);
    expect(second.nextCursor).toBeNull();
    expect((await listNotifications(new SqliteStore(db), 'usr_other', { limit: 10 })).notifications).toEqual(
      [],
    );
  });
});
