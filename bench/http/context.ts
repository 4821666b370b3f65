/**
 * @module bench/http/context
 * What every scenario gets (options, the process registry, the run's users and secret) and gives back
 * (rows of the table), and the two brackets each one runs its load inside: a fresh service from the
 * template data directory, and a fresh ceiling process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { JsonClient } from './client.js';
import { adminToken, type BenchUser } from './fixtures.js';
import type { LoadOptions, LoadResult } from './load.js';
import { type Peer, startCeiling } from './peers.js';
import type { BenchPostgres, PostgresTransport, StoreKind } from './postgres.js';
import type { Processes } from './processes.js';
import { cloneDataDir, type Service, startService } from './service.js';

export interface BenchOptions {
  seconds: number;
  warmupSeconds: number;
  only: Set<number>;
  isJson: boolean;
  connections: number;
  /** Shows in the "many shows" scenarios. */
  shows: number;
  /** Users racing in scenario 3 (and the peers' race); also how many are registered. */
  users: number;
  raceLanes: number;
  raceTimeoutSeconds: number;
  subscribers: number;
  feedProcesses: number;
  /** Holds plus releases per second under the feed; 0 = as fast as they are answered. */
  feedRate: number;
  seed: number;
  cpuProfDir?: string;
  isBuildSkipped: boolean;
  /** Also write the JSON report here. */
  savePath?: string;
  /** Extra environment for the service, for diagnosis only (e.g. JOURNAL_SYNC=normal); the figures to
   * publish use none. */
  serviceEnv: Record<string, string>;
  /** The stores to run each scenario on, in this order (`--store sqlite|postgres|both`). */
  stores: StoreKind[];
  /** How services reach the bench's PostgreSQL (`--pg-via`). */
  pgVia: PostgresTransport;
}

/** The registered users, in a data directory (and, for PostgreSQL, a database) that scenarios copy. */
export interface Template {
  dir: string;
  users: BenchUser[];
  database?: string;
}

export interface Row {
  scenario: string;
  target: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** requests/s over the ceiling's, same load shape; undefined for the ceiling itself. */
  ratio?: number;
  /** CPU time of the server process (all threads) per request, where /proc tells it. */
  cpuMsPerRequest?: number;
  notes: Record<string, unknown>;
}

export interface BenchContext {
  options: BenchOptions;
  procs: Processes;
  jwtSecret: string;
  /** The store the current scenario runs the service on, and its template. */
  store: StoreKind;
  template?: Template;
  /** The run's PostgreSQL server, when a scenario runs on it. */
  postgres?: BenchPostgres;
  /** Ceiling rows already measured this run, by load shape, for the peers to compare with. */
  ceilings: Map<string, Row>;
  log(line: string): void;
}

export interface ServiceSession {
  service: Service;
  client: JsonClient;
  adminToken: string;
  users: BenchUser[];
  /** The processes whose CPU counts as the service's: its own and, on PostgreSQL, the server's. */
  cpu: Pick<LoadOptions, 'pids' | 'extraPids' | 'threadsOf'>;
}

/** Starts a service on a copy of the template, runs `body`, and always stops it and removes its data. */
export async function withService<T>(
  ctx: BenchContext,
  label: string,
  body: (session: ServiceSession) => Promise<T>,
): Promise<T> {
  const dataDir = ctx.template
    ? cloneDataDir(ctx.procs, ctx.template.dir)
    : ctx.procs.tempDir('boxoffice-bench-');
  let cpuProfDir: string | undefined;
  if (ctx.options.cpuProfDir) {
    cpuProfDir = path.join(ctx.options.cpuProfDir, label);
    fs.mkdirSync(cpuProfDir, { recursive: true });
  }
  const postgres = ctx.store === 'postgres' ? ctx.postgres : undefined;
  if (ctx.store === 'postgres' && !postgres) throw new Error('no PostgreSQL server for this run');
  const database = postgres ? await postgres.clone(ctx.template?.database) : undefined;
  const env = { ...ctx.options.serviceEnv };
  if (postgres && database) env.DATABASE_URL = postgres.urlOf(database);
  let service: Service;
  try {
    service = await startService(ctx.procs, { dataDir, jwtSecret: ctx.jwtSecret, cpuProfDir, env });
  } catch (err) {
    if (postgres && database) await postgres.drop(database);
    throw err;
  }
  const client = new JsonClient(service.url, 16);
  const pid = service.managed.child.pid;
  const cpu = { pids: [pid], extraPids: postgres ? () => postgres.pids() : undefined, threadsOf: pid };
  try {
    const token = await adminToken(client);
    return await body({ service, client, adminToken: token, users: ctx.template?.users ?? [], cpu });
  } finally {
    client.close();
    await service.stop();
    ctx.procs.removeDir(dataDir);
    if (postgres && database) await postgres.drop(database);
  }
}

export async function withCeiling<T>(
  ctx: BenchContext,
  bodyBytes: number,
  body: (ceiling: Peer) => Promise<T>,
  isFeed = false,
): Promise<T> {
  const ceiling = await startCeiling(ctx.procs, bodyBytes, isFeed);
  try {
    return await body(ceiling);
  } finally {
    await ceiling.stop();
  }
}

export function loadRow(
  scenario: string,
  target: string,
  load: LoadResult,
  ceiling?: { requestsPerSecond: number },
  notes: Record<string, unknown> = {},
): Row {
  return {
    scenario,
    target,
    requestsPerSecond: load.requestsPerSecond,
    p50Ms: load.p50Ms,
    p99Ms: load.p99Ms,
    errors: load.errors,
    non2xx: load.non2xx,
    ratio: ceiling ? ratio(load.requestsPerSecond, ceiling.requestsPerSecond) : undefined,
    cpuMsPerRequest: load.cpuMsPerRequest,
    notes: {
      statuses: load.statuses,
      ...(load.extraCpuMsPerRequest === undefined ? {} : { pgCpuMsPerRequest: load.extraCpuMsPerRequest }),
      ...(load.threadCpuMsPerRequest ? { threadCpuMsPerRequest: load.threadCpuMsPerRequest } : {}),
      ...notes,
    },
  };
}

export function ratio(value: number, ceiling: number): number {
  return ceiling > 0 ? Math.round((value / ceiling) * 100) / 100 : 0;
}

/** The users a scenario may use: the first `n` registered. */
export function usersFor(ctx: BenchContext, n: number): BenchUser[] {
  const users = ctx.template?.users ?? [];
  if (users.length === 0) throw new Error('this scenario needs registered users');
  return users.slice(0, Math.min(n, users.length));
}
