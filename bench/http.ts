/**
 * `npm run bench -- http`: the service under load the way its load testers will measure it, against a
 * ceiling (a bare Hono app answering the same body size) in the same run.
 * 1. seat-map reads over many shows; 2. hold and release as different users over many shows;
 * 3. hot-show race: N users for one 300-seat show, then book and pay, with a sold-twice check;
 * 4. full booking (hold, book, pay); 5. live-feed fan-out to 5,000 WebSocket subscribers;
 * 6. the seed design as peers (Express + Redis GET/SETEX, Hono + Redis SET NX) under 2 and 3.
 * Each scenario starts the production build (`npm run build` first) on a copy of a data directory with
 * the run's registered users, JOURNAL_SYNC=full, loopback, a free port. Everything is bounded in time and
 * count, and every process the bench starts is stopped at the end, also on failure or Ctrl-C.
 *
 * Options: --seconds N (per measured run, default 10), --only 1,2,.., --json, --save FILE (the JSON as
 * well as the table), --connections N (100), --shows N (100), --users N (5000), --race-lanes N (256),
 * --race-timeout S (60), --subscribers N (5000), --feed-procs N (2), --feed-rate changes/s (default max:
 * as fast as the holds are answered), --seed N, --cpu-prof DIR (V8 profiles of the service), --no-build,
 * --service-env K=V,K=V (diagnosis only, e.g. JOURNAL_SYNC=normal; published figures use none),
 * --store sqlite|postgres|both (default sqlite; postgres starts its own server like the tests, both runs
 * each scenario on SQLite then PostgreSQL and prints their ratio), --pg-via socket|tcp (how the services
 * reach that PostgreSQL: default its Unix-domain socket, as a service on the database's machine would;
 * tcp for loopback TCP, as from another machine).
 * See bench/http/README.md.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { BenchContext, BenchOptions, Row, Template } from './http/context.js';
import { prepareTemplate } from './http/fixtures.js';
import { BenchPostgres, type PostgresTransport, type StoreKind } from './http/postgres.js';
import { type Processes, runBench } from './http/processes.js';
import { storeComparison, table } from './http/report.js';
import { feedFanout } from './http/scenarios/feed-fanout.js';
import { fullBooking } from './http/scenarios/full-booking.js';
import { CYCLE_USERS, holdRelease } from './http/scenarios/hold-release.js';
import { hotShow } from './http/scenarios/hot-show.js';
import { seatMapReads } from './http/scenarios/seat-maps.js';
import { seedPeers } from './http/scenarios/seed-peers.js';
import { buildService } from './http/service.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function positive(name: string, fallback: number): number {
  const value = Number(arg(name, String(fallback)));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

function parseStores(): StoreKind[] {
  const store = arg('store', 'sqlite');
  if (store === 'both') return ['sqlite', 'postgres'];
  if (store === 'sqlite' || store === 'postgres') return [store];
  throw new Error('--store must be sqlite, postgres or both');
}

function parsePgVia(): PostgresTransport {
  const via = arg('pg-via', 'socket');
  if (via === 'socket' || via === 'tcp') return via;
  throw new Error('--pg-via must be socket or tcp');
}

function parseOptions(): BenchOptions {
  const seconds = positive('seconds', 10);
  return {
    seconds,
    warmupSeconds: Math.min(3, Math.max(1, Math.round(seconds / 5))),
    only: new Set(arg('only', '1,2,3,4,5,6').split(',').map(Number)),
    isJson: process.argv.includes('--json'),
    connections: positive('connections', 100),
    shows: positive('shows', 100),
    users: positive('users', 5000),
    raceLanes: positive('race-lanes', 256),
    raceTimeoutSeconds: positive('race-timeout', 60),
    subscribers: positive('subscribers', 5000),
    feedProcesses: positive('feed-procs', 2),
    feedRate: arg('feed-rate', 'max') === 'max' ? 0 : positive('feed-rate', 1),
    seed: positive('seed', 42),
    cpuProfDir: process.argv.includes('--cpu-prof') ? arg('cpu-prof', 'bench-profiles') : undefined,
    isBuildSkipped: process.argv.includes('--no-build'),
    savePath: arg('save', '') || undefined,
    serviceEnv: Object.fromEntries(
      arg('service-env', '')
        .split(',')
        .filter((pair) => pair.includes('='))
        .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    ),
    stores: parseStores(),
    pgVia: parsePgVia(),
  };
}

const SCENARIOS: [number, (ctx: BenchContext) => Promise<Row[]>][] = [
  [1, seatMapReads],
  [2, holdRelease],
  [3, hotShow],
  [4, fullBooking],
  [5, feedFanout],
  [6, seedPeers],
];

/** How many users to register: the race needs them all, the cycles a thousand, reads none. */
function usersNeeded(options: BenchOptions): number {
  const has = (...ns: number[]) => ns.some((n) => options.only.has(n));
  if (has(3, 6)) return options.users;
  if (has(2, 4, 5)) return Math.min(options.users, CYCLE_USERS);
  return 0;
}

