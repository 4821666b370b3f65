/**
 * @module bench/load/options
 * The command line of `npm run load`, parsed and checked against stated bounds: every run has a
 * duration or a request count and a hard deadline, so it stops by itself whatever the target does.
 */
import { parseArgs } from 'node:util';

export const SCENARIOS = ['seat-maps', 'hold-release', 'hot-show', 'booking', 'feed', 'mixed'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const LIMITS = {
  connections: 1_000,
  seconds: 600,
  requests: 10_000_000,
  rate: 100_000,
  warmupSeconds: 60,
  /** Users per run; the service mints at most 10,000 per request, the kit asks in batches. */
  users: 50_000,
  shows: 200,
  createShows: 100,
  subscribers: 5_000,
};

export interface LoadOptions {
  url: string;
  scenario: ScenarioName;
  connections: number;
  /** Measured duration; with `requests` set, only the deadline. */
  seconds: number;
  /** Stop after this many responses instead of after `seconds`. */
  requests?: number;
  /** Requests per second over all connections; undefined = as fast as answered. */
  rate?: number;
  warmupSeconds: number;
  seed: number;
  users: number;
  /** Shows to spread over (hot-show and feed use one). */
  shows: number;
  /** Use these shows instead of picking from the catalog. */
  showIds: string[];
  /** Shows picked from the catalog need at least this many available seats. */
  minFreeSeats: number;
  /** Create this many 300-seat shows through the admin API first. */
  createShows: number;
  /** Weights of seat-map reads, hold+release and bookings in `mixed`. */
  mix: [number, number, number];
  subscribers: number;
  adminEmail?: string;
  adminPassword?: string;
  isJson: boolean;
  htmlPath?: string;
  jsonPath?: string;
  /** Progress on stderr; off under --json when stderr is not a terminal. */
  isProgressShown: boolean;
}

export const USAGE = `usage: npm run load -- --url URL --scenario ${SCENARIOS.join('|')} [options]
  --connections N      concurrent connections (default 10, at most ${LIMITS.connections})
  --duration S         measured seconds (default 10; hot-show 60; at most ${LIMITS.seconds})
  --requests N         stop after N responses instead (the duration is then the deadline)
  --rate N             requests/s over all connections (default: as fast as answered)
  --warmup S           seat-map reads before measuring, not counted (default 0)
  --seed N             seeds every random choice (default 42)
  --users N            test users (default 200), made by POST /api/admin/load-test/users
  --admin-email E, --admin-password P   an admin of the target (or LOAD_ADMIN_EMAIL, LOAD_ADMIN_PASSWORD)
  --shows N            shows to spread over (default 10), picked from the public catalog
  --show ID            use this show (repeat for more)
  --min-free-seats N   picked shows have at least N available seats (default 20)
  --create-shows N     create N 300-seat shows through the admin API first
  --mix R,H,B          mixed: weights of seat-map reads, hold+release, bookings (default 80,15,5)
  --subscribers N      feed: WebSocket subscribers (default 50, at most ${LIMITS.subscribers})
  --json               print the report as JSON; --json-file F writes it to F as well
  --html F             write an HTML report with charts to F
  --quiet              no progress bar`;

function bounded(name: string, raw: string | undefined, fallback: number, min: number, max: number) {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max)
    throw new RangeError(`--${name} must be a number from ${min} to ${max}`);
  return value;
}

/** The options, or throws an Error whose message says what is wrong (the CLI prints it with USAGE). */
export function parseLoadOptions(
  argv: string[],
  env: Record<string, string | undefined> = {},
  isStderrTty = false,
): LoadOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string' },
      scenario: { type: 'string' },
      connections: { type: 'string' },
      duration: { type: 'string' },
      requests: { type: 'string' },
      rate: { type: 'string' },
      warmup: { type: 'string' },
      seed: { type: 'string' },
      users: { type: 'string' },
      'admin-email': { type: 'string' },
      'admin-password': { type: 'string' },
      shows: { type: 'string' },
      show: { type: 'string', multiple: true },
      'min-free-seats': { type: 'string' },
      'create-shows': { type: 'string' },
      mix: { type: 'string' },
      subscribers: { type: 'string' },
      json: { type: 'boolean' },
      'json-file': { type: 'string' },
      html: { type: 'string' },
      quiet: { type: 'boolean' },
    },
  });
  if (!values.url) throw new Error('--url is required');
  const url = new URL(values.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('--url must be http or https');
  const scenario = values.scenario as ScenarioName;
  if (!SCENARIOS.includes(scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')}`);
  const mix = (values.mix ?? '80,15,5').split(',').map(Number);
  if (mix.length !== 3 || mix.some((w) => !Number.isFinite(w) || w < 0) || mix.every((w) => w === 0))
    throw new Error('--mix must be three weights like 80,15,5');
  const requests = values.requests && bounded('requests', values.requests, 0, 1, LIMITS.requests);
  const isJson = values.json ?? false;
  return {
    url: url.origin,
    scenario,
    connections: bounded('connections', values.connections, 10, 1, LIMITS.connections),
    // A count or a sell-out ends these runs; the duration is then only their bound.
    seconds: bounded(
      'duration',
      values.duration,
      requests || scenario === 'hot-show' ? 60 : 10,
      1,
      LIMITS.seconds,
    ),
    requests: requests || undefined,
    rate: values.rate === undefined ? undefined : bounded('rate', values.rate, 0, 1, LIMITS.rate),
    warmupSeconds: bounded('warmup', values.warmup, 0, 0, LIMITS.warmupSeconds),
    seed: bounded('seed', values.seed, 42, 0, 2 ** 31),
    users: bounded('users', values.users, 200, 1, LIMITS.users),
    shows: bounded('shows', values.shows, 10, 1, LIMITS.shows),
    showIds: values.show ?? [],
    minFreeSeats: bounded('min-free-seats', values['min-free-seats'], 20, 1, 100_000),
    createShows: bounded('create-shows', values['create-shows'], 0, 0, LIMITS.createShows),
    mix: mix as [number, number, number],
    subscribers: bounded('subscribers', values.subscribers, 50, 1, LIMITS.subscribers),
    adminEmail: values['admin-email'] ?? env.LOAD_ADMIN_EMAIL,
    adminPassword: values['admin-password'] ?? env.LOAD_ADMIN_PASSWORD,
    isJson,
    jsonPath: values['json-file'],
    htmlPath: values.html,
    isProgressShown: !values.quiet && (isStderrTty || !isJson),
  };
}
