/**
 * Builds a small catalog through the admin API (the public surface), and users with tokens.
 */
import type { SeatLayout } from '../../src/actors/seat-layout.js';
import type { Api } from './server.js';

export const ADMIN = { email: 'admin@boxoffice.test', password: 'admin-password-1' };
export const ADMIN_ENV = { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password };
/** A card the simulated provider approves. */
export const GOOD_CARD = { number: '4242424242424242', expiry: '12/34', cvc: '123' };

export async function login(api: Api, email: string, password: string): Promise<string> {
  const res = await api('POST', '/api/login', { body: { email, password } });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

let userCounter = 0;
export async function newUser(api: Api, overrides: Record<string, string> = {}) {
  const n = ++userCounter;
  const body = {
    name: `User ${n}`,
    email: `user${n}-${Math.random().toString(36).slice(2, 8)}@example.com`,
    password: 'password-123',
    phone: '+919876543210',
    ...overrides,
  };
  const res = await api('POST', '/api/register', { body });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
  return {
    token: res.body.token as string,
    user: res.body.user as { id: string; email: string; name: string },
    ...body,
  };
}

export interface ShowFixture {
  showId: string;
  movieId: string;
  theaterId: string;
  screenId: string;
  adminToken: string;
}

export async function createShow(
  api: Api,
  options: {
    layout?: SeatLayout;
    startsInMinutes?: number;
    prices?: Record<string, number>;
    forbidSingleSeatGaps?: boolean;
    city?: string;
    adminToken?: string;
    /** A real-looking title for pages a person looks at (the web app's screenshots). */
    title?: string;
  } = {},
): Promise<ShowFixture> {
  const adminToken = options.adminToken ?? (await login(api, ADMIN.email, ADMIN.password));
  const layout = options.layout ?? {
    rows: [
      { label: 'A', category: 'GOLD', seats: 10 },
      { label: 'B', category: 'GOLD', seats: 10 },
      { label: 'C', category: 'SILVER', seats: 10, aislesAfter: [5] },
    ],
  };
  const prices = options.prices ?? { GOLD: 30000, SILVER: 20000 };
  const ok = async (method: string, path: string, body: unknown) => {
    const res = await api(method, path, { body, token: adminToken });
    if (res.status !== 201) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const { movie } = await ok('POST', '/api/admin/movies', {
    title: options.title ?? `Fixture ${Math.random().toString(36).slice(2, 7)}`,
    genres: ['Drama'],
    language: 'Hindi',
    durationMin: 140,
    certificate: 'UA',
    releaseDate: '2026-01-01',
  });
  const { theater } = await ok('POST', '/api/admin/theaters', {
    name: 'Fixture Cinema',
    city: options.city ?? 'Mumbai',
    address: '1 Test Road',
  });
  const { screen } = await ok('POST', `/api/admin/theaters/${theater.id}/screens`, {
    name: 'Screen 1',
    layout,
  });
  const startTime = new Date(Date.now() + (options.startsInMinutes ?? 24 * 60) * 60_000).toISOString();
  const { show } = await ok('POST', '/api/admin/shows', {
    movieId: movie.id,
    screenId: screen.id,
    startTime,
    prices,
    forbidSingleSeatGaps: options.forbidSingleSeatGaps ?? false,
  });
  return { showId: show.id, movieId: movie.id, theaterId: theater.id, screenId: screen.id, adminToken };
}

/** An on-sale of `showIds` that opens in an hour: buyers can queue, nobody is admitted yet. Its id. */
export async function createOnsale(
  api: Api,
  adminToken: string,
  showIds: string[],
  admitPerMinute = 60,
): Promise<string> {
  const res = await api('POST', '/api/admin/onsales', {
    token: adminToken,
    body: { showIds, opensAt: new Date(Date.now() + 3_600_000).toISOString(), admitPerMinute },
  });
  if (res.status !== 201)
    throw new Error(`POST /api/admin/onsales: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.onsale.id as string;
}

/** Books `seats` for the holder of `token` and pays with GOOD_CARD; throws unless it is confirmed. */
export async function bookAndPay(api: Api, token: string, showId: string, seats: string[]) {
  const booking = await api('POST', '/api/bookings', {
    body: { showId, seats, paymentMethod: 'card' },
    token,
  });
  if (booking.status !== 201)
    throw new Error(`POST /api/bookings: ${booking.status} ${JSON.stringify(booking.body)}`);
  const paid = await api('POST', '/api/payments', {
    body: { bookingId: booking.body.booking.id, method: 'card', card: GOOD_CARD },
    token,
  });
  if (paid.body?.booking?.status !== 'confirmed')
    throw new Error(`POST /api/payments: ${paid.status} ${JSON.stringify(paid.body)}`);
  return paid.body.booking;
}
