/**
 * Show times in the texts people read are the theater's local time, in its zone: a theater has an IANA
 * time zone (Asia/Kolkata unless the admin says otherwise), the theater and show answers carry it, and
 * the confirmation and cancellation email and SMS, received by a real SMTP server and SMS webhook, give
 * the time in it with the zone's abbreviation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startSmsWebhook, type TestSms } from '../helpers/sms.js';
import { startTestSmtp, type TestSmtp } from '../helpers/smtp.js';

/** 13:00 UTC: 6:30 pm in Kolkata, 8:00 am in New York (standard time in December). */
const START = '2030-12-07T13:00:00.000Z';
const WAIT_MS = 15_000;

let server: TestServer;
let smtp: TestSmtp;
let sms: TestSms;
let adminToken: string;

beforeAll(async () => {
  [smtp, sms] = await Promise.all([startTestSmtp(), startSmsWebhook()]);
  server = await startTestServer({ ...ADMIN_ENV, SMTP_URL: smtp.url, SMS_WEBHOOK_URL: sms.url });
  adminToken = await login(server.api, ADMIN.email, ADMIN.password);
});

afterAll(async () => {
  await server?.destroy();
  await Promise.all([smtp?.close(), sms?.close()]);
});

interface Created {
  id: string;
  timeZone?: string;
}

/** An admin create, which must answer 201: the created thing, named `key` in the answer. */
async function created(path: string, key: string, body: unknown): Promise<Created> {
  const res = await server.api('POST', path, { token: adminToken, body });
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body[key];
}

/** A theater (with `timeZone` when given) and one show of a new movie there at START. */
async function showIn(timeZone?: string): Promise<{ theaterId: string; showId: string; movieId: string }> {
  const movie = await created('/api/admin/movies', 'movie', {
    title: `Local ${Math.random().toString(36).slice(2, 7)}`,
    genres: ['Drama'],
    language: 'Hindi',
    durationMin: 120,
    certificate: 'UA',
    releaseDate: '2026-01-01',
  });
  const theater = await created('/api/admin/theaters', 'theater', {
    name: `Zone ${timeZone ?? 'default'}`,
    city: 'Pune',
    ...(timeZone ? { timeZone } : {}),
  });
  const screen = await created(`/api/admin/theaters/${theater.id}/screens`, 'screen', {
    name: 'One',
    layout: { rows: [{ label: 'A', category: 'GOLD', seats: 10 }] },
  });
  const show = await created('/api/admin/shows', 'show', {
    movieId: movie.id,
    screenId: screen.id,
    startTime: START,
    prices: { GOLD: 30000 },
  });
  return { theaterId: theater.id, showId: show.id, movieId: movie.id };
}

async function bookAndPay(token: string, showId: string): Promise<string> {
  const booked = await server.api('POST', '/api/bookings', {
    token,
    body: { showId, seats: ['A1'], paymentMethod: 'upi' },
  });
  expect(booked.status, JSON.stringify(booked.body)).toBe(201);
  const paid = await server.api('POST', '/api/payments', {
    token,
    body: { bookingId: booked.body.booking.id, method: 'upi', upiId: 'success@upi' },
  });
  expect(paid.body.booking?.status).toBe('confirmed');
  return booked.body.booking.id;
}

async function waitFor<T>(what: string, check: () => T | undefined): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const CONFIRMED = { subject: /^Your tickets for /, sms: / confirmed\./ };
const CANCELLED = { subject: /^Booking cancelled: /, sms: / is cancelled\./ };

/** The email and the SMS of one kind (CONFIRMED, CANCELLED) about one booking. */
async function textsAbout(bookingId: string, kind: { subject: RegExp; sms: RegExp }) {
  const mail = await waitFor(`email ${kind.subject} for ${bookingId}`, () =>
    smtp.messages.find((m) => kind.subject.test(m.subject) && m.text?.includes(bookingId)),
  );
  const text = await waitFor(`SMS ${kind.sms} for ${bookingId}`, () =>
    sms.texts.find((t) => t.body.includes(bookingId) && kind.sms.test(t.body)),
  );
  return { mail, text };
}

