/**
 * `npm run bench -- store-seam [--ops N] [--rounds N] [--json]`: the two candidate seams between the
 * domain and its two stores, measured on three representative queries:
 *   - `user by email`: the sign-in lookup (one indexed row, case-insensitive email);
 *   - `show info`: the seat-map-adjacent read (shows ⋈ movies ⋈ theaters ⋈ screens by show id);
 *   - `booking tx`: the booking insert transaction (one-booking-per-hold check, booking row, booking
 *     event, conditional take of an offer use, offer-use row).
 * (a) Kysely (SqliteDialect over better-sqlite3, PostgresDialect over pg) against (b) the thin adapters
 * of `src/persistence/store.ts`, each on SQLite (a WAL file at synchronous=NORMAL, as the service runs
 * it) and on a throwaway PostgreSQL 15 (started here like the tests do, fsync on). Variants alternate
 * round by round, since this VM's speed drifts; the table shows each variant's median round, as
 * µs of wall time and of this process's CPU per operation, one at a time and 8 in flight.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type Generated, Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { migrate } from '../src/persistence/app-db.js';
import { migratePostgres } from '../src/persistence/pg-app-db.js';
import { PostgresStore, SqliteStore, type Store } from '../src/persistence/store.js';
import { freshPostgresDatabase, startTestPostgres, TEST_POSTGRES_URL_ENV } from '../test/helpers/postgres.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) || fallback : fallback;
};
const OPS = arg('--ops', 2000);
const ROUNDS = arg('--rounds', 3);
const IN_FLIGHT = 8;
const USERS = 1000;
const NOW = '2026-12-01T10:00:00.000Z';

interface Tables {
  users: {
    id: string;
    name: string;
    email: string;
    password_hash: string;
    created_at: string;
    updated_at: string;
  };
  shows: { id: string; movie_id: string; theater_id: string; screen_id: string; [k: string]: unknown };
  movies: { id: string; title: string };
  theaters: { id: string; name: string };
  screens: { id: string; name: string; layout: string };
  bookings: Record<string, string | number | null>;
  booking_events: {
    id: Generated<number>;
    booking_id: string;
    status: string;
    at: string;
    detail: string | null;
  };
  offers: { id: string; used_count: number; total_limit: number | null };
  offer_uses: { booking_id: string; offer_id: string; user_id: string; created_at: string };
}

/** One way to run the three queries. */
interface Seam {
  userByEmail(email: string): Promise<unknown>;
  showInfo(showId: string): Promise<unknown>;
  book(n: number): Promise<boolean>;
  close(): Promise<void>;
}

const SHOW_INFO_SQL = `
  SELECT s.id, s.movie_id, m.title, s.theater_id, t.name AS theater_name, s.city, sc.name AS screen_name,
         s.start_time, s.status, s.prices, s.currency, sc.layout, s.forbid_single_seat_gaps
  FROM shows s JOIN movies m ON m.id = s.movie_id JOIN theaters t ON t.id = s.theater_id
  JOIN screens sc ON sc.id = s.screen_id WHERE s.id = ?`;

let bookingSerial = 0;
const bookingRow = (n: number) => ({
  id: `bkg_${process.pid}_${++bookingSerial}`,
  user_id: `usr_${n % USERS}`,
  show_id: 'shw_1',
  hold_id: `hld_${bookingSerial}`,
  hold_expires_at: NOW,
  seats: '["A1","A2"]',
  status: 'pending_payment',
  subtotal: 50000,
  discount: 100,
  fees: 3000,
  total: 52900,
  currency: 'INR',
  promo_code: 'BENCH',
  offer_id: 'off_1',
  payment_method: 'card',
  created_at: NOW,
  updated_at: NOW,
});

