/**
 * Notifications on BullMQ with a real redis-server (killed and restarted mid-stream), a real SMTP server
 * and a real SMS webhook on loopback.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NOTIFICATIONS_QUEUE } from '../../src/jobs/bullmq-queue.js';
import { type Notifier, type NotifierOptions, startNotifier } from '../../src/jobs/notifier.js';
import {
  cancelBookingReminders,
  enqueueNotification,
  type NotificationInput,
} from '../../src/jobs/outbox.js';
import { createLogger } from '../../src/logger.js';
import { type AppDb, openAppDb } from '../../src/persistence/app-db.js';
import { SqliteStore } from '../../src/persistence/store.js';
import { BOOKING_DATA } from '../helpers/notifications.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

const logger = createLogger('silent');
const dirs: string[] = [];
const notifiers: Notifier[] = [];
const mail: { raw: string; id: string | undefined }[] = [];
const texts: { to: string; body: string }[] = [];
let smtp: SMTPServer;
let smtpUrl: string;
let smsServer: http.Server;
let smsUrl: string;
let redis: TestRedis;
let inspector: Queue;
const prefix = `bo-test-${process.pid}-${Date.now()}`;

function sentTo(id: string) {
  return mail.filter((m) => m.id === id);
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The job's BullMQ state once it is `state`, or the last state seen when `timeoutMs` ran out. */
async function jobStateOnceIn(id: string, state: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = String(await (await inspector.getJob(id))?.getState());
    if (seen === state || Date.now() > deadline) return seen;
    await new Promise((r) => setTimeout(r, 50));
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
      REDIS_URL: redis.url,
    },
    redisPrefix: prefix,
    sweepOverdueGraceMs: 1_000,
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

