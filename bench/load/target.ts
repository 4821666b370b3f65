/**
 * @module bench/load/target
 * Everything the kit asks the target outside the measured load, over fetch (http or https, any port,
 * through a proxy): the admin's token, test users in bulk, shows with enough free seats from the public
 * catalog (or new ones), and their seat maps. Every call is bounded by a timeout.
 */
import { mapLimit, type Reply } from '../http/client.js';
import { createShows } from '../http/fixtures.js';
import type { LoadOptions } from './options.js';

/** Bound on one set-up or check request. */
const REQUEST_TIMEOUT_MS = 30_000;
/** The service's bound on users per bulk request. */
const USERS_PER_REQUEST = 10_000;
/** Movies whose shows are looked at when picking shows from the catalog. */
const MAX_MOVIES_SCANNED = 50;

export interface LoadUser {
  id: string;
  token: string;
}

export interface SeatMap {
  showId: string;
  version: number;
  seats: { id: string; status: string }[];
  counts: Record<string, number>;
}

/** A JSON client on fetch with the shape of bench/http's JsonClient, so its fixtures work over it. */
export class TargetClient {
  constructor(readonly baseUrl: string) {}

  async request<T = unknown>(
    method: string,
    path: string,
    options: { body?: unknown; token?: string } = {},
  ): Promise<Reply<T>> {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const started = performance.now();
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    let body: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) body = JSON.parse(text);
    return { status: res.status, body: body as T, bytes: text.length, ms: performance.now() - started };
  }

  async expect<T = unknown>(status: number, method: string, path: string, options = {}): Promise<T> {
    const reply = await this.request<T>(method, path, options);
    if (reply.status !== status)
      throw new Error(
        `${method} ${path}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body)}`,
      );
    return reply.body;
  }
}

export async function adminLogin(client: TargetClient, options: LoadOptions): Promise<string> {
  if (!options.adminEmail || !options.adminPassword)
    throw new Error(
      `the ${options.scenario} scenario needs an admin of the target: --admin-email and --admin-password (or LOAD_ADMIN_EMAIL, LOAD_ADMIN_PASSWORD)`,
    );
  const body = await client.expect<{ token: string }>(200, 'POST', '/api/login', {
    body: { email: options.adminEmail, password: options.adminPassword },
  });
  return body.token;
}

/** `count` test users of a fresh run id, in batches the service accepts; needs LOAD_TEST_MODE there. */
export async function makeUsers(
  client: TargetClient,
  adminToken: string,
  count: number,
): Promise<LoadUser[]> {
  const runId = `k${Date.now().toString(36)}`;
  const users: LoadUser[] = [];
  for (let first = 0; first < count; first += USERS_PER_REQUEST) {
    const reply = await client.request<{ users: LoadUser[] }>('POST', '/api/admin/load-test/users', {
      token: adminToken,
      body: { count: Math.min(USERS_PER_REQUEST, count - first), runId, firstIndex: first },
    });
    if (reply.status === 403 && JSON.stringify(reply.body).includes('LOAD_TEST_MODE'))
      throw new Error(
        'the target refuses test users: start it with LOAD_TEST_MODE=true (never in production)',
      );
    if (reply.status !== 201)
      throw new Error(`creating test users: ${reply.status} ${JSON.stringify(reply.body)}`);
    for (const user of reply.body.users) users.push({ id: user.id, token: user.token });
  }
  return users;
}

export async function seatMap(client: TargetClient, showId: string): Promise<SeatMap> {
  return client.expect<SeatMap>(200, 'GET', `/api/shows/${encodeURIComponent(showId)}/seats`);
}

/**
 * The shows to load: those named, else new ones (--create-shows), else the upcoming shows of the public
 * catalog with at least `minFreeSeats` available, most free first.
 */
export async function pickShows(
  client: TargetClient,
  options: LoadOptions,
  wanted: number,
  adminToken?: string,
): Promise<SeatMap[]> {
  let ids = options.showIds;
  if (ids.length === 0 && options.createShows > 0) {
    if (!adminToken) throw new Error('--create-shows needs --admin-email and --admin-password');
    ids = await createShows(client, adminToken, options.createShows);
  }
  if (ids.length === 0) ids = await catalogShows(client, options.minFreeSeats, wanted);
  const maps = await mapLimit(ids.slice(0, wanted), 4, (id) => seatMap(client, id));
  const enough = maps.filter((m) => (m.counts.available ?? 0) >= options.minFreeSeats);
  if (enough.length === 0)
    throw new Error(
      `no show with at least ${options.minFreeSeats} available seats: name one with --show, or --create-shows N`,
    );
  return enough;
}

async function catalogShows(client: TargetClient, minFreeSeats: number, wanted: number): Promise<string[]> {
  const { movies } = await client.expect<{ movies: { id: string }[] }>(200, 'GET', '/api/movies');
  const shows: { id: string; seatsAvailable: number }[] = [];
  await mapLimit(movies.slice(0, MAX_MOVIES_SCANNED), 4, async (movie) => {
    const reply = await client.expect<{ shows: { id: string; seatsAvailable: number }[] }>(
      200,
      'GET',
      `/api/movies/${encodeURIComponent(movie.id)}/shows`,
    );
    for (const show of reply.shows) if (show.seatsAvailable >= minFreeSeats) shows.push(show);
  });
  return shows
    .sort((a, b) => b.seatsAvailable - a.seatsAvailable)
    .slice(0, wanted)
    .map((s) => s.id);
}
