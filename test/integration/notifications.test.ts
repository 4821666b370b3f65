/**
 * Notifications end to end through the real server: bookings and payments over HTTP, the confirmation
 * received by a real SMTP server and a real SMS webhook on loopback, reminders at their time and withdrawn
 * on cancellation, the admin route, and GET /api/me/notifications. Run embedded (timers in the process)
 * and on BullMQ with a real redis-server, which is also killed while bookings are confirmed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENV, ADMIN as ADMIN_LOGIN, createShow, login, newUser } from '../helpers/catalog.js';
import { indianClockTime } from '../helpers/notifications.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type ReceivedSms, startSmsWebhook, type TestSms } from '../helpers/sms.js';
import { type ReceivedMail, startTestSmtp, type TestSmtp } from '../helpers/smtp.js';

const CARD = { number: '4242 4242 4242 4242', expiry: '12/34', cvc: '123' };
/** REMINDER_MINUTES_BEFORE for these servers: the shortest lead the setting allows above zero. */
const REMINDER_MINUTES = 1;
const WAIT_MS = 15_000;
/** How late after its time a reminder may arrive: timers and BullMQ's delayed jobs are this precise. */
const ON_TIME_MS = 3_000;

/** Polls until `check` returns a value (not undefined/false), or fails naming what it waited for. */
async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Asserts `check` holds throughout `ms` (polled): for things that must not happen. */
async function holdsFor(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!(await check())) throw new Error(`no longer true: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface NotificationItem {
  id: string;
  channel: 'email' | 'sms';
  template: string;
  status: string;
  recipient: string;
  bookingId: string | null;
  sendAt: string;
  sentAt: string | null;
  attempts: number;
  lastError: string | null;
  deliveryAttempts: { at: string; ok: boolean; error: string | null }[];
  createdAt: string;
}

let phoneCounter = 0;
/** A distinct phone per user, so each text can be told apart at the webhook. */
function nextPhone(): string {
  phoneCounter++;
  return `+9198${String(process.pid % 1000).padStart(3, '0')}${String(phoneCounter).padStart(5, '0')}`;
}

interface Harness {
  server: TestServer;
  smtp: TestSmtp;
  sms: TestSms;
  redis: TestRedis | undefined;
  adminToken: string;
}

async function startHarness(withRedis: boolean): Promise<Harness> {
  const [smtp, sms, redis] = await Promise.all([
    startTestSmtp(),
    startSmsWebhook(),
    withRedis ? startTestRedis() : Promise.resolve(undefined),
  ]);
  const server = await startTestServer({
    ...ADMIN_ENV,
    SMTP_URL: smtp.url,
    SMS_WEBHOOK_URL: sms.url,
    MAIL_FROM: 'BoxOffice <tickets@boxoffice.test>',
    REMINDER_MINUTES_BEFORE: String(REMINDER_MINUTES),
    CANCELLATION_CUTOFF_MINUTES: '0',
    ...(redis ? { REDIS_URL: redis.url } : {}),
  });
  const adminToken = await login(server.api, ADMIN_LOGIN.email, ADMIN_LOGIN.password);
  return { server, smtp, sms, redis, adminToken };
}

async function stopHarness(h: Harness | undefined): Promise<void> {
  if (!h) return;
  await h.server.destroy();
  await Promise.all([h.smtp.close(), h.sms.close(), h.redis?.stop()]);
}

async function customer(h: Harness, name: string) {
  return newUser(h.server.api, { name, phone: nextPhone() });
}

type Customer = Awaited<ReturnType<typeof customer>>;

/** Holds the seats, books them and pays by card, all over HTTP; returns the confirmed booking. */
async function bookAndPay(h: Harness, who: Customer, showId: string, seats: string[]) {
  const { api } = h.server;
  const hold = await api('POST', `/api/shows/${showId}/holds`, { body: { seats }, token: who.token });
  expect(hold.status, JSON.stringify(hold.body)).toBe(201);
  const created = await api('POST', '/api/bookings', {
    body: { holdId: hold.body.hold.id, paymentMethod: 'card' },
    token: who.token,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const paid = await api('POST', '/api/payments', {
    body: { bookingId: created.body.booking.id, method: 'card', card: CARD },
    token: who.token,
  });
  expect(paid.status, JSON.stringify(paid.body)).toBe(200);
  expect(paid.body.booking.status).toBe('confirmed');
  return paid.body.booking as {
    id: string;
    seats: string[];
    amount: { total: number; currency: string };
    ticket: { code: string };
  };
}

async function listFor(h: Harness, token: string): Promise<NotificationItem[]> {
  const res = await h.server.api('GET', '/api/me/notifications', { token });
  expect(res.status).toBe(200);
  return res.body.notifications;
}

function mailFor(h: Harness, notificationId: string): ReceivedMail[] {
  return h.smtp.messages.filter((m) => m.headers.get('x-notification-id') === notificationId);
}

function textsFor(h: Harness, notificationId: string): ReceivedSms[] {
  return h.sms.texts.filter((t) => t.notificationId === notificationId);
}

function pick(list: NotificationItem[], bookingId: string, template: string, channel: 'email' | 'sms') {
  return list.find((n) => n.bookingId === bookingId && n.template === template && n.channel === channel);
}

/** The booking's notifications of one template, once every one of them has `status`. */
async function waitForStatus(
  h: Harness,
  who: Customer,
  bookingId: string,
  template: string,
  status: string,
  timeoutMs = WAIT_MS,
): Promise<{ email: NotificationItem; sms: NotificationItem }> {
  return waitFor(
    `${template} of ${bookingId} to be ${status}`,
    async () => {
      const list = await listFor(h, who.token);
      const email = pick(list, bookingId, template, 'email');
      const sms = pick(list, bookingId, template, 'sms');
      return email?.status === status && sms?.status === status ? { email, sms } : undefined;
    },
    timeoutMs,
  );
}

function showStartingIn(h: Harness, seconds: number) {
  return createShow(h.server.api, { adminToken: h.adminToken, startsInMinutes: seconds / 60 });
}

/** GET /api/shows/:id: the show with its movie, as a customer sees it. */
async function getShow(h: Harness, showId: string): Promise<{ startTime: string; movie: { title: string } }> {
  const res = await h.server.api('GET', `/api/shows/${showId}`);
  expect(res.status).toBe(200);
  return res.body.show;
}

function notificationSuite(mode: 'embedded' | 'bullmq') {
  // The cases share one server and run side by side, as customers do; each has its own users and show.
  describe.concurrent(`notifications through the server (${mode})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(mode === 'bullmq');
    });
    afterAll(() => stopHarness(h));

    it('emails the confirmation with its details and ticket QR, texts it, and lists both as sent', async () => {
      const { showId } = await createShow(h.server.api, { adminToken: h.adminToken });
      const show = await getShow(h, showId);
      const title = show.movie.title;
      const asha = await customer(h, 'Asha Rao');
      const booking = await bookAndPay(h, asha, showId, ['B4', 'B5']);
      const { email, sms } = await waitForStatus(h, asha, booking.id, 'booking_confirmed', 'sent');

      const [mail, ...moreMail] = mailFor(h, email.id);
      expect(moreMail).toHaveLength(0);
      expect(mail?.to).toEqual([asha.email]);
      expect(mail?.subject).toBe(`Your tickets for ${title}`);
      const startsAt = indianClockTime(show.startTime);
      // 2 GOLD seats at ₹300.00 plus the 2% convenience fee.
      expect(booking.amount).toMatchObject({ total: 61_200, currency: 'INR' });
      for (const body of [mail?.text ?? '', mail?.html ?? '']) {
        expect(body).toContain('Asha Rao');
        expect(body).toContain(booking.id);
        expect(body).toContain(title);
        expect(body).toContain('Fixture Cinema');
        expect(body).toContain('Screen 1');
        expect(body).toContain('B4, B5');
        expect(body).toContain('₹612.00');
        expect(body).toContain(startsAt);
        expect(body).toContain(booking.ticket.code);
      }
      expect(mail?.text).toMatch(/^Seats: B4, B5$/m);
      expect(mail?.text).not.toMatch(/<[a-z]/i);
      // The HTML shows the QR inline, and the image is the ticket's own QR, as GET …/ticket serves it.
      const cid = /<img [^>]*src="cid:([^"]+)"/.exec(mail?.html ?? '')?.[1];
      expect(cid).toBeTruthy();
      const qr = mail?.attachments.find((a) => a.contentId === cid);
      expect(qr?.contentType).toBe('image/png');
      const ticketPng = await fetch(`${h.server.url}/api/bookings/${booking.id}/ticket`, {
        headers: { authorization: `Bearer ${asha.token}`, accept: 'image/png' },
      });
      expect(ticketPng.status).toBe(200);
      expect(qr?.content.equals(Buffer.from(await ticketPng.arrayBuffer()))).toBe(true);

      const [text, ...moreTexts] = textsFor(h, sms.id);
      expect(moreTexts).toHaveLength(0);
      expect(text?.to).toBe(asha.phone);
      expect(text?.body).toContain(booking.id);
      expect(text?.body).toContain(title);
      expect(text?.body).toContain('B4, B5');

      for (const item of [email, sms]) {
        expect(item.attempts).toBe(1);
        expect(item.lastError).toBeNull();
        expect(Date.parse(item.sentAt ?? '')).toBeGreaterThanOrEqual(Date.parse(item.sendAt));
        expect(item.deliveryAttempts).toEqual([{ at: item.sentAt, ok: true, error: null }]);
      }
      expect(email.recipient).toBe(`${asha.email[0]}***@example.com`);
      expect(sms.recipient).toMatch(/^\+91\*+\d{4}$/);
      expect(sms.recipient.slice(-4)).toBe(asha.phone.slice(-4));
      // The show is a day away: its reminders wait for REMINDER_MINUTES_BEFORE the start.
      const reminder = await waitForStatus(h, asha, booking.id, 'show_reminder', 'queued');
      const remindAt = Date.parse(show.startTime) - REMINDER_MINUTES * 60_000;
      expect(Date.parse(reminder.email.sendAt)).toBe(remindAt);
      expect(reminder.email.attempts).toBe(0);
      expect(reminder.sms.deliveryAttempts).toEqual([]);
    });

    it('lists only the caller’s own notifications', async () => {
      const { showId } = await createShow(h.server.api, { adminToken: h.adminToken });
      const asha = await customer(h, 'Asha');
      const ravi = await customer(h, 'Ravi');
      const ashas = await bookAndPay(h, asha, showId, ['A1']);
      const ravis = await bookAndPay(h, ravi, showId, ['A2']);
      await waitForStatus(h, asha, ashas.id, 'booking_confirmed', 'sent');
      await waitForStatus(h, ravi, ravis.id, 'booking_confirmed', 'sent');
      const ashaList = await listFor(h, asha.token);
      const raviList = await listFor(h, ravi.token);
      expect(ashaList.length).toBe(4);
      expect(raviList.length).toBe(4);
      expect(ashaList.every((n) => n.bookingId === ashas.id)).toBe(true);
      expect(raviList.every((n) => n.bookingId === ravis.id)).toBe(true);
      // Pages of 3, newest first, cover the same four once each.
      const first = await h.server.api('GET', '/api/me/notifications?limit=3', { token: asha.token });
      expect(first.body.notifications).toHaveLength(3);
      const rest = await h.server.api(
        'GET',
        `/api/me/notifications?limit=3&cursor=${encodeURIComponent(first.body.nextCursor)}`,
        { token: asha.token },
      );
      expect(rest.body.nextCursor).toBeNull();
      const paged = [...first.body.notifications, ...rest.body.notifications].map((n) => n.id);
      expect(paged).toEqual(ashaList.map((n) => n.id));
      const outsider = await customer(h, 'Meera');
      expect(await listFor(h, outsider.token)).toEqual([]);
      expect((await h.server.api('GET', '/api/me/notifications')).status).toBe(401);
    });

    it('sends a reminder at its time and withdraws the reminder of a cancelled booking', async () => {
      // Accounts first: their password hashes can take seconds on a loaded machine, and the bookings
      // below must be made before the reminder falls due.
      const keeps = await customer(h, 'Kavya');
      const cancels = await customer(h, 'Arjun');
      // The reminder is due REMINDER_MINUTES before the start: a few seconds from now.
      const leadSeconds = 10;
      const { showId } = await showStartingIn(h, REMINDER_MINUTES * 60 + leadSeconds);
      const show = await getShow(h, showId);
      const remindAtMs = Date.parse(show.startTime) - REMINDER_MINUTES * 60_000;
      const kept = await bookAndPay(h, keeps, showId, ['C1']);
      const gone = await bookAndPay(h, cancels, showId, ['C2']);
      const cancelled = await h.server.api('POST', `/api/bookings/${gone.id}/cancel`, {
        token: cancels.token,
      });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.booking.status).toBe('cancelled');
      expect(Date.now()).toBeLessThan(remindAtMs);

      const withdrawn = await waitForStatus(h, cancels, gone.id, 'show_reminder', 'cancelled');
      const reminder = await waitForStatus(
        h,
        keeps,
        kept.id,
        'show_reminder',
        'sent',
        remindAtMs - Date.now() + WAIT_MS,
      );
      const [mail, ...moreMail] = mailFor(h, reminder.email.id);
      expect(moreMail).toHaveLength(0);
      expect(mail?.subject).toMatch(/^Reminder: .* starts soon$/);
      expect(mail?.text).toContain(indianClockTime(show.startTime));
      expect(mail?.receivedAtMs).toBeGreaterThanOrEqual(remindAtMs);
      expect(mail?.receivedAtMs).toBeLessThan(remindAtMs + ON_TIME_MS);
      const [text] = textsFor(h, reminder.sms.id);
      expect(text?.to).toBe(keeps.phone);
      expect(text?.receivedAtMs).toBeGreaterThanOrEqual(remindAtMs);
      expect(text?.receivedAtMs).toBeLessThan(remindAtMs + ON_TIME_MS);
      expect(Date.parse(reminder.email.sentAt ?? '')).toBeGreaterThanOrEqual(remindAtMs);

      // The withdrawn reminders were due at the same moment: nothing for them, now or a little later.
      await holdsFor('no reminder for the cancelled booking', 1_000, () => {
        return (
          mailFor(h, withdrawn.email.id).length === 0 &&
          textsFor(h, withdrawn.sms.id).length === 0 &&
          !h.sms.texts.some((t) => t.to === cancels.phone && t.body.includes('reminder'))
        );
      });
      const after = await listFor(h, cancels.token);
      const reminders = after.filter((n) => n.template === 'show_reminder');
      expect(reminders.map((n) => [n.channel, n.status, n.attempts]).sort()).toEqual([
        ['email', 'cancelled', 0],
        ['sms', 'cancelled', 0],
      ]);
      // The cancellation itself is announced by email.
      const notice = await waitFor('the cancellation email', async () =>
        (await listFor(h, cancels.token)).find(
          (n) => n.template === 'booking_cancelled' && n.channel === 'email' && n.status === 'sent',
        ),
      );
      expect(mailFor(h, notice.id)[0]?.subject).toMatch(/^Booking cancelled: /);
    });

    it('queues and delivers what an admin sends, and refuses users and bad bodies', async () => {
      const { api } = h.server;
      const asha = await customer(h, 'Asha');
      const send = (body: unknown, token = h.adminToken, headers: Record<string, string> = {}) =>
        api('POST', '/api/notifications', { body, token, headers });
      const email = await send({
        userId: asha.user.id,
        channel: 'email',
        template: 'custom',
        data: { subject: 'Screen 3 is closed today', body: 'Hello Asha,\n\nScreen 3 is closed for repairs.' },
      });
      expect(email.status, JSON.stringify(email.body)).toBe(202);
      expect(email.body.notification).toMatchObject({
        channel: 'email',
        template: 'custom',
        status: 'queued',
      });
      const sms = await send({
        userId: asha.user.id,
        channel: 'sms',
        template: 'custom',
        data: { body: 'Screen 3 is closed today.' },
      });
      expect(sms.status).toBe(202);

      const delivered = await waitFor('both admin messages to be sent', async () => {
        const list = await listFor(h, asha.token);
        const e = list.find((n) => n.id === email.body.notification.id);
        const s = list.find((n) => n.id === sms.body.notification.id);
        return e?.status === 'sent' && s?.status === 'sent' ? { e, s } : undefined;
      });
      expect(delivered.e.attempts).toBe(1);
      const [mail] = mailFor(h, delivered.e.id);
      expect(mail?.to).toEqual([asha.email]);
      expect(mail?.subject).toBe('Screen 3 is closed today');
      expect(mail?.text).toBe('Hello Asha,\n\nScreen 3 is closed for repairs.');
      expect(mail?.html).toContain('<p>Screen 3 is closed for repairs.</p>');
      expect(textsFor(h, delivered.s.id).map((t) => [t.to, t.body])).toEqual([
        [asha.phone, 'Screen 3 is closed today.'],
      ]);

      // The same Idempotency-Key and body answer the first notification again: it is sent once.
      const once = {
        userId: asha.user.id,
        channel: 'email',
        template: 'custom',
        data: { subject: 'Once', body: 'Only once.' },
      };
      const first = await send(once, h.adminToken, { 'idempotency-key': 'notify-once-1' });
      const again = await send(once, h.adminToken, { 'idempotency-key': 'notify-once-1' });
      expect(first.status).toBe(202);
      expect(again.status).toBe(202);
      expect(again.body.notification.id).toBe(first.body.notification.id);

      expect((await send(once, asha.token)).status).toBe(403);
      expect((await send(once, asha.token)).body.error.code).toBe('FORBIDDEN');
      expect((await api('POST', '/api/notifications', { body: once })).status).toBe(401);

      const bad: unknown[] = [
        {},
        { ...once, userId: undefined },
        { ...once, channel: 'fax' },
        { ...once, template: 'no_such_template' },
        { ...once, data: 'hello' },
        { ...once, data: { body: 42 } },
        { ...once, data: {} },
        { ...once, data: { subject: 'x'.repeat(201), body: 'y' } },
        { ...once, data: { body: 'x'.repeat(4_001) } },
        { ...once, channel: 'sms', data: { body: 'x'.repeat(481) } },
        { ...once, sendAt: 'tomorrow' },
        { ...once, extra: true },
      ];
      for (const body of bad) {
        const res = await send(body);
        expect(res.status, JSON.stringify(body).slice(0, 100)).toBe(400);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
      }
      const raw = await api('POST', '/api/notifications', { raw: '{"userId":', token: h.adminToken });
      expect(raw.status).toBe(400);
      const unknown = await send({ ...once, userId: 'usr_nobody' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('USER_NOT_FOUND');
      const noPhone = await api('POST', '/api/register', {
        body: { name: 'No Phone', email: `nophone-${Date.now()}@example.com`, password: 'password-123' },
      });
      expect(noPhone.status).toBe(201);
      const toNoPhone = await send({ ...once, userId: noPhone.body.user.id, channel: 'sms' });
      expect(toNoPhone.status).toBe(422);

      // Refused requests queued nothing; the accepted ones are the three above.
      await waitFor('the idempotent message to be sent', async () =>
        (await listFor(h, asha.token)).find(
          (n) => n.id === first.body.notification.id && n.status === 'sent',
        ),
      );
      expect((await listFor(h, asha.token)).length).toBe(3);
      expect(await listFor(h, noPhone.body.token)).toEqual([]);
      expect(mailFor(h, first.body.notification.id)).toHaveLength(1);
    });

    if (mode === 'bullmq') {
      it('confirms bookings while Redis is down and delivers each notification once when it is back', async () => {
        const redis = h.redis as TestRedis;
        const leadSeconds = 7;
        const { showId } = await showStartingIn(h, REMINDER_MINUTES * 60 + leadSeconds);
        const show = await getShow(h, showId);
        const remindAtMs = Date.parse(show.startTime) - REMINDER_MINUTES * 60_000;
        const early = await customer(h, 'Early');
        const late = await customer(h, 'Late');
        // Booked while Redis is up: its reminder is a delayed job in Redis when Redis dies (no persistence).
        const before = await bookAndPay(h, early, showId, ['A5']);
        const confirmedEarly = await waitForStatus(h, early, before.id, 'booking_confirmed', 'sent');
        const queuedEarly = await waitForStatus(h, early, before.id, 'show_reminder', 'queued');
        // Outbox rows not yet handed to the queue, of the given notifications.
        // The payload is parsed here rather than in SQL: JSON functions differ between SQLite and PostgreSQL.
        const unrelayed = async (ids: string[]) => {
          const rows = await h.server.deps.store.all<{ payload: string }>(
            'SELECT payload FROM outbox WHERE relayed_at IS NULL',
          );
          const pending = new Set(
            rows.map((r) => (JSON.parse(r.payload) as { notificationId?: string }).notificationId),
          );
          return ids.filter((id) => pending.has(id)).length;
        };
        await waitFor(
          'the early reminders to reach Redis',
          async () => (await unrelayed([queuedEarly.email.id, queuedEarly.sms.id])) === 0,
        );

        await redis.kill();
        const during = await bookAndPay(h, late, showId, ['A6']);
        const waiting = (await listFor(h, late.token)).filter((n) => n.bookingId === during.id);
        const lateIds = waiting.map((n) => n.id);
        expect(waiting.map((n) => [n.template, n.status, n.attempts]).sort()).toEqual([
          ['booking_confirmed', 'queued', 0],
          ['booking_confirmed', 'queued', 0],
          ['show_reminder', 'queued', 0],
          ['show_reminder', 'queued', 0],
        ]);
        // The relay keeps failing against the dead Redis: the outbox keeps every row, nothing is sent.
        await holdsFor(
          'the outbox keeps the rows while Redis is down',
          1_000,
          async () => (await unrelayed(lateIds)) === 4,
        );
        expect(h.smtp.messages.some((m) => m.to.includes(late.email))).toBe(false);
        expect(h.sms.texts.some((t) => t.to === late.phone)).toBe(false);

        await redis.restart();
        const confirmed = await waitForStatus(h, late, during.id, 'booking_confirmed', 'sent');
        const remindedLate = await waitForStatus(
          h,
          late,
          during.id,
          'show_reminder',
          'sent',
          remindAtMs - Date.now() + WAIT_MS,
        );
        const remindedEarly = await waitForStatus(h, early, before.id, 'show_reminder', 'sent');
        const ids = [confirmedEarly, confirmed, remindedLate, remindedEarly].flatMap((n) => [
          n.email.id,
          n.sms.id,
        ]);
        const deliveries = () => ids.map((id) => mailFor(h, id).length + textsFor(h, id).length).join(',');
        const once = ids.map(() => 1).join(',');
        expect(deliveries()).toBe(once);
        await holdsFor('each notification delivered exactly once', 1_500, () => deliveries() === once);
        // Both reminders went out at their time, the one Redis lost in the crash included.
        for (const reminder of [remindedEarly, remindedLate]) {
          for (const atMs of [
            mailFor(h, reminder.email.id)[0]?.receivedAtMs ?? 0,
            textsFor(h, reminder.sms.id)[0]?.receivedAtMs ?? 0,
          ]) {
            expect(atMs).toBeGreaterThanOrEqual(remindAtMs);
            expect(atMs).toBeLessThan(remindAtMs + ON_TIME_MS);
          }
        }
        expect(await unrelayed(lateIds)).toBe(0);
      });
    }
  });
}

notificationSuite('embedded');
notificationSuite('bullmq');