/** Waits until the relay has handed every outbox row to BullMQ (it backs off until Redis is connected). */
async function relayed(db: AppDb): Promise<void> {
  await waitFor(() => db.prepare('SELECT COUNT(*) FROM outbox WHERE relayed_at IS NULL').pluck().get() === 0);
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
  redis = await startTestRedis();
  inspector = new Queue(NOTIFICATIONS_QUEUE, {
    connection: { url: redis.url, maxRetriesPerRequest: null },
    prefix,
  });
  inspector.on('error', () => undefined);
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
  await inspector.close().catch(() => undefined);
  await redis.stop();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await new Promise<void>((resolve) => smsServer.close(() => resolve()));
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('notifications on BullMQ and Redis', () => {
  it('emails the confirmation with its QR and texts it through the webhook', async () => {
    const db = tempDb();
    const notifier = start(db);
    expect(notifier.mode).toBe('bullmq');
    const emailId = await enqueue(db);
    const smsId = await enqueue(db, { channel: 'sms', recipient: '+919876543210' });
    await waitFor(() => row(db, emailId).status === 'sent' && row(db, smsId).status === 'sent');
    const [message, ...more] = sentTo(emailId);
    expect(more).toHaveLength(0);
    expect(message?.raw).toMatch(/Content-Type: text\/plain/);
    expect(message?.raw).toMatch(/Content-Type: text\/html/);
    expect(message?.raw).toMatch(/Content-ID: <ticket-qr@boxoffice>/);
    expect(texts.find((t) => t.body.includes('bkg_1'))?.to).toBe('+919876543210');
    // The row is read on the service's own connection, so it can show 'sent' a turn before the commit
    // that the job's completion waits for: wait for the job, as the row was waited for.
    expect(await jobStateOnceIn(emailId, 'completed', 10_000)).toBe('completed');
  });

  it('sends a reminder at its time, and removes the job of a cancelled booking’s reminder', async () => {
    const db = tempDb();
    const notifier = start(db);
    const sendAtMs = Date.now() + 1_500;
    const kept = await enqueue(db, { bookingId: 'bkg_kept', template: 'show_reminder', sendAt: sendAtMs });
    const withdrawn = await enqueue(db, {
      bookingId: 'bkg_gone',
      template: 'show_reminder',
      sendAt: sendAtMs,
    });
    await relayed(db);
    expect(await (await inspector.getJob(withdrawn))?.getState()).toBe('delayed');
    await storeOf(db).transaction((tx) => cancelBookingReminders(tx, 'bkg_gone'));
    await notifier.relayNow();
    expect(await inspector.getJob(withdrawn)).toBeUndefined();
    await waitFor(() => row(db, kept).status === 'sent');
    expect(Date.parse(row(db, kept).sent_at ?? '')).toBeGreaterThanOrEqual(sendAtMs);
    await new Promise((r) => setTimeout(r, 500));
    expect(sentTo(kept)).toHaveLength(1);
    expect(sentTo(withdrawn)).toHaveLength(0);
    expect(row(db, withdrawn).status).toBe('cancelled');
  });

  it('delivers every notification exactly once across a Redis crash and restart', async () => {
    const db = tempDb();
    const notifier = start(db);
    const before = await Promise.all(
      Array.from({ length: 15 }, (_, i) => enqueue(db, { bookingId: `bkg_before${i}` })),
    );
    // Delayed jobs that are only in Redis when it dies: the restart (no persistence) loses them.
    const lost = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        enqueue(db, { bookingId: `bkg_lost${i}`, template: 'show_reminder', sendAt: Date.now() + 1_500 }),
      ),
    );
    await relayed(db);
    expect(await (await inspector.getJob(lost[0] ?? ''))?.getState()).toBe('delayed');
    await redis.kill();
    const during = await Promise.all(
      Array.from({ length: 15 }, (_, i) => enqueue(db, { bookingId: `bkg_during${i}` })),
    );
    await notifier.relayNow();
    await new Promise((r) => setTimeout(r, 700));
    expect(await notifier.lagSeconds()).toBeGreaterThan(0);
    expect(db.prepare('SELECT COUNT(*) FROM outbox WHERE relayed_at IS NULL').pluck().get()).toBeGreaterThan(
      0,
    );
    await redis.restart();
    const all = [...before, ...lost, ...during];
    await waitFor(() => all.every((id) => row(db, id).status === 'sent'), 30_000);
    await new Promise((r) => setTimeout(r, 1_000));
    for (const id of all) expect(sentTo(id), id).toHaveLength(1);
    await relayed(db);
    expect(await notifier.lagSeconds()).toBe(0);
  });

  it('goes back to its normal pace once Redis returns after an outage long enough to back off', async () => {
    const db = tempDb();
    // The sweep would re-add an overdue row after its grace; here only the relay may deliver.
    const notifier = start(db, { sweepOverdueGraceMs: 60_000 });
    const pace0 = await enqueue(db, { bookingId: 'bkg_pace0' });
    await waitFor(() => row(db, pace0).status === 'sent');
    await redis.kill();
    const during = await enqueue(db, { bookingId: 'bkg_pace1' });
    // The relay has failed for seconds: its backoff between tries has grown past 2 s.
    await waitFor(async () => (await notifier.lagSeconds()) >= 3.5, 10_000);
    await redis.restart();
    await waitFor(() => row(db, during).status === 'sent');
    const writtenAtMs = Date.now();
    const after = await enqueue(db, { bookingId: 'bkg_pace2' });
    await waitFor(() => row(db, after).status === 'sent', 10_000);
    // The relay polls every 50 ms again; it does not sleep out the backoff it had reached.
    expect(Date.now() - writtenAtMs).toBeLessThan(1_500);
    expect(sentTo(during)).toHaveLength(1);
    expect(sentTo(after)).toHaveLength(1);
  });

  it('retries a failing delivery with backoff, records each attempt, and keeps the failed job', async () => {
    const db = tempDb();
    start(db, {
      config: {
        SMTP_URL: 'smtp://127.0.0.1:1',
        SMS_WEBHOOK_URL: smsUrl,
        MAIL_FROM: 'x@y.z',
        REDIS_URL: redis.url,
      },
    });
    const id = await enqueue(db, { bookingId: 'bkg_down' });
    await waitFor(() => row(db, id).status === 'failed');
    const tries = attempts(db, id);
    expect(tries).toHaveLength(3);
    expect(tries.every((t) => t.ok === 0 && (t.error ?? '').length > 0)).toBe(true);
    const gaps = tries.slice(1).map((t, i) => Date.parse(t.at) - Date.parse(tries[i]?.at ?? ''));
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(190);
    expect(row(db, id)).toMatchObject({ status: 'failed', attempts: 3 });
    expect(await jobStateOnceIn(id, 'failed', 10_000)).toBe('failed');
  });

  it('revives a job that spent its retries without a delivery attempt, once the row is free', async () => {
    const db = tempDb();
    const id = await enqueue(db, { bookingId: 'bkg_leased' });
    // Another run holds the row's lease: every attempt of the job is refused before sending anything.
    db.prepare('UPDATE notifications SET locked_until = ? WHERE id = ?').run(
      new Date(Date.now() + 60_000).toISOString(),
      id,
    );
    start(db);
    expect(await jobStateOnceIn(id, 'failed', 10_000)).toBe('failed');
    expect(row(db, id)).toMatchObject({ status: 'queued', attempts: 0 });
    // The lease ends (its holder died); the overdue sweep finds the row and revives the job.
    db.prepare('UPDATE notifications SET locked_until = NULL WHERE id = ?').run(id);
    await waitFor(() => row(db, id).status === 'sent');
    expect(sentTo(id)).toHaveLength(1);
    expect(row(db, id).attempts).toBe(1);
  });

  it('never sends twice when a completed job is retried or its row relayed again', async () => {
    const db = tempDb();
    const notifier = start(db);
    const id = await enqueue(db, { bookingId: 'bkg_twice' });
    await waitFor(() => row(db, id).status === 'sent');
    await relayed(db);
    expect(await jobStateOnceIn(id, 'completed', 10_000)).toBe('completed');
    const job = await inspector.getJob(id);
    await job?.retry('completed');
    db.prepare('UPDATE outbox SET relayed_at = NULL').run();
    await notifier.relayNow();
    expect(await jobStateOnceIn(id, 'completed', 5_000)).toBe('completed');
    expect((await inspector.getJob(id))?.returnvalue).toBe('skipped');
    expect(sentTo(id)).toHaveLength(1);
    expect(row(db, id).attempts).toBe(1);
  });
});
