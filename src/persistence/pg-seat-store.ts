/**
 * @module pg-seat-store
 * The shard's seats in PostgreSQL: the partition data (`seat_layouts`, `seat_shows`, `seat_snapshots`,
 * keyed by partition) and the workers' commit logs (`seat_commit_log`, see `pg-commit-log.ts`). The
 * tables are the seat store's own, not the app database's migrations: SQLite keeps them in files of
 * their own too, so the app schema's SQLite/PostgreSQL twins stay about the app.
 *
 * Everything the shard recovers from is read at open. After that a batch's partition writes (every
 * partition's creations and snapshots) go as one statement and its log row as one insert, on a
 * `SerialWrites` the two share: each write starts after the one before it committed, so a batch's
 * creations and snapshots are durable before its log row, as with the SQLite files. `sync()` resolves
 * when every write sent so far committed (PostgreSQL fsyncs at commit, so `journalSync` has nothing to
 * choose here).
 */
import crypto from 'node:crypto';
import pg from 'pg';
import type { BatchWrites, JournalRow, ShowRecord } from './partition-journal.js';
import {
  FencedError,
  FencedLogWriter,
  fenceParams,
  type LeaseFence,
  PostgresCommitLog,
  SEAT_COMMIT_LOG_SCHEMA,
  SerialWrites,
} from './pg-commit-log.js';
import type {
  SeatLog,
  SeatPartitionStore,
  SeatStorage,
  SeatStorageRequest,
  SeatStoreOption,
} from './seat-store.js';

type PostgresSeatStore = Extract<SeatStoreOption, { kind: 'postgres' }>;

/** Connections per worker: writes go one at a time; a second one serves the reads at open. */
const DEFAULT_POOL_MAX = 2;
/** Arbitrary, fixed: workers starting together create the tables one at a time. */
const SEAT_SCHEMA_LOCK_KEY = 0x0b0c_5ea7;

/**
 * Who owns each partition in a cluster (\`src/cluster/leases.ts\`), with times from the database's clock.
 * Here because every fenced seat write reads it.
 */
export const PARTITION_LEASES_SCHEMA = `
CREATE TABLE IF NOT EXISTS partition_leases (
  partition integer PRIMARY KEY,
  node text,
  url text,
  epoch bigint NOT NULL DEFAULT 0,
  expires_at timestamptz NOT NULL DEFAULT 'epoch'
)`;

export const SEAT_SCHEMA = `
CREATE TABLE IF NOT EXISTS seat_layouts (
  partition integer NOT NULL,
  id integer NOT NULL,
  key text NOT NULL,
  PRIMARY KEY (partition, id)
);
CREATE TABLE IF NOT EXISTS seat_shows (
  partition integer NOT NULL,
  show_id text NOT NULL,
  layout_id integer NOT NULL,
  forbid_gaps boolean NOT NULL,
  -- The partition's last sequence at creation: a log record at or below it is not this show's.
  created_seq bigint NOT NULL,
  PRIMARY KEY (partition, show_id)
);
CREATE TABLE IF NOT EXISTS seat_snapshots (
  partition integer NOT NULL,
  show_id text NOT NULL,
  seq bigint NOT NULL,
  state bytea NOT NULL,
  PRIMARY KEY (partition, show_id)
);
${SEAT_COMMIT_LOG_SCHEMA};
${PARTITION_LEASES_SCHEMA};
`;

/**
 * One statement for every partition a batch wrote, so they commit together or not at all, in one
 * round trip. Layout ids are each partition's own (numbered here, as SQLite's rowids are there), so
 * no round trip is needed to learn them.
 */
const COMMIT_PARTITIONS = `
WITH layouts AS (
  INSERT INTO seat_layouts (partition, id, key) SELECT * FROM unnest($1::int[], $2::int[], $3::text[])
), shows AS (
  INSERT INTO seat_shows (partition, show_id, layout_id, forbid_gaps, created_seq)
  SELECT * FROM unnest($4::int[], $5::text[], $6::int[], $7::boolean[], $8::bigint[])
)
INSERT INTO seat_snapshots (partition, show_id, seq, state)
SELECT * FROM unnest($9::int[], $10::text[], $11::bigint[], $12::bytea[])
ON CONFLICT (partition, show_id) DO UPDATE SET seq = excluded.seq, state = excluded.state`;

/**
 * `COMMIT_PARTITIONS` for a fenced store: every insert is conditional on the lease row (locked `FOR
 * SHARE` once, in the first CTE), and the statement answers whether it held, so all or nothing is written.
 */