async function main(procs: Processes, isInterrupted: () => boolean): Promise<void> {
  const options = parseOptions();
  const log = (line: string) => console.error(line);
  const machine = `${os.availableParallelism()} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${os.loadavg()[0]!.toFixed(2)}`;
  if (!options.isBuildSkipped) {
    log('building (npm run build)…');
    buildService(log);
  }
  const ctx: BenchContext = {
    options,
    procs,
    jwtSecret: randomBytes(32).toString('base64url'),
    store: options.stores[0]!,
    ceilings: new Map(),
    log,
  };
  if (options.stores.includes('postgres')) {
    log(`starting PostgreSQL 15 (initdb in a temp dir, fsync on; services connect via ${options.pgVia})…`);
    ctx.postgres = await BenchPostgres.start(procs, options.pgVia);
  }
  const templates = new Map<StoreKind, Template>();
  const users = usersNeeded(options);
  if (users > 0)
    for (const store of options.stores) {
      log(`registering ${users} users through POST /api/register on ${store} (once per run)…`);
      let database: string | undefined;
      let env: Record<string, string> | undefined;
      if (store === 'postgres') {
        database = await ctx.postgres!.createEmpty('bench_template');
        env = { DATABASE_URL: ctx.postgres!.urlOf(database) };
      }
      templates.set(store, { ...(await prepareTemplate(procs, ctx.jwtSecret, users, log, env)), database });
    }
  const rows: Row[] = [];
  const failures: { scenario: number; error: string }[] = [];
  const isLabelled = options.stores.length > 1 || options.stores[0] !== 'sqlite';
  for (const [n, run] of SCENARIOS) {
    for (const store of options.stores) {
      if (!options.only.has(n) || isInterrupted()) continue;
      // The seed-design peers keep nothing in the service's store: once is enough.
      if (n === 6 && store !== options.stores[0]) continue;
      log(`scenario ${n}${isLabelled ? ` on ${store}` : ''}…`);
      ctx.store = store;
      ctx.template = templates.get(store);
      try {
        const got = await run(ctx);
        for (const row of got) {
          if (isLabelled) row.target = `${row.target}, ${store}`;
          row.notes.store = store;
        }
        rows.push(...got);
      } catch (err) {
        const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
        log(`scenario ${n} on ${store} failed: ${error}`);
        failures.push({ scenario: n, error: `${store}: ${error}` });
      }
    }
  }
  for (const ceiling of ctx.ceilings.values()) if (!rows.includes(ceiling)) rows.push(ceiling);
  const command = `npm run bench -- http ${process.argv.slice(2).join(' ')}`.trim();
  const comparison = options.stores.length > 1 ? storeComparison(rows) : undefined;
  const loadAfter = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const report = {
    machine,
    loadavgAtEnd: loadAfter,
    command,
    options: { ...options, only: [...options.only] },
    rows,
    comparison,
    failures,
  };
  if (options.savePath) fs.writeFileSync(options.savePath, `${JSON.stringify(report, null, 2)}\n`);
  if (options.isJson) console.log(JSON.stringify(report, null, 2));
  else {
    const env = Object.entries(options.serviceEnv).map(([k, v]) => `${k}=${v}`);
    const diagnostic = env.length > 0 ? `; diagnostic service env ${env.join(' ')}` : '';
    console.log(
      `BoxOffice HTTP benchmark (${machine}); ${options.seconds} s per run, ${options.connections} connections${diagnostic}`,
    );
    console.log(`command: ${command}\n`);
    console.log(table(rows));
    if (comparison)
      console.log(
        `\nPostgreSQL (reached via ${options.pgVia === 'socket' ? 'its Unix socket' : 'loopback TCP'}) against SQLite, same run:\n${comparison.table}`,
      );
    console.log(`\nload average at the end (/proc/loadavg): ${loadAfter}`);
    for (const f of failures) console.log(`\nscenario ${f.scenario} FAILED: ${f.error.split('\n')[0]}`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

await runBench(main);
