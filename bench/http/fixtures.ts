/**
 * @module bench/http/fixtures
 * What the scenarios need in the service, made through its public API: users with tokens
 * (`POST /api/register`) and a catalog of 300-seat shows (the admin routes). Users are registered once
 * per bench run in a template data directory that every scenario's service starts from a copy of:
 * registration costs one scrypt each (tens of ms of a core), which is not what the scenarios measure.
 */
import { JsonClient, mapLimit } from './client.js';
import type { Processes } from './processes.js';
import { ADMIN, startService } from './service.js';

export interface BenchUser {
  id: string;
  token: string;
}

/** 15 rows of 20 seats: the 300-seat screen the issue describes. */
export const ROWS = 'ABCDEFGHIJKLMNO'.split('');
export const SEATS_PER_ROW = 20;
export const SEAT_LABELS = ROWS.flatMap((row) =>
  Array.from({ length: SEATS_PER_ROW }, (_, i) => `${row}${i + 1}`),
);
export const LAYOUT = {
  rows: ROWS.map((label, i) => ({
    label,
    category: i < 5 ? 'SILVER' : i < 11 ? 'GOLD' : 'PLATINUM',
    seats: SEATS_PER_ROW,
  })),
};
const PRICES = { SILVER: 15000, GOLD: 25000, PLATINUM: 40000 };
/** Shows per screen: a screen cannot host two shows at once, so they are spaced by this. */
const SHOWS_PER_SCREEN = 20;
const SHOW_SPACING_MS = 4 * 3600_000;
/** Registrations in flight: scrypt runs on libuv's pool, more only queues. */
const REGISTER_CONCURRENCY = 8;

function ok<T = any>(what: string, expected: number, reply: { status: number; body: unknown }): T {
  if (reply.status !== expected)
    throw new Error(`${what}: expected ${expected}, got ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body as T;
}

export async function adminToken(client: JsonClient): Promise<string> {
  const body = ok('admin login', 200, await client.request('POST', '/api/login', { body: ADMIN }));
  return body.token as string;
}

export async function registerUsers(
  client: JsonClient,
  count: number,
  onProgress?: (done: number) => void,
): Promise<BenchUser[]> {
  const stamp = Date.now().toString(36);
  let done = 0;
  return mapLimit(
    Array.from({ length: count }, (_, i) => i),
    REGISTER_CONCURRENCY,
    async (i) => {
      const reply = await client.request('POST', '/api/register', {
        body: {
          name: `Bench User ${i}`,
          email: `bench-${stamp}-${i}@example.com`,
          password: 'bench-password-1',
        },
      });
      const body = ok('register', 201, reply);
      if (++done % 500 === 0) onProgress?.(done);
      return { id: body.user.id as string, token: body.token as string };
    },
  );
}

/**
 * Registers `count` users in a fresh data directory (and, with `env.DATABASE_URL`, a PostgreSQL database
 * that scenarios clone) and stops the service cleanly, leaving a template
 * that scenarios copy. Their tokens stay valid for every later service: the JWT secret is the run's.
 */
export async function prepareTemplate(
  procs: Processes,
  jwtSecret: string,
  count: number,
  log: (line: string) => void,
  env?: Record<string, string>,
): Promise<{ dir: string; users: BenchUser[] }> {
  const dir = procs.tempDir('boxoffice-bench-template-');
  const service = await startService(procs, { dataDir: dir, jwtSecret, env });
  const client = new JsonClient(service.url, REGISTER_CONCURRENCY);
  try {
    const started = performance.now();
    const users = await registerUsers(client, count, (done) => log(`  registered ${done}/${count} users`));
    log(`  ${count} users in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { dir, users };
  } finally {
    client.close();
    await service.stop();
  }
}

/** One movie, a theater per 20 shows with one 300-seat screen, and `count` shows starting tomorrow. */
export async function createShows(
  client: Pick<JsonClient, 'request'>,
  token: string,
  count: number,
): Promise<string[]> {
  const post = async (path: string, body: unknown) =>
    ok(`POST ${path}`, 201, await client.request('POST', path, { body, token }));
  const { movie } = await post('/api/admin/movies', {
    title: 'Bench Blockbuster',
    genres: ['Action'],
    language: 'Hindi',
    durationMin: 150,
    certificate: 'UA',
    releaseDate: '2026-01-01',
  });
  const screens: string[] = [];
  for (let s = 0; s * SHOWS_PER_SCREEN < count; s++) {
    const { theater } = await post('/api/admin/theaters', { name: `Bench Cinema ${s}`, city: 'Mumbai' });
    const { screen } = await post(`/api/admin/theaters/${theater.id}/screens`, {
      name: 'Screen 1',
      layout: LAYOUT,
    });
    screens.push(screen.id as string);
  }
  const firstStart = Date.now() + 24 * 3600_000;
  return mapLimit(
    Array.from({ length: count }, (_, i) => i),
    4,
    async (i) => {
      const { show } = await post('/api/admin/shows', {
        movieId: movie.id,
        screenId: screens[Math.floor(i / SHOWS_PER_SCREEN)],
        startTime: new Date(firstStart + (i % SHOWS_PER_SCREEN) * SHOW_SPACING_MS).toISOString(),
        prices: PRICES,
      });
      return show.id as string;
    },
  );
}
