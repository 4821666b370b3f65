/**
 * `npm run bench -- pg-statements`: what one hold + release and one full booking cost PostgreSQL, in
 * statements and server time. pg_stat_statements is not in Debian's server package, so the bench's own
 * PostgreSQL logs every statement with its duration (`log_min_duration_statement=0` to a file) while
 * the production build serves N sequential hold + release cycles, then N bookings (hold, book, pay),
 * one at a time so each statement belongs to the operation in flight. Counts and durations are per
 * operation, grouped by statement (literals and parameters folded). Background work of the service in
 * the same window (sweeps, the outbox) is counted with it. A diagnosis, not a benchmark: the logging
 * itself slows the server.
 * Options: --count N (default 100 of each), --json, --no-build.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { bookOnce, JsonClient } from './http/client.js';
import { createShows, prepareTemplate, SEAT_LABELS } from './http/fixtures.js';
import { BenchPostgres } from './http/postgres.js';
import { type Processes, runBench } from './http/processes.js';
import { buildService, startService } from './http/service.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

interface Statement {
  text: string;
  /** Statements run (simple queries and extended-protocol executes). */
  count: number;
  /** Server time of parse + bind + execute, ms. */
  ms: number;
}

/** Logs every statement with its duration to `<data dir>/log/statements.log`; returns that path. */
async function logStatements(postgres: BenchPostgres): Promise<string> {
  const client = new pg.Client({ connectionString: postgres.server.url });
  await client.connect();
  let dataDir: string;
  try {
    dataDir = (await client.query('SHOW data_directory')).rows[0].data_directory as string;
    for (const setting of [
      "logging_collector = 'on'",
      "log_directory = 'log'",
      "log_filename = 'statements.log'",
      'log_min_duration_statement = 0',
      "log_line_prefix = '%p '",
    ])
      await client.query(`ALTER SYSTEM SET ${setting}`);
  } finally {
    await client.end();
  }
  await postgres.server.restart();
  return path.join(dataDir, 'log', 'statements.log');
}

/** Folds literals, so one statement shape is one row. */
function shape(sql: string): string {
  return sql
    .replace(/\s+/g, ' ')
    .replace(/'(?:[^']|'')*'/g, "'?'")
    .replace(/\b\d+\b/g, '?')
    .replace(/\$\d+/g, '$')
    .trim()
    .slice(0, 140);
}

/** Statements logged since byte `from`. */
function readStatements(file: string, from: number): Map<string, Statement> {
  const text = fs.readFileSync(file).subarray(from).toString('utf8');
  const out = new Map<string, Statement>();
  // One entry starts at "<pid> LOG:  duration: X ms  <kind> <name>: SQL" and runs to the next entry.
  const entry =
    /^\d+ LOG: {2}duration: ([\d.]+) ms {2}(statement|parse|bind|execute)[^:]*: ([\s\S]*?)(?=^\d+ [A-Z]+: |(?![\s\S]))/gm;
  for (const match of text.matchAll(entry)) {
    const ms = Number(match[1]);
    const kind = match[2]!;
    const key = shape(match[3]!);
    const row = out.get(key) ?? { text: key, count: 0, ms: 0 };
    if (kind === 'statement' || kind === 'execute') row.count++;
    row.ms += ms;
    out.set(key, row);
  }
  return out;
}

/** Server-wide counters: WAL flushes (pg_stat_wal.wal_sync), WAL bytes, committed transactions. */
async function serverCounters(url: string): Promise<{ walSyncs: number; walBytes: number; commits: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // The statistics of this transaction's snapshot would be cached: clear them first.
    await client.query('SELECT pg_stat_clear_snapshot()');
    const wal = (await client.query('SELECT wal_sync, wal_bytes FROM pg_stat_wal')).rows[0];
    const db = (await client.query('SELECT sum(xact_commit) AS commits FROM pg_stat_database')).rows[0];
    return { walSyncs: Number(wal.wal_sync), walBytes: Number(wal.wal_bytes), commits: Number(db.commits) };
  } finally {
    await client.end();
  }
}

function counterDelta(
  before: Awaited<ReturnType<typeof serverCounters>>,
  after: Awaited<ReturnType<typeof serverCounters>>,
  operations: number,
) {
  const per = (n: number) => Math.round((n / operations) * 100) / 100;
  return {
    walFlushesPerOperation: per(after.walSyncs - before.walSyncs),
    walBytesPerOperation: Math.round((after.walBytes - before.walBytes) / operations),
    // Every transaction, read-only ones included (each autocommit SELECT is one), plus this bench's own.
    transactionsPerOperation: per(after.commits - before.commits),
  };
}

