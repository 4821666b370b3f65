/**
 * The web app's pages beyond the main journey, in a real browser over the real server: the remembered
 * city and the movie filters, show times by day, a promo code with its price breakdown, paying by UPI
 * and by wallet, the ticket's time in the theater's own zone, the seat map's aisles, a refusal that would
 * strand a single seat, and extending a hold. Each page passed through is checked with axe-core too.
 */
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, bookAndPay, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { expectAccessible } from './axe.js';
import {
  CHROMIUM_SKIP_REASON,
  type Chromium,
  ensureWebBuild,
  hasChromium,
  launchChromium,
} from './browser.js';

if (!hasChromium) console.warn(CHROMIUM_SKIP_REASON);

const DAY_MS = 24 * 3_600_000;
const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 10_000, interval: 50 });
const shown = (locator: Locator) => locator.first().waitFor({ state: 'visible', timeout: 10_000 });
const seat = (page: Page, label: string) => page.getByRole('button', { name: new RegExp(`^${label},`) });

describe.skipIf(!hasChromium)('web app pages in chromium', () => {
  let server: TestServer;
  let browser: Chromium;
  let adminToken: string;

  beforeAll(async () => {
    ensureWebBuild();
    server = await startTestServer(ADMIN_ENV);
    browser = await launchChromium();
    adminToken = await login(server.api, ADMIN.email, ADMIN.password);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.destroy();
  });

  /** An admin call that must succeed: the catalog is arranged through the public API. */
  const admin = async (method: string, path: string, body: unknown) => {
    const res = await server.api(method, path, { body, token: adminToken });
    if (res.status !== 201) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const theaterIn = async (city: string, timeZone?: string, layout?: unknown) => {
    const { theater } = await admin('POST', '/api/admin/theaters', {
      name: `Cinema ${city}`,
      city,
      address: '2 Test Lane',
      ...(timeZone ? { timeZone } : {}),
    });
    const { screen } = await admin('POST', `/api/admin/theaters/${theater.id}/screens`, {
      name: 'Screen 1',
      layout: layout ?? { rows: [{ label: 'A', category: 'CLASSIC', seats: 8, aislesAfter: [4] }] },
    });
    return { theaterId: theater.id as string, screenId: screen.id as string };
  };
  const movie = async (title: string, language: string, genres: string[]) =>
    (
      await admin('POST', '/api/admin/movies', {
        title,
        genres,
        language,
        durationMin: 120,
        certificate: 'UA',
        releaseDate: '2026-01-01',
      })
    ).movie.id as string;
  const show = async (
    movieId: string,
    screenId: string,
    startTime: Date,
    extra: Record<string, unknown> = {},
  ) =>
    (
      await admin('POST', '/api/admin/shows', {
        movieId,
        screenId,
        startTime: startTime.toISOString(),
        prices: { CLASSIC: 24000 },
        ...extra,
      })
    ).show.id as string;
  /** A rating needs a confirmed booking of the movie, as a real viewer's would. */
  const rate = async (showId: string, movieId: string, score: number) => {
    const viewer = await newUser(server.api);
    await bookAndPay(server.api, viewer.token, showId, ['A8']);
    const rated = await server.api('POST', `/api/movies/${movieId}/ratings`, {
      body: { score },
      token: viewer.token,
    });
    expect(rated.status).toBe(200);
  };
  /** The titles of the movie cards on the page, in order. */
  const titles = (page: Page) => page.locator('.movie-card h3').allTextContents();

  it('remembers the city, filters its movies by language, genre, format and rating, and lists show times by day', async () => {
    const city = `Filterpur${Math.random().toString(36).slice(2, 6)}`;
    const { screenId } = await theaterIn(city);
    const [alpha, beta] = [
      await movie('Alpha Rising', 'Tamil', ['Action', 'Thriller']),
      await movie('Beta Laughs', 'Hindi', ['Comedy']),
    ];
    const tomorrow = new Date(Date.now() + DAY_MS);
    const dayAfter = new Date(Date.now() + 2 * DAY_MS);
    const alphaFirst = await show(alpha, screenId, tomorrow, { format: 'IMAX' });
    const alphaSecond = await show(alpha, screenId, dayAfter, { format: 'IMAX' });
    const betaShow = await show(beta, screenId, new Date(tomorrow.getTime() + 4 * 3_600_000), {
      format: '2D',
    });
    await rate(alphaFirst, alpha, 9);
    await rate(betaShow, beta, 5);

    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/`);
      await page.getByLabel('City').selectOption(city);
      await eventually(() => titles(page)).toEqual(['Alpha Rising', 'Beta Laughs']);
      // The city is remembered: a new visit opens on it.
      await page.reload();
      await eventually(() => page.getByLabel('City').inputValue()).toBe(city);
      await eventually(() => titles(page)).toEqual(['Alpha Rising', 'Beta Laughs']);
      await expectAccessible(page, 'movies with filters');

      const filter = async (label: string, value: string, expected: string[]) => {
        // Options are never "visible"; the format options arrive once the movies' shows are read.
        await page
          .getByLabel(label)
          .locator(`option[value="${value}"]`)
          .waitFor({ state: 'attached', timeout: 10_000 });
        await page.getByLabel(label).selectOption(value);
        await eventually(() => titles(page)).toEqual(expected);
        await page.getByLabel(label).selectOption('');
        await eventually(() => titles(page)).toEqual(['Alpha Rising', 'Beta Laughs']);
      };
      await filter('Language', 'Tamil', ['Alpha Rising']);
      await filter('Genre', 'Comedy', ['Beta Laughs']);
      await filter('Format', 'IMAX', ['Alpha Rising']);
      await filter('Format', '2D', ['Beta Laughs']);
      await filter('Rating', '8', ['Alpha Rising']);

      await page.getByRole('link', { name: 'Alpha Rising' }).click();
      await shown(page.getByRole('heading', { level: 1, name: 'Alpha Rising' }));
      const firstDay = page.locator(`a[href="/shows/${alphaFirst}"]`);
      const secondDay = page.locator(`a[href="/shows/${alphaSecond}"]`);
      await shown(firstDay);
      expect(await secondDay.count()).toBe(0);
      const days = page.locator('.day-tabs button');
      expect(await days.count()).toBe(2);
      expect(await days.nth(0).getAttribute('aria-pressed')).toBe('true');
      await days.nth(1).click();
      await shown(secondDay);
      expect(await firstDay.count()).toBe(0);
      expect(await days.nth(1).getAttribute('aria-pressed')).toBe('true');
      await expectAccessible(page, 'a movie, second day chosen');
    } finally {
      await context.close();
    }
  });

  it("applies a promo code with its price breakdown, pays by UPI, and gives the ticket's time in the theater's zone", async () => {
    const city = `Zonepur${Math.random().toString(36).slice(2, 6)}`;
    const { screenId } = await theaterIn(city, 'America/New_York');
    const movieId = await movie('The Far Premiere', 'English', ['Drama']);
    // 23:30 UTC two days on: evening in New York, early next morning in India.
    const day = new Date(Date.now() + 2 * DAY_MS);
    const startTime = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), 23, 30));
    const showId = await show(movieId, screenId, startTime);
    const code = `FLAT50${Math.random().toString(36).slice(2, 6).toUpperCase()}`;
    await admin('POST', '/api/admin/offers', {
      code,
      kind: 'flat',
      value: 5000,
      validFrom: new Date(Date.now() - DAY_MS).toISOString(),
      validUntil: new Date(Date.now() + 7 * DAY_MS).toISOString(),
    });
    const user = await newUser(server.api);
    const context = await browser.newContext({ token: user.token });
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/shows/${showId}`);
      await seat(page, 'A1').click();
      await seat(page, 'A2').click();
      await page.getByRole('button', { name: 'Hold seats' }).click();
      await page.getByRole('link', { name: 'Continue to checkout' }).click();

      const breakdown = page.getByRole('region', { name: 'Price breakdown' });
      await shown(breakdown.getByText('₹480'));
      await page.getByLabel('Promo code').fill('NOSUCHCODE');
      await page.getByRole('button', { name: 'Apply code' }).click();
      await eventually(() => page.getByRole('alert').first().textContent()).toContain(
        'NOSUCHCODE cannot be used here',
      );
      await page.getByLabel('Promo code').fill(code);
      await page.getByRole('button', { name: 'Apply code' }).click();
      await shown(breakdown.getByText('−₹50'));
      const total = (await breakdown.locator('strong').textContent())!;
      expect(total).toMatch(/^₹\d/);
      await expectAccessible(page, 'checkout with a promo code');

      await page.getByLabel('UPI').check();
      await page.getByRole('button', { name: 'Continue to payment' }).click();
      await page.getByLabel('UPI ID').fill('success@upi');
      // The amount asked for is the breakdown's total, the discount included.
      await page.getByRole('button', { name: `Pay ${total}` }).click();

      await shown(page.getByRole('heading', { name: 'Your ticket' }));
      const when = page.locator('.ticket-facts dt:text-is("When") + dd');
      const wallClock = (timeZone: string) =>
        new Intl.DateTimeFormat('en-US', { timeZone, hour: 'numeric', minute: '2-digit' })
          .format(startTime)
          .replace(/\s/g, '\\s?');
      await eventually(() => when.textContent()).toMatch(new RegExp(wallClock('America/New_York'), 'i'));
      expect(await when.textContent()).not.toMatch(new RegExp(wallClock('Asia/Kolkata'), 'i'));
      await expectAccessible(page, 'ticket in another time zone');

      const bookings = await server.api('GET', '/api/me/bookings', { token: user.token });
      const [booking] = bookings.body.bookings;
      expect(booking).toMatchObject({ status: 'confirmed', promoCode: code, paymentMethod: 'upi' });
      expect(booking.amount).toMatchObject({ subtotal: 48000, discount: 5000 });
    } finally {
      await context.close();
    }
  });

  it('draws the aisle, names the seat a choice would strand, extends the hold, and pays by wallet', async () => {
    const city = `Aislepur${Math.random().toString(36).slice(2, 6)}`;
    const { screenId } = await theaterIn(city, undefined, {
      rows: [
        { label: 'A', category: 'CLASSIC', seats: 8, aislesAfter: [4] },
        { label: 'B', category: 'CLASSIC', seats: 8, aislesAfter: [4] },
      ],
    });
    const movieId = await movie('Single Seat Story', 'Hindi', ['Drama']);
    const showId = await show(movieId, screenId, new Date(Date.now() + DAY_MS), {
      forbidSingleSeatGaps: true,
    });
    const user = await newUser(server.api);
    const context = await browser.newContext({ token: user.token });
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/shows/${showId}`);
      await shown(seat(page, 'A1'));

      // The screen is above the first row; the aisle after A4 is wider than the space between seats.
      const box = async (locator: Locator) => (await locator.first().boundingBox())!;
      const [screen, a3, a4, a5, b1] = [
        await box(page.locator('.screen')),
        await box(seat(page, 'A3')),
        await box(seat(page, 'A4')),
        await box(seat(page, 'A5')),
        await box(seat(page, 'B1')),
      ];
      expect(screen.y + screen.height).toBeLessThanOrEqual(a3.y);
      expect(a3.y + a3.height).toBeLessThanOrEqual(b1.y);
      expect(a5.x - (a4.x + a4.width)).toBeGreaterThan(a4.x - (a3.x + a3.width));
      expect(await page.locator('.seat-row .row-label').first().textContent()).toBe('A');

      await seat(page, 'A2').click();
      await page.getByRole('button', { name: 'Hold seats' }).click();
      await eventually(() => page.getByRole('alert').first().textContent()).toContain(
        'would leave A1 on its own. Add A1 to your selection',
      );
      await expectAccessible(page, 'seat map, a single seat would be stranded');
      await seat(page, 'A1').click();
      await page.getByRole('button', { name: 'Hold seats' }).click();
      await shown(page.getByRole('heading', { name: /^Seats held: A1 and A2$|^Seats held: A2 and A1$/ }));

      const secondsLeft = async () => {
        const [, minutes, seconds] = /Held for (\d+):(\d\d) more/.exec(
          (await page.getByRole('timer').textContent()) ?? '',
        )!;
        return Number(minutes) * 60 + Number(seconds);
      };
      const before = await secondsLeft();
      await page.getByRole('button', { name: 'Extend hold' }).click();
      await shown(page.getByText('Your hold was extended.'));
      expect(await secondsLeft()).toBeGreaterThan(before);

      await page.getByRole('link', { name: 'Continue to checkout' }).click();
      await page.getByLabel('Wallet').check();
      await page.getByRole('button', { name: 'Continue to payment' }).click();
      await page.getByLabel('Wallet ID').fill('wallet_success');
      await page.getByRole('button', { name: /^Pay ₹/ }).click();
      await shown(page.getByRole('heading', { name: 'Your ticket' }));
      await shown(page.getByRole('img', { name: /Ticket QR code/ }));
    } finally {
      await context.close();
    }
  });
  it("fits a phone 320 px wide on every page (the width WCAG's reflow asks for), and asks nothing of any other origin", async () => {
    const city = `Phonepur${Math.random().toString(36).slice(2, 6)}`;
    const { screenId } = await theaterIn(city, undefined, {
      rows: ['A', 'B', 'C'].map((label) => ({ label, category: 'CLASSIC', seats: 24, aislesAfter: [6, 18] })),
    });
    const movieId = await movie('A Rather Long Movie Title For A Narrow Phone Screen', 'Malayalam', [
      'Drama',
    ]);
    const showId = await show(movieId, screenId, new Date(Date.now() + DAY_MS));
    const user = await newUser(server.api);
    const hold = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['B1'] },
      token: user.token,
    });
    const booking = await bookAndPay(server.api, user.token, showId, ['C1', 'C2']);
    const context = await browser.newContext({ token: user.token, width: 320 });
    // Offline-ready: every request the pages make goes to the service itself (no fonts, CDNs, trackers).
    const requested: string[] = [];
    context.on('request', (request) => {
      if (!request.url().startsWith('data:')) requested.push(request.url());
    });
    try {
      const page = await context.newPage();
      await page.addInitScript((name) => localStorage.setItem('boxoffice.city', name), city);
      const pages: [string, Locator][] = [
        ['/', page.getByRole('link', { name: /A Rather Long Movie/ })],
        [`/movies/${movieId}`, page.locator(`a[href="/shows/${showId}"]`)],
        [`/shows/${showId}`, seat(page, 'A1')],
        [`/checkout/${hold.body.hold.id}`, page.getByRole('button', { name: 'Continue to payment' })],
        [`/tickets/${booking.id}`, page.getByRole('img', { name: /Ticket QR code/ })],
        ['/bookings', page.getByRole('button', { name: 'Cancel booking' })],
        ['/profile', page.getByRole('button', { name: 'Save profile' })],
      ];
      pages.push(['/login', page.getByLabel('Email')], ['/register', page.getByLabel('Email')]);
      const wider: string[] = [];
      for (const [path, ready] of pages) {
        await page.goto(server.url + path);
        await shown(ready);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 0) wider.push(`${path} by ${overflow} px`);
      }
      expect(wider, 'pages wider than the phone').toEqual([]);
      const host = new URL(server.url).host;
      expect(requested.length).toBeGreaterThan(pages.length);
      expect(requested.filter((url) => new URL(url).host !== host)).toEqual([]);
    } finally {
      await context.close();
    }
  });
  it('sends a visitor who holds seats to log in and back with the seats still chosen; edits the profile; logs out', async () => {
    const { screenId } = await theaterIn(`Loginpur${Math.random().toString(36).slice(2, 6)}`);
    const showId = await show(
      await movie('Back Again', 'Hindi', ['Drama']),
      screenId,
      new Date(Date.now() + DAY_MS),
    );
    const user = await newUser(server.api);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/shows/${showId}`);
      await seat(page, 'A3').click();
      await seat(page, 'A4').click();
      await page.getByRole('button', { name: 'Hold seats' }).click();

      await shown(page.getByRole('heading', { name: 'Log in' }));
      // The first field has the focus, so a keyboard user types straight away.
      await eventually(() => page.getByLabel('Email').evaluate((el) => el === document.activeElement)).toBe(
        true,
      );
      await page.getByLabel('Email').fill(user.email);
      await page.getByLabel('Password').fill('not-the-password');
      await page.getByRole('button', { name: 'Log in' }).click();
      await eventually(() => page.getByRole('alert').first().textContent()).toContain(
        'That email and password do not match an account',
      );
      await page.getByLabel('Password').fill(user.password);
      await page.getByRole('button', { name: 'Log in' }).click();

      await eventually(async () => new URL(page.url()).pathname).toBe(`/shows/${showId}`);
      await eventually(() => seat(page, 'A3').getAttribute('aria-pressed')).toBe('true');
      await eventually(() => seat(page, 'A4').getAttribute('aria-pressed')).toBe('true');
      await page.getByRole('button', { name: 'Hold seats' }).click();
      await shown(page.getByRole('heading', { name: 'Seats held: A3 and A4' }));

      const nav = page.getByRole('navigation', { name: 'Main' });
      await nav.getByRole('link', { name: user.name }).click();
      await page.getByLabel('Name').fill('Asha Renamed');
      await page.getByRole('button', { name: 'Save profile' }).click();
      await shown(page.getByRole('status').getByText('Saved.'));
      expect((await server.api('GET', '/api/me', { token: user.token })).body.user.name).toBe('Asha Renamed');
      await page.reload();
      await shown(nav.getByRole('link', { name: 'Asha Renamed' }));

      const browserToken = await page.evaluate(() => localStorage.getItem('boxoffice.token'));
      expect((await server.api('GET', '/api/me', { token: browserToken! })).status).toBe(200);
      await page.getByRole('button', { name: 'Log out' }).click();
      await shown(nav.getByRole('link', { name: 'Log in' }));
      expect(await page.evaluate(() => localStorage.getItem('boxoffice.token'))).toBeNull();
      // Logging out ends the session on the server too, not only in this browser.
      expect((await server.api('GET', '/api/me', { token: browserToken! })).status).toBe(401);
    } finally {
      await context.close();
    }
  });
});