const COMMIT_PARTITIONS_FENCED = `
WITH fence AS (
  SELECT 1 FROM partition_leases WHERE partition = $13 AND node = $14 AND epoch = $15 FOR SHARE
), layouts AS (
  INSERT INTO seat_layouts (partition, id, key) SELECT * FROM unnest($1::int[], $2::int[], $3::text[])
  WHERE EXISTS (SELECT 1 FROM fence)
), shows AS (
  INSERT INTO seat_shows (partition, show_id, layout_id, forbid_gaps, created_seq)
  SELECT * FROM unnest($4::int[], $5::text[], $6::int[], $7::boolean[], $8::bigint[])
  WHERE EXISTS (SELECT 1 FROM fence)
), snapshots AS (
  INSERT INTO seat_snapshots (partition, show_id, seq, state)
  SELECT * FROM unnest($9::int[], $10::text[], $11::bigint[], $12::bytea[])
  WHERE EXISTS (SELECT 1 FROM fence)
  ON CONFLICT (partition, show_id) DO UPDATE SET seq = excluded.seq, state = excluded.state
)
SELECT count(*)::int AS held FROM fence`;

/** The columns of one `COMMIT_PARTITIONS`, filled partition by partition. */
class PartitionRows {
  readonly layouts = { partition: [] as number[], id: [] as number[], key: [] as string[] };
  readonly shows = {
    partition: [] as number[],
    showId: [] as string[],
    layoutId: [] as number[],
    forbidGaps: [] as boolean[],
    createdSeq: [] as number[],
  };
  readonly snapshots = {
    partition: [] as number[],
    showId: [] as string[],
    seq: [] as number[],
    state: [] as Buffer[],
  };

  get isEmpty(): boolean {
    return this.shows.showId.length + this.snapshots.showId.length === 0;
  }

  params(): unknown[] {
    const { layouts: l, shows: s, snapshots: n } = this;
    return [
      l.partition,
      l.id,
      l.key,
      s.partition,
      s.showId,
      s.layoutId,
      s.forbidGaps,
      s.createdSeq,
      n.partition,
      n.showId,
      n.seq,
      n.state,
    ];
  }
}

/** How long an open waits for an earlier writer's sessions to end. */
const FENCE_TIMEOUT_MS = 5000;

/**
 * The session name of whoever writes a log: a later writer of that log ends such sessions first.
 * PostgreSQL cuts names at 63 bytes, so a long writer name (a cluster node's host name) is hashed.
 */
export function seatWriterName(log: string): string {
  const name = `boxoffice-seats:${log}`;
  return Buffer.byteLength(name) <= 63
    ? name
    : `boxoffice-seats:${crypto.createHash('sha256').update(log).digest('base64url').slice(0, 32)}`;
}

/**
 * Fenced stores (a cluster node's partitions, one store each) share one pool per thread and database:
 * a node's dozens of partitions must not each hold connections of their own. The lease fences writes
 * against other nodes; the pool's session name (`openSharedSeatPool`) fences a restarted worker
 * against the sessions its dead predecessor left, as `ensureSeatSchema` explains.
 */
const sharedPools = new Map<string, pg.Pool>();
/** The fenced log rows of all of a thread's partitions, one statement per turn (`FencedLogWriter`). */
const sharedLogWriters = new Map<string, FencedLogWriter>();

function sharedLogWriter(store: PostgresSeatStore): FencedLogWriter {
  const writer = sharedLogWriters.get(store.url);
  if (!writer) throw new Error('a fenced seat store needs openSharedSeatPool() first');
  return writer;
}

function sharedPool(store: PostgresSeatStore): pg.Pool {
  const pool = sharedPools.get(store.url);
  if (!pool) throw new Error('a fenced seat store needs openSharedSeatPool() first');
  return pool;
}

/**
 * Opens this thread's shared pool under `writer`'s session name, after ending the sessions an earlier
 * thread of that name left (a worker that died with a write in flight), and creates the seat tables.
 */