describe('show times in customer texts', () => {
  it('gives a show at 13:00 UTC in a Kolkata theater as 6:30 pm IST, in the email and the SMS', async () => {
    const { showId } = await showIn();
    const asha = await newUser(server.api, { phone: '+919812340001' });
    const bookingId = await bookAndPay(asha.token, showId);
    const { mail, text } = await textsAbout(bookingId, CONFIRMED);
    expect(mail.text).toMatch(/^Starts: Sat 7 Dec 2030, 6:30 pm IST$/m);
    expect(mail.html).toContain('Sat 7 Dec 2030, 6:30 pm IST');
    expect(text.body).toContain('Sat 7 Dec 2030, 6:30 pm IST');
    for (const body of [mail.text ?? '', mail.html ?? '', text.body]) expect(body).not.toMatch(/13:00|UTC/);
  });

  it('gives the time in the theater’s own zone when it is elsewhere, cancellation included', async () => {
    const { showId } = await showIn('America/New_York');
    const ben = await newUser(server.api, { phone: '+919812340002' });
    const bookingId = await bookAndPay(ben.token, showId);
    const confirmed = await textsAbout(bookingId, CONFIRMED);
    expect(confirmed.mail.text).toMatch(/^Starts: Sat 7 Dec 2030, 8:00 am EST$/m);
    expect(confirmed.text.body).toContain('Sat 7 Dec 2030, 8:00 am EST');

    const cancelled = await server.api('POST', `/api/bookings/${bookingId}/cancel`, { token: ben.token });
    expect(cancelled.status).toBe(200);
    const notice = await textsAbout(bookingId, CANCELLED);
    expect(notice.mail.text).toMatch(/^Starts: Sat 7 Dec 2030, 8:00 am EST$/m);
  });
});

describe('a theater’s time zone', () => {
  it('defaults to Asia/Kolkata and is carried by the theater, show and listing answers', async () => {
    const { theaterId, showId, movieId } = await showIn();
    const listed = (await server.api('GET', '/api/theaters?city=Pune')).body.theaters as {
      id: string;
      timeZone: string;
    }[];
    expect(listed.find((t) => t.id === theaterId)?.timeZone).toBe('Asia/Kolkata');
    const show = await server.api('GET', `/api/shows/${showId}`);
    expect(show.body.show.theater).toMatchObject({ id: theaterId, timeZone: 'Asia/Kolkata' });
    const shows = await server.api('GET', `/api/movies/${movieId}/shows`);
    expect(shows.body.shows[0].theater).toMatchObject({ id: theaterId, timeZone: 'Asia/Kolkata' });
  });

  it('takes an IANA zone on create and change, in its canonical spelling', async () => {
    const theater = await created('/api/admin/theaters', 'theater', {
      name: 'Tokyo Hall',
      city: 'Tokyo',
      timeZone: 'Asia/Tokyo',
    });
    expect(theater.timeZone).toBe('Asia/Tokyo');
    const moved = await server.api('PATCH', `/api/admin/theaters/${theater.id}`, {
      token: adminToken,
      body: { timeZone: 'europe/berlin' },
    });
    expect(moved.status).toBe(200);
    expect(moved.body.theater).toMatchObject({ name: 'Tokyo Hall', timeZone: 'Europe/Berlin' });
  });

  it('refuses a zone that is not an IANA zone with 400 naming timeZone', async () => {
    const theater = await created('/api/admin/theaters', 'theater', { name: 'Zoned', city: 'Pune' });
    for (const timeZone of ['Mars/Olympus_Mons', '+05:30', 'IST', '', 530]) {
      const create = await server.api('POST', '/api/admin/theaters', {
        token: adminToken,
        body: { name: 'Nowhere', city: 'Pune', timeZone },
      });
      expect(create.status, String(timeZone)).toBe(400);
      expect(create.body.error.code).toBe('VALIDATION_FAILED');
      expect(Object.keys(create.body.error.details.fields)).toEqual(['timeZone']);
      const change = await server.api('PATCH', `/api/admin/theaters/${theater.id}`, {
        token: adminToken,
        body: { timeZone },
      });
      expect(change.status, String(timeZone)).toBe(400);
      expect(Object.keys(change.body.error.details.fields)).toEqual(['timeZone']);
    }
    const unchanged = await server.api('GET', '/api/theaters?city=Pune');
    expect(unchanged.body.theaters.find((t: { id: string }) => t.id === theater.id).timeZone).toBe(
      'Asia/Kolkata',
    );
  });
});