function perOperation(statements: Map<string, Statement>, operations: number) {
  const rows = [...statements.values()].sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((sum, r) => ({ count: sum.count + r.count, ms: sum.ms + r.ms }), {
    count: 0,
    ms: 0,
  });
  const r2 = (n: number) => Math.round(n * 100) / 100;
  return {
    operations,
    statementsPerOperation: r2(total.count / operations),
    serverMsPerOperation: r2(total.ms / operations),
    statements: rows.map((r) => ({
      perOperation: r2(r.count / operations),
      msPerOperation: r2(r.ms / operations),
      text: r.text,
    })),
  };
}

async function main(procs: Processes) {
  const count = Number(arg('count', '100'));
  const log = (line: string) => console.error(line);
  if (!process.argv.includes('--no-build')) {
    log('building (npm run build)…');
    buildService(log);
  }
  const postgres = await BenchPostgres.start(procs);
  const logFile = await logStatements(postgres);
  const jwtSecret = randomBytes(32).toString('base64url');
  const database = await postgres.createEmpty('bench_template');
  const template = await prepareTemplate(procs, jwtSecret, 1, log, {
    DATABASE_URL: postgres.urlOf(database),
  });
  const service = await startService(procs, {
    dataDir: template.dir,
    jwtSecret,
    env: { DATABASE_URL: postgres.urlOf(database) },
  });
  const client = new JsonClient(service.url, 4);
  const token = template.users[0]!.token;
  try {
    const login = await client.request('POST', '/api/login', {
      body: { email: 'bench-admin@boxoffice.test', password: 'bench-admin-password-1' },
    });
    const showIds = await createShows(client, login.body.token as string, Math.ceil((2 * count) / 8) + 2);
    // Holds per user per show are bounded: a show per 8 operations.
    const seat = (n: number) => ({ showId: showIds[Math.floor(n / 8)]!, seat: SEAT_LABELS[n % 8]! });
    const mark = () => fs.statSync(logFile).size;
    // Idle backends report their statistics up to 10 s late (PGSTAT_IDLE_INTERVAL): wait that out.
    const settle = () => new Promise((r) => setTimeout(r, 11_000));

    await settle();
    const adminUrl = postgres.server.url;
    let counters = await serverCounters(adminUrl);
    let from = mark();
    for (let n = 0; n < count; n++) {
      const { showId, seat: label } = seat(n);
      const held = await client.request('POST', `/api/shows/${showId}/holds`, {
        body: { seats: [label] },
        token,
      });
      const released = await client.request('DELETE', `/api/holds/${held.body.hold.id}`, { token });
      if (held.status !== 201 || released.status !== 204)
        throw new Error(`hold/release: ${held.status} ${released.status}`);
    }
    await settle();
    const holdRelease = {
      ...perOperation(readStatements(logFile, from), count),
      ...counterDelta(counters, await serverCounters(adminUrl), count),
    };

    counters = await serverCounters(adminUrl);
    from = mark();
    for (let n = count; n < 2 * count; n++) {
      const { showId, seat: label } = seat(n);
      await bookOnce(client, showId, label, token, 'booking');
    }
    await settle();
    const booking = {
      ...perOperation(readStatements(logFile, from), count),
      ...counterDelta(counters, await serverCounters(adminUrl), count),
    };

    const report = { holdRelease, booking };
    if (process.argv.includes('--json')) console.log(JSON.stringify(report, null, 2));
    else
      for (const [name, figures] of Object.entries(report)) {
        console.log(
          `\n${name}: ${figures.statementsPerOperation} statements, ${figures.serverMsPerOperation} ms of server time, ${figures.walFlushesPerOperation} WAL flushes (${figures.walBytesPerOperation} B), ${figures.transactionsPerOperation} transactions per operation (${figures.operations} sequential)`,
        );
        for (const s of figures.statements.slice(0, 25))
          console.log(
            `  ${String(s.perOperation).padStart(6)} × ${String(s.msPerOperation).padStart(7)} ms  ${s.text}`,
          );
      }
  } finally {
    client.close();
    await service.stop();
  }
}

await runBench(main);