export async function openSharedSeatPool(store: PostgresSeatStore, writer: string): Promise<void> {
  if (sharedPools.has(store.url)) return;
  const pool = new pg.Pool({
    connectionString: store.url,
    max: store.poolMax ?? SHARED_POOL_MAX,
    application_name: seatWriterName(writer),
    // A database that stops answering fails the write (the worker restarts from the store) rather
    // than holding its callers until TCP gives up.
    connectionTimeoutMillis: SEAT_WRITE_TIMEOUT_MS,
    query_timeout: SEAT_WRITE_TIMEOUT_MS,
    keepAlive: true,
  });
  pool.on('error', () => undefined);
  try {
    await ensureSeatSchema(pool, [writer]);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
  sharedPools.set(store.url, pool);
  sharedLogWriters.set(store.url, new FencedLogWriter(pool));
}

/** How long a seat write or a connection may take before it counts as failed. */
const SEAT_WRITE_TIMEOUT_MS = 10_000;

/** Connections a thread's fenced stores share: writes of different partitions run side by side. */
const SHARED_POOL_MAX = 4;

/** Ends the thread's shared pools (a worker that stops). */
export async function endSharedSeatPools(): Promise<void> {
  const pools = [...sharedPools.values()];
  sharedPools.clear();
  sharedLogWriters.clear();
  await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
}

function openPool(store: PostgresSeatStore, writerOf?: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: store.url,
    max: store.poolMax ?? DEFAULT_POOL_MAX,
    application_name: writerOf === undefined ? undefined : seatWriterName(writerOf),
  });
  // An idle connection lost is not a failure by itself: the next write fails, and `sync()` reports it.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Ends the sessions of earlier writers of these logs, waiting until they are gone, then creates the
 * seat tables when missing (workers starting at once take turns). Why the fence: a worker that died
 * or was terminated may leave an insert in flight on the server, and one committing after this open
 * read the log would reappear under the next batch's id (or, after a fold, as a log of partitions its
 * workers no longer own). Ended first, its transaction rolls back; committed first, it is read here.
 * Run on the pool's first connection, before it opens others of the same name.
 */
