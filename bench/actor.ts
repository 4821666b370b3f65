/**
 * The allocator's own figures, on this machine:
 * 1. pure actor: hold + release commands per second on one core, no I/O;
 * 2. durable: commands per second through router → worker → journal at synchronous=FULL, with many
 *    concurrent callers, and their p50/p99 latency;
 * 3. scale: RSS and cold recovery time for N shows of 300 seats (default 500,000, about a week of every
 *    show in India), measured in a fresh process.
 * Options: --json, --seconds S and --callers N and --sync full|normal (phase 2; defaults 5, 10000, full),
 * --store sqlite|postgres|both (phase 2's seat store; default sqlite; postgres starts a throwaway server
 * like the tests, both measures SQLite then PostgreSQL and their ratio), --shows N (phase 3),
 * --skip pure,durable,scale.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { simpleLayout } from '../src/actors/seat-layout.js';
import { ShardCore } from '../src/actors/shard-core.js';
import type { ShardRequest } from '../src/actors/shard-protocol.js';
import { partitionOf, ShardRouter } from '../src/actors/shard-router.js';
import { apply, createShowState, type ShowCommand } from '../src/actors/show-actor.js';
import { layoutKeyOf, layoutResolver } from '../src/actors/show-codec.js';
import type { SeatStoreOption } from '../src/persistence/seat-store.js';
import { startTestPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { Latencies } from './http/latency.js';
import { childrenOf, cpuByPid, cpuDelta } from './http/postgres.js';

const LAYOUT_KEY = layoutKeyOf(simpleLayout(15, 20, ['PREMIUM', 'GOLD', 'SILVER'])); // 300 seats
const layout = layoutResolver()(LAYOUT_KEY);
const labels = [...layout.labels];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const isJson = process.argv.includes('--json');
const skip = new Set(arg('skip', '').split(','));

/** Phase 1: one core, no I/O. Holds of two seats and their releases over 1,000 shows, after a warm-up. */
function pureActor() {
  const shows = Array.from({ length: 1000 }, (_, i) =>
    createShowState(`shw_${i}`, layout, LAYOUT_KEY, false),
  );
  const pairs = 1_000_000;
  // Ids and seat lists are made before the clock starts: the figure is the actor's, not the bench's.
  const holdIds = Array.from({ length: pairs }, (_, n) => `hld_${n}`);
  const seatPairs = Array.from({ length: labels.length - 1 }, (_, i) => [labels[i]!, labels[i + 1]!]);
  const run = (count: number, nowMs: number) => {
    for (let n = 0; n < count; n++) {
      const state = shows[n % shows.length]!;
      const holdId = holdIds[n]!;
      const seats = seatPairs[(n * 7) % seatPairs.length]!;
      apply(state, {
        type: 'hold',
        holdId,
        ownerId: 'u',
        seats,
        nowMs,
        expiresAtMs: nowMs + 300_000,
        maxSeatsPerOwner: 10,
      });
      apply(state, { type: 'release', holdId, ownerId: 'u', nowMs });
    }
  };
  run(pairs / 5, 1_000_000);
  const started = performance.now();
  run(pairs, 2_000_000);
  const seconds = (performance.now() - started) / 1000;
  const total = pairs * 2;
  return { commands: total, seconds: round(seconds, 3), commandsPerSecond: Math.round(total / seconds) };
}