function adapterSeam(store: Store): Seam {
  return {
    userByEmail: (email) => store.get('SELECT * FROM users WHERE email = ?', [email]),
    showInfo: (showId) => store.get(SHOW_INFO_SQL, [showId]),
    book: (n) =>
      store.transaction(async (tx) => {
        const b = bookingRow(n);
        const existing = await tx.get(
          "SELECT id FROM bookings WHERE hold_id = ? AND status IN ('pending_payment', 'confirmed')",
          [b.hold_id],
        );
        if (existing) return false;
        await tx.run(
          `INSERT INTO bookings (id, user_id, show_id, hold_id, hold_expires_at, seats, status, subtotal, discount, fees,
             total, currency, promo_code, offer_id, payment_method, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          Object.values(b),
        );
        await tx.run('INSERT INTO booking_events (booking_id, status, at, detail) VALUES (?, ?, ?, ?)', [
          b.id,
          'pending_payment',
          NOW,
          null,
        ]);
        const took = await tx.run(
          'UPDATE offers SET used_count = used_count + 1 WHERE id = ? AND (total_limit IS NULL OR used_count < total_limit)',
          ['off_1'],
        );
        if (took.changes !== 1) throw new Error('offer used up');
        await tx.run(
          'INSERT INTO offer_uses (booking_id, offer_id, user_id, created_at) VALUES (?, ?, ?, ?)',
          [b.id, 'off_1', b.user_id, NOW],
        );
        return true;
      }),
    close: () => store.close(),
  };
}

function kyselySeam(db: Kysely<Tables>, close: () => Promise<void>): Seam {
  return {
    userByEmail: (email) => db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst(),
    showInfo: (showId) =>
      db
        .selectFrom('shows as s')
        .innerJoin('movies as m', 'm.id', 's.movie_id')
        .innerJoin('theaters as t', 't.id', 's.theater_id')
        .innerJoin('screens as sc', 'sc.id', 's.screen_id')
        .select([
          's.id',
          's.movie_id',
          'm.title',
          's.theater_id',
          't.name as theater_name',
          's.city',
          'sc.name as screen_name',
          's.start_time',
          's.status',
          's.prices',
          's.currency',
          'sc.layout',
          's.forbid_single_seat_gaps',
        ])
        .where('s.id', '=', showId)
        .executeTakeFirst(),
    book: (n) =>
      db.transaction().execute(async (trx) => {
        const b = bookingRow(n);
        const existing = await trx
          .selectFrom('bookings')
          .select('id')
          .where('hold_id', '=', b.hold_id)
          .where('status', 'in', ['pending_payment', 'confirmed'])
          .executeTakeFirst();
        if (existing) return false;
        await trx.insertInto('bookings').values(b).execute();
        await trx
          .insertInto('booking_events')
          .values({ booking_id: b.id, status: 'pending_payment', at: NOW, detail: null })
          .execute();
        const took = await trx
          .updateTable('offers')
          .set({ used_count: sql`used_count + 1` })
          .where('id', '=', 'off_1')
          .where((eb) => eb.or([eb('total_limit', 'is', null), eb('used_count', '<', eb.ref('total_limit'))]))
          .executeTakeFirst();
        if (took.numUpdatedRows !== 1n) throw new Error('offer used up');
        await trx
          .insertInto('offer_uses')
          .values({ booking_id: b.id, offer_id: 'off_1', user_id: b.user_id, created_at: NOW })
          .execute();
        return true;
      }),
    close,
  };
}

async function seed(store: Store): Promise<void> {
  await store.transaction(async (tx) => {
    for (let i = 0; i < USERS; i++)
      await tx.run(
        'INSERT INTO users (id, name, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
        [`usr_${i}`, `User ${i}`, `user${i}@example.com`, 'x', NOW, NOW],
      );
    await tx.run(
      `INSERT INTO movies (id, title, language, duration_min, certificate, release_date, created_at, updated_at)
       VALUES ('mov_1', 'Bench', 'en', 120, 'U', '2026-01-01', ?, ?)`,
      [NOW, NOW],
    );
    await tx.run(
      "INSERT INTO theaters (id, name, city, created_at, updated_at) VALUES ('thr_1', 'Hall', 'Pune', ?, ?)",
      [NOW, NOW],
    );
    await tx.run(
      `INSERT INTO screens (id, theater_id, name, layout, seat_count, categories, created_at, updated_at)
       VALUES ('scr_1', 'thr_1', 'Audi 1', ?, 200, '{}', ?, ?)`,
      [JSON.stringify({ rows: 10, cols: 20 }), NOW, NOW],
    );
    await tx.run(
      `INSERT INTO shows (id, movie_id, screen_id, theater_id, city, start_time, end_time, language, prices, currency, created_at, updated_at)
       VALUES ('shw_1', 'mov_1', 'scr_1', 'thr_1', 'Pune', ?, ?, 'en', '{"regular":25000}', 'INR', ?, ?)`,
      [NOW, NOW, NOW, NOW],
    );
    await tx.run(
      `INSERT INTO offers (id, code, kind, value, valid_from, valid_until, created_at, updated_at)
       VALUES ('off_1', 'BENCH', 'flat', 100, ?, '2027-01-01T00:00:00.000Z', ?, ?)`,
      [NOW, NOW, NOW],
    );
  });
}

type Query = 'user by email' | 'show info' | 'booking tx';
const QUERIES: Record<Query, (seam: Seam, i: number) => Promise<unknown>> = {
  'user by email': (seam, i) => seam.userByEmail(`USER${i % USERS}@example.com`),
  'show info': (seam) => seam.showInfo('shw_1'),
  'booking tx': (seam, i) => seam.book(i),
};

/** µs of wall time and of this process's CPU per operation, `inFlight` operations at a time. */
async function measure(seam: Seam, query: Query, ops: number, inFlight: number) {
  const run = QUERIES[query];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < ops) await run(seam, next++);
    }),
  );
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs: wallUs / ops, cpuUs: (cpu.user + cpu.system) / ops };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-seam-'));
const server = process.env[TEST_POSTGRES_URL_ENV] ? undefined : await startTestPostgres();
if (server) process.env[TEST_POSTGRES_URL_ENV] = server.url;

async function makeSeams(): Promise<Record<string, Seam>> {
  // Each seam gets a store of its own, seeded alike, so one's bookings never slow the other's reads.
  const sqliteFile = async (name: string) => {
    const db = new Database(path.join(dir, `${name}.db`));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    await seed(new SqliteStore(db));
    return db;
  };
  const pgStore = async (name: string) => {
    const store = new PostgresStore(await freshPostgresDatabase(name), {
      maxConnections: IN_FLIGHT,
      statementTimeoutMs: 10_000,
    });
    await migratePostgres(store.pool);
    await seed(store);
    return store;
  };
  const sqliteForAdapter = await sqliteFile('adapter');
  const sqliteForKysely = await sqliteFile('kysely');
  const pgForAdapter = await pgStore('seam_adapter');
  const pgForKysely = await pgStore('seam_kysely');
  return {
    'sqlite adapter': adapterSeam(new SqliteStore(sqliteForAdapter)),
    'sqlite kysely': kyselySeam(
      new Kysely<Tables>({ dialect: new SqliteDialect({ database: sqliteForKysely }) }),
      async () => {
        sqliteForKysely.close();
      },
    ),
    'postgres adapter': adapterSeam(pgForAdapter),
    // The same pool type (bounded, int8 as numbers): only the seam differs.
    'postgres kysely': kyselySeam(
      new Kysely<Tables>({ dialect: new PostgresDialect({ pool: pgForKysely.pool }) }),
      () => pgForKysely.close(),
    ),
  };
}

try {
  const seams = await makeSeams();
  const results: Record<string, number[][]> = {};
  for (let round = 0; round < ROUNDS; round++)
    for (const query of Object.keys(QUERIES) as Query[])
      for (const inFlight of [1, IN_FLIGHT])
        for (const [name, seam] of Object.entries(seams)) {
          const ops = query === 'booking tx' ? Math.ceil(OPS / 4) : OPS;
          const m = await measure(seam, query, ops, inFlight);
          const key = `${query}|${inFlight}|${name}`;
          results[key] ??= [[], []];
          results[key][0]!.push(m.wallUs);
          results[key][1]!.push(m.cpuUs);
        }
  const rows = Object.entries(results).map(([key, [wall, cpu]]) => {
    const [query, inFlight, seam] = key.split('|');
    return { query, inFlight: Number(inFlight), seam, wallUsPerOp: median(wall!), cpuUsPerOp: median(cpu!) };
  });
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 2));
  else {
    console.log(`store seam: ${OPS} ops per read (a quarter for booking tx), median of ${ROUNDS} rounds`);
    console.log('query          in flight  seam               wall µs/op   cpu µs/op');
    for (const r of rows)
      console.log(
        `${r.query!.padEnd(15)}${String(r.inFlight).padStart(9)}  ${r.seam!.padEnd(18)}${r.wallUsPerOp.toFixed(1).padStart(11)}${r.cpuUsPerOp.toFixed(1).padStart(12)}`,
      );
  }
  for (const seam of Object.values(seams)) await seam.close();
} finally {
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