async function ensureSeatSchema(pool: pg.Pool, fencedLogs: readonly string[] = []): Promise<void> {
  const client = await pool.connect();
  try {
    if (fencedLogs.length > 0)
      await client.query(
        `SELECT pg_terminate_backend(pid, ${FENCE_TIMEOUT_MS}) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = ANY($1::text[])
           AND pid <> pg_backend_pid()`,
        [fencedLogs.map(seatWriterName)],
      );
    await client.query('BEGIN');
    try {
      await client.query(`SELECT pg_advisory_xact_lock(${SEAT_SCHEMA_LOCK_KEY})`);
      await client.query(SEAT_SCHEMA);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  } finally {
    client.release();
  }
}

class PostgresPartitionStore implements SeatPartitionStore {
  readonly #layoutIds = new Map<string, number>();
  readonly #shows: ShowRecord[] = [];
  #lastSeq = 0;

  constructor(
    readonly partition: number,
    private readonly writes: SerialWrites,
  ) {}

  /** Called at open with the rows read for this partition. */
  load(layouts: { id: number; key: string }[], shows: ShowRecord[]): void {
    for (const { id, key } of layouts) this.#layoutIds.set(key, id);
    for (const show of shows) {
      this.#shows.push(show);
      this.#lastSeq = Math.max(this.#lastSeq, show.snapshotSeq);
    }
  }

  lastSeq(): number {
    return this.#lastSeq;
  }

  layouts(): Map<number, string> {
    return new Map([...this.#layoutIds].map(([key, id]) => [id, key]));
  }

  /** The shows read at open; handed out once (recovery), then forgotten to free the snapshots. */
  shows(): Iterable<ShowRecord> {
    return this.#shows.splice(0);
  }

  commands(): Iterable<JournalRow> {
    return [];
  }

  /** Adds this partition's part of a batch to the rows of one statement. */
  addTo(rows: PartitionRows, writes: BatchWrites): void {
    const { partition } = this;
    for (const c of writes.creates) {
      let layoutId = this.#layoutIds.get(c.layoutKey);
      if (layoutId === undefined) {
        layoutId = this.#layoutIds.size + 1;
        this.#layoutIds.set(c.layoutKey, layoutId);
        rows.layouts.partition.push(partition);
        rows.layouts.id.push(layoutId);
        rows.layouts.key.push(c.layoutKey);
      }
      rows.shows.partition.push(partition);
      rows.shows.showId.push(c.showId);
      rows.shows.layoutId.push(layoutId);
      rows.shows.forbidGaps.push(c.forbidSingleSeatGaps);
      rows.shows.createdSeq.push(c.createdSeq);
    }
    // One row per show: an upsert may not touch the same row twice in one statement.
    const snapshots = new Map(writes.snapshots.map((snap) => [snap.showId, snap]));
    for (const snap of snapshots.values()) {
      rows.snapshots.partition.push(partition);
      rows.snapshots.showId.push(snap.showId);
      rows.snapshots.seq.push(snap.seq);
      rows.snapshots.state.push(snap.state);
    }
  }

  sync(): Promise<void> {
    return this.writes.settled();
  }
}

export async function openPostgresSeatStorage(
  request: SeatStorageRequest,
  store: PostgresSeatStore,
): Promise<SeatStorage> {
  const { fence } = request;
  const pool = fence ? sharedPool(store) : openPool(store, request.logs[0]);
  const endPool = fence ? async () => {} : () => pool.end();
  try {
    if (!fence) await ensureSeatSchema(pool, request.logs);
    const writes = new SerialWrites();
    const partitions = new Map<number, PostgresPartitionStore>();
    for (const p of request.partitions) partitions.set(p, new PostgresPartitionStore(p, writes));
    const owned = [...request.partitions];
    const [layouts, shows] = await Promise.all([
      pool.query<{ partition: number; id: number; key: string }>(
        'SELECT partition, id, key FROM seat_layouts WHERE partition = ANY($1::int[])',
        [owned],
      ),
      pool.query<{
        partition: number;
        show_id: string;
        layout_id: number;
        forbid_gaps: boolean;
        created_seq: string;
        seq: string | null;
        state: Buffer | null;
      }>(
        `SELECT s.partition, s.show_id, s.layout_id, s.forbid_gaps, s.created_seq, sn.seq, sn.state
         FROM seat_shows s LEFT JOIN seat_snapshots sn ON sn.partition = s.partition AND sn.show_id = s.show_id
         WHERE s.partition = ANY($1::int[])`,
        [owned],
      ),
    ]);
    const layoutsOf = new Map<number, { id: number; key: string }[]>();
    for (const row of layouts.rows) {
      const list = layoutsOf.get(row.partition) ?? [];
      list.push({ id: row.id, key: row.key });
      layoutsOf.set(row.partition, list);
    }
    const showsOf = new Map<number, ShowRecord[]>();
    for (const row of shows.rows) {
      const list = showsOf.get(row.partition) ?? [];
      list.push({
        showId: row.show_id,
        layoutId: row.layout_id,
        forbidSingleSeatGaps: row.forbid_gaps,
        snapshotSeq: row.seq === null ? Number(row.created_seq) : Number(row.seq),
        snapshot: row.state ?? undefined,
      });
      showsOf.set(row.partition, list);
    }
    for (const [p, part] of partitions) part.load(layoutsOf.get(p) ?? [], showsOf.get(p) ?? []);
    const logs = new Map<string, PostgresCommitLog>();
    for (const name of request.logs)
      logs.set(
        name,
        await PostgresCommitLog.open(pool, name, writes, {
          isSchemaReady: true,
          fenced: fence && { fence, writer: sharedLogWriter(store) },
        }),
      );
    return {
      partitions,
      logs: logs as Map<string, SeatLog>,
      commitPartitions(batchWrites, written) {
        const rows = new PartitionRows();
        for (const [p, batch] of batchWrites) {
          const before = rows.shows.showId.length + rows.snapshots.showId.length;
          partitions.get(p)!.addTo(rows, batch);
          if (rows.shows.showId.length + rows.snapshots.showId.length > before) written.push(p);
        }
        if (rows.isEmpty) return;
        const params = rows.params();
        if (!fence) {
          writes.push(() => pool.query(COMMIT_PARTITIONS, params));
          return;
        }
        writes.push(async () => {
          const result = await pool.query<{ held: number }>(COMMIT_PARTITIONS_FENCED, [
            ...params,
            ...fenceParams(fence),
          ]);
          if (result.rows[0]?.held !== 1) throw new FencedError(fence);
        });
      },
      async close() {
        for (const log of logs.values()) log.close();
        await writes.settled().catch(() => undefined);
        await endPool();
      },
    };
  } catch (error) {
    await endPool().catch(() => undefined);
    throw error;
  }
}

export async function postgresSeatLogNames(store: PostgresSeatStore): Promise<string[]> {
  const pool = openPool(store);
  try {
    await ensureSeatSchema(pool);
    const { rows } = await pool.query<{ log: string }>(
      'SELECT DISTINCT log FROM seat_commit_log ORDER BY log',
    );
    return rows.map((r) => r.log);
  } finally {
    await pool.end();
  }
}

export async function dropPostgresSeatLogs(
  store: PostgresSeatStore,
  names: readonly string[],
): Promise<void> {
  const pool = openPool(store);
  try {
    await pool.query('DELETE FROM seat_commit_log WHERE log = ANY($1::text[])', [[...names]]);
  } finally {
    await pool.end();
  }
}