/** Phase 2: callers each loop hold → release on their own show, through the real threads and journals. */
async function durable(seconds: number, postgres?: TestPostgres) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-bench-'));
  let seatStore: SeatStoreOption | undefined;
  if (postgres) {
    const database = `actor_${Date.now()}`;
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 LOCALE_PROVIDER libc LC_COLLATE 'C'`);
    await admin.end();
    const url = new URL(postgres.url);
    url.pathname = `/${database}`;
    seatStore = { kind: 'postgres', url: url.toString() };
  }
  const router = await ShardRouter.start({
    dataDir,
    partitions: 64,
    workers: Math.max(1, os.availableParallelism() - 1),
    journalSync: arg('sync', 'full') as 'full' | 'normal',
    snapshotEvery: 1000,
    sweepEveryMs: 0,
    seatStore,
  });
  const callers = Number(arg('callers', '10000'));
  const showIds = Array.from({ length: callers }, (_, i) => `shw_b${i}`);
  await Promise.all(
    showIds.map((showId) =>
      router.createShow({ showId, layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false }),
    ),
  );
  // A histogram, not an array of every sample: a million-entry array costs the caller's thread GC time.
  const latencies = new Latencies();
  let commands = 0;
  let refused = 0;
  const deadline = performance.now() + seconds * 1000;
  let batches = 0;
  let journaled = 0;
  router.onBatch((n) => {
    batches++;
    journaled += n;
  });
  const loop = async (i: number) => {
    const showId = showIds[i]!;
    for (let n = 0; performance.now() < deadline; n++) {
      const holdId = `hld_${n}.${showId}`;
      const nowMs = Date.now();
      let t = performance.now();
      const held = await router.send(showId, {
        type: 'hold',
        holdId,
        ownerId: 'u',
        seats: [labels[n % labels.length]!],
        nowMs,
        expiresAtMs: nowMs + 300_000,
        maxSeatsPerOwner: 10,
      });
      latencies.record(performance.now() - t);
      t = performance.now();
      const released = await router.send(showId, { type: 'release', holdId, ownerId: 'u', nowMs });
      latencies.record(performance.now() - t);
      commands += 2;
      if (!held.ok || !released.ok) refused++;
    }
  };
  // CPU of this process (router and shard workers) and of the PostgreSQL server, per command.
  const serverPids = () => (postgres ? [postgres.pid, ...childrenOf(postgres.pid)] : []);
  const cpuBefore = cpuByPid([process.pid, ...serverPids()]);
  const started = performance.now();
  await Promise.all(showIds.map((_, i) => loop(i)));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuDelta(
    cpuBefore,
    cpuByPid([...new Set([...cpuBefore.keys(), process.pid, ...serverPids()])]),
  );
  const ownCpu = cpu.get(process.pid) ?? 0;
  const serverCpu = [...cpu].reduce((sum, [pid, value]) => (pid === process.pid ? sum : sum + value), 0);
  await router.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    callers,
    seconds: round(elapsed, 2),
    commands,
    refused,
    commandsPerSecond: Math.round(commands / elapsed),
    p50Ms: round(latencies.percentile(50), 2),
    p99Ms: round(latencies.percentile(99), 2),
    commandsPerCommit: round(journaled / Math.max(1, batches), 1),
    cpuMsPerCommand: round(((ownCpu + serverCpu) * 1000) / Math.max(1, commands), 4),
    ...(postgres ? { serverCpuMsPerCommand: round((serverCpu * 1000) / Math.max(1, commands), 4) } : {}),
  };
}

/** Phase 2 on each store of `--store`, PostgreSQL on a throwaway server stopped by its pid. */
async function durableByStore(seconds: number): Promise<Record<string, unknown>> {
  const store = arg('store', 'sqlite');
  if (!['sqlite', 'postgres', 'both'].includes(store))
    throw new Error('--store must be sqlite, postgres or both');
  const out: Record<string, unknown> = {};
  let sqlite: Awaited<ReturnType<typeof durable>> | undefined;
  if (store !== 'postgres') sqlite = await durable(seconds);
  if (store === 'sqlite') return sqlite!;
  if (sqlite) out.sqlite = sqlite;
  const server = await startTestPostgres();
  // A crash of the bench must not leave the server behind: SIGQUIT is its immediate shutdown.
  const killNow = () => {
    try {
      process.kill(server.pid, 'SIGQUIT');
    } catch {
      // Already gone.
    }
  };
  process.once('exit', killNow);
  try {
    const postgres = await durable(seconds, server);
    out.postgres = postgres;
    if (sqlite)
      out.postgresOverSqlite = round(postgres.commandsPerSecond / Math.max(1, sqlite.commandsPerSecond), 2);
  } finally {
    await server.stop();
    process.off('exit', killNow);
  }
  return out;
}

/**
 * Phase 3a: builds N shows (a tenth with two holds and a booking), checkpoints them into snapshots,
 * then leaves one more hold per tenth of the shows in the commit log only, so recovery replays too.
 */
async function buildShows(dataDir: string, shows: number) {
  const partitions = 64;
  const { core } = await ShardCore.open({
    dataDir,
    partitions: Array.from({ length: partitions }, (_, p) => p),
    journalSync: 'normal',
    snapshotEvery: 1_000_000,
    log: 'w-0',
  });
  const started = performance.now();
  const chunk = 8192;
  for (let from = 0; from < shows; from += chunk) {
    const requests: ShardRequest[] = [];
    for (let i = from; i < Math.min(shows, from + chunk); i++) {
      const showId = `shw_${i}`;
      const partition = partitionOf(showId, partitions);
      requests.push({
        id: -1,
        partition,
        showId,
        op: { kind: 'create', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false },
      });
      if (i % 10 !== 0) continue;
      const nowMs = Date.now();
      const hold: ShowCommand = {
        type: 'holdBest',
        holdId: `hld_${i}.${showId}`,
        ownerId: 'u',
        count: 4,
        nowMs,
        expiresAtMs: nowMs + 3_600_000,
        maxSeatsPerOwner: 10,
      };
      const confirm: ShowCommand = {
        type: 'confirm',
        holdId: `hld_${i}.${showId}`,
        bookingId: `bkg_${i}`,
        ownerId: 'u',
        seats: [],
        allowRehold: false,
        nowMs,
      };
      const hold2: ShowCommand = { ...hold, holdId: `hld_${i}b.${showId}` } as ShowCommand;
      for (const command of [hold, confirm, hold2])
        requests.push({ id: -1, partition, showId, op: { kind: 'command', command } });
    }
    core.process(requests);
  }
  const { snapshots, outcome } = core.checkpointNow();
  await core.sync(outcome);
  const nowMs = Date.now();
  let logged = 0;
  for (let from = 0; from < shows; from += chunk * 10) {
    const requests: ShardRequest[] = [];
    for (let i = from; i < Math.min(shows, from + chunk * 10); i += 10) {
      const showId = `shw_${i}`;
      const command: ShowCommand = {
        type: 'holdBest',
        holdId: `hld_${i}c.${showId}`,
        ownerId: 'v',
        count: 2,
        nowMs,
        expiresAtMs: nowMs + 3_600_000,
        maxSeatsPerOwner: 10,
      };
      requests.push({
        id: -1,
        partition: partitionOf(showId, partitions),
        showId,
        op: { kind: 'command', command },
      });
    }
    logged += core.process(requests).journaled;
  }
  await core.close();
  return { buildSeconds: round((performance.now() - started) / 1000, 1), snapshots, logged, partitions };
}

/** Phase 3b, in a fresh process: cold recovery of every partition, then RSS. */
async function recoverOnly(dataDir: string) {
  const started = performance.now();
  const { core, recovery } = await ShardCore.open({
    dataDir,
    partitions: Array.from({ length: 64 }, (_, p) => p),
    journalSync: 'normal',
    snapshotEvery: 1000,
    log: 'w-0',
  });
  const seconds = (performance.now() - started) / 1000;
  (globalThis as { gc?: () => void }).gc?.();
  const rssMb = Math.round(process.memoryUsage().rss / 1048576);
  const heapMb = Math.round(process.memoryUsage().heapUsed / 1048576);
  await core.close();
  return {
    shows: recovery.shows,
    replayed: recovery.replayed,
    recoverySeconds: round(seconds, 2),
    rssMb,
    heapMb,
  };
}

async function scale(shows: number) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-scale-'));
  try {
    const built = await buildShows(dataDir, shows);
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--expose-gc', new URL(import.meta.url).pathname, '--recover-only', dataDir],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      },
    );
    return { ...built, ...(JSON.parse(out.trim().split('\n').pop()!) as object) };
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

const recoverDir = arg('recover-only', '');
if (recoverDir) {
  console.log(JSON.stringify(await recoverOnly(recoverDir)));
} else {
  const results: Record<string, unknown> = {
    machine: `${os.availableParallelism()} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  };
  if (!skip.has('pure')) results.pure = pureActor();
  if (!skip.has('durable')) results.durable = await durableByStore(Number(arg('seconds', '5')));
  if (!skip.has('scale')) results.scale = await scale(Number(arg('shows', '500000')));
  if (isJson) console.log(JSON.stringify(results, null, 2));
  else {
    console.log(`BoxOffice allocator benchmark (${results.machine})`);
    for (const [phase, figures] of Object.entries(results))
      if (phase !== 'machine') console.log(phase.padEnd(8), JSON.stringify(figures));
    console.log(
      `load average at the end (/proc/loadavg): ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`,
    );
  }
}
