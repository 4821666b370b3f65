/**
 * @module pg-commit-log
 * A worker's commit log in PostgreSQL: the same shape as `commit-log.ts` (one row per batch, its body
 * the batch's records as JSON lines), in one table shared by all workers and keyed by the log's name.
 * `commit()` numbers the batch and sends its insert at once, without waiting; `sync()` resolves when
 * every insert sent so far has committed (the server fsyncs at commit), which is the point where the
 * SQLite log's WAL flush resolves. Inserts go one after another on the pool, so batches commit in order;
 * a failed write fails every later `sync()`: memory is then ahead of the store and the worker must end,
 * as it does when a SQLite flush fails.
 *
 * Differences from the SQLite log, for whoever wires it into the shard: it is opened with `await
 * PostgresCommitLog.open(...)`, which reads the kept rows, and `records()` yields those (recovery reads
 * the log right after opening); `close()` stops new writes and `closed()` waits for those in flight.
 */
import type pg from 'pg';
import { BatchBuilder, decodeBatch, type LogRecord } from './commit-log.js';

/**
 * The lease a cluster node holds on the one partition a fenced store writes (`partition_leases`,
 * `src/cluster/leases.ts`). Every write of a fenced store commits only while that lease row still names
 * this node and epoch, and locks it `FOR SHARE` while it does: a takeover's UPDATE waits for a write in
 * flight, and a write that comes after a takeover finds another epoch and writes nothing. So a node that
 * was paused or cut off never journals, and so never acknowledges, after its lease moved.
 */
export interface LeaseFence {
  node: string;
  partition: number;
  epoch: number;
}

/** A fenced write found the lease moved: nothing was written, and memory is ahead of the store. */
export class FencedError extends Error {
  constructor(fence: LeaseFence) {
    super(`partition ${fence.partition}: the lease of epoch ${fence.epoch} is no longer ${fence.node}'s`);
    this.name = 'FencedError';
  }
}

/** A fenced log's lease and the writer (one per thread) that batches its rows with other partitions'. */
export interface FencedLog {
  fence: LeaseFence;
  writer: FencedLogWriter;
}

/** A condition on the lease row, `FOR SHARE`; parameters from `$n`: partition, node, epoch. */
export function fenceCondition(n: number): string {
  return `EXISTS (SELECT 1 FROM partition_leases WHERE partition = $${n} AND node = $${n + 1} AND epoch = $${n + 2} FOR SHARE)`;
}

export function fenceParams(fence: LeaseFence): unknown[] {
  return [fence.partition, fence.node, fence.epoch];
}

export const SEAT_COMMIT_LOG_SCHEMA = `
CREATE TABLE IF NOT EXISTS seat_commit_log (
  log text NOT NULL,
  id bigint NOT NULL,
  records integer NOT NULL,
  body bytea NOT NULL,
  PRIMARY KEY (log, id)
)`;

/**
 * Writes sent one after another: each starts once the one before it committed, so writes commit in
 * the order they were pushed. The shard's partition store and its commit log share one, which keeps
 * today's ordering (a batch's creations and snapshots commit before its log row). It rejects for good
 * once a write fails.
 */
export class SerialWrites {
  #tail: Promise<void> = Promise.resolve();
  /** The write queued last, while it has not started: more items of its kind can still join it. */
  #open?: { kind: string; items: unknown[]; isStarted: boolean };
  #sent = 0;

  push(write: () => Promise<unknown>): void {
    this.#open = undefined;
    this.#chain(write);
  }

  /**
   * Queues `item` for a write of its `kind` that takes many items at once (a multi-row insert). While
   * the write before it runs, later items of the same kind join the one queued last, so a burst of
   * batches behind a slow commit goes as one statement and one commit, not one each (group commit).
   * Order is kept: an item never joins a write queued before another kind of write.
   */
  pushItem<T>(kind: string, item: T, write: (items: T[]) => Promise<unknown>, maxItems: number): void {
    const open = this.#open;
    if (open && open.kind === kind && !open.isStarted && open.items.length < maxItems) {
      open.items.push(item);
      return;
    }
    const group = { kind, items: [item] as unknown[], isStarted: false };
    this.#chain(() => {
      group.isStarted = true;
      return write(group.items as T[]);
    });
    this.#open = group;
  }

  /** Statements sent so far (diagnosis and tests: how well writes were grouped). */
  get sent(): number {
    return this.#sent;
  }

  #chain(write: () => Promise<unknown>): void {
    this.#tail = this.#tail.then(async () => {
      this.#sent++;
      await write();
    });
    // A failure is reported by `settled()`; this keeps an unobserved one from ending the process.
    this.#tail.catch(() => undefined);
  }

  /** Resolves once every write pushed so far has committed; rejects if any failed. */
  settled(): Promise<void> {
    return this.#tail;
  }
}

/**
 * The log rows of every fenced partition a worker serves, in one statement per turn: a batch of
 * requests spread over many partitions (a cluster node's cores, one per partition) is one insert and
 * one commit, as a single node's per-worker log is, not one per partition. Each row is fenced by its
 * own partition's lease (`FOR SHARE` per row), and the statement returns the logs it wrote: a partition
 * whose lease moved gets `FencedError` while the others commit. One statement in flight at a time;
 * rows that arrive meanwhile go together in the next (group commit).
 */
export class FencedLogWriter {
  #queue: {
    fence: LeaseFence;
    log: string;
    rows: { id: number; records: number; body: Buffer }[];
    resolve: () => void;
    reject: (err: unknown) => void;
  }[] = [];
  #isInFlight = false;
  #isScheduled = false;

  constructor(private readonly pool: pg.Pool) {}

  insert(
    fence: LeaseFence,
    log: string,
    rows: { id: number; records: number; body: Buffer }[],
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ fence, log, rows, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#isScheduled || this.#isInFlight) return;
    this.#isScheduled = true;
    // Every partition of the batch adds its row in this turn: they go together.
    setImmediate(() => {
      this.#isScheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#isInFlight || this.#queue.length === 0) return;
    const items = this.#queue.splice(0, MAX_ROWS_PER_INSERT);
    this.#isInFlight = true;
    try {
      const logs: string[] = [];
      const ids: number[] = [];
      const records: number[] = [];
      const bodies: Buffer[] = [];
      const partitions: number[] = [];
      const epochs: number[] = [];
      for (const item of items)
        for (const row of item.rows) {
          logs.push(item.log);
          ids.push(row.id);
          records.push(row.records);
          bodies.push(row.body);
          partitions.push(item.fence.partition);
          epochs.push(item.fence.epoch);
        }
      const result = await this.pool.query<{ log: string }>(
        `INSERT INTO seat_commit_log (log, id, records, body)
         SELECT v.log, v.id, v.records, v.body
         FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bytea[], $5::int[], $6::bigint[])
           AS v(log, id, records, body, partition, epoch)
         WHERE EXISTS (SELECT 1 FROM partition_leases l
                       WHERE l.partition = v.partition AND l.node = $7 AND l.epoch = v.epoch FOR SHARE)
         RETURNING log`,
        [logs, ids, records, bodies, partitions, epochs, items[0]!.fence.node],
      );
      const written = new Map<string, number>();
      for (const row of result.rows) written.set(row.log, (written.get(row.log) ?? 0) + 1);
      for (const item of items)
        if (written.get(item.log) === item.rows.length) item.resolve();
        else item.reject(new FencedError(item.fence));
    } catch (err) {
      for (const item of items) item.reject(err);
    } finally {
      this.#isInFlight = false;
      if (this.#queue.length > 0) this.#schedule();
    }
  }
}

/** Batches grouped into one insert at most: 3 parameters each, far below PostgreSQL's 65,535. */
const MAX_ROWS_PER_INSERT = 1_000;

export class PostgresCommitLog {
  readonly #pool: pg.Pool;
  #lastBatchId: number;
  /** Records per batch still kept (loaded or committed since), for recordCount and pruning. */
  readonly #batchRecords = new Map<number, number>();
  readonly #loaded: Buffer[];
  readonly #pending = new BatchBuilder();
  /** The chain of writes sent so far (perhaps shared with the partition store); it rejects for good once one fails. */
  readonly #writes: SerialWrites;
  /** A cluster partition's log: its lease, and the thread's writer its rows go through. */
  readonly #fenced?: FencedLog;
  #isClosed = false;

  private constructor(
    pool: pg.Pool,
    readonly file: string,
    rows: { id: number; records: number; body: Buffer }[],
    writes: SerialWrites,
    fenced: FencedLog | undefined,
  ) {
    this.#pool = pool;
    this.#writes = writes;
    this.#fenced = fenced;
    this.#loaded = rows.map((r) => r.body);
    for (const r of rows) this.#batchRecords.set(r.id, r.records);
    this.#lastBatchId = rows.length > 0 ? rows[rows.length - 1]!.id : 0;
  }

  /**
   * Opens the log named `name` (e.g. `w-0`), creating the table when missing, and reads its rows. Its
   * writes go through `writes` when given (shared with the shard's partition store), else a chain of its own.
   */
  static async open(
    pool: pg.Pool,
    name: string,
    writes: SerialWrites = new SerialWrites(),
    options: { isSchemaReady?: boolean; fenced?: FencedLog } = {},
  ): Promise<PostgresCommitLog> {
    if (!options.isSchemaReady) await pool.query(SEAT_COMMIT_LOG_SCHEMA);
    const { rows } = await pool.query<{ id: string; records: number; body: Buffer }>(
      'SELECT id, records, body FROM seat_commit_log WHERE log = $1 ORDER BY id',
      [name],
    );
    return new PostgresCommitLog(
      pool,
      name,
      rows.map((r) => ({ id: Number(r.id), records: r.records, body: r.body })),
      writes,
      options.fenced,
    );
  }

  add(partition: number, seq: number, showId: string, command: string): void {
    this.#pending.add(partition, seq, showId, command);
  }

  get pendingRecords(): number {
    return this.#pending.records;
  }

  get lastBatchId(): number {
    return this.#lastBatchId;
  }

  /** Sends the batch being built as one row (when it has records); returns its id. Durable at `sync()`. */
  commit(): number | undefined {
    if (this.#pending.records === 0) return undefined;
    if (this.#isClosed) throw new Error(`commit log ${this.file} is closed`);
    const id = this.#lastBatchId + 1;
    // A copy: the pending buffer is reused for the next batch while this insert is still in flight.
    const body = Buffer.from(this.#pending.body());
    const records = this.#pending.records;
    this.#writes.pushItem(
      `log:${this.file}`,
      { id, records, body },
      (rows) => this.#insert(rows),
      MAX_ROWS_PER_INSERT,
    );
    this.#batchRecords.set(id, records);
    this.#lastBatchId = id;
    this.#pending.clear();
    return id;
  }

  /** Batches as rows of one statement: one round trip and one commit (one fsync) for all of them. */
  #insert(rows: { id: number; records: number; body: Buffer }[]): Promise<unknown> {
    // A cluster partition's rows join the other partitions' in one fenced statement (all or none).
    const fenced = this.#fenced;
    if (fenced) return fenced.writer.insert(fenced.fence, this.file, rows);
    const values: string[] = [];
    const params: unknown[] = [this.file];
    for (const row of rows) {
      const n = params.length;
      values.push(`($1, $${n + 1}, $${n + 2}, $${n + 3})`);
      params.push(row.id, row.records, row.body);
    }
    return this.#pool.query(
      `INSERT INTO seat_commit_log (log, id, records, body) VALUES ${values.join(', ')}`,
      params,
    );
  }

  /** The records kept when the log was opened, in the order they were appended. */
  *records(): Generator<LogRecord> {
    for (const body of this.#loaded) yield* decodeBatch(body);
  }

  recordCount(): number {
    let count = 0;
    for (const n of this.#batchRecords.values()) count += n;
    return count;
  }

  /** Deletes every batch up to this id (after the commits before it): the snapshots hold their effects. */
  pruneThrough(batchId: number): void {
    for (const id of this.#batchRecords.keys()) if (id <= batchId) this.#batchRecords.delete(id);
    const fence = this.#fenced?.fence;
    this.#writes.push(() =>
      fence
        ? this.#pool.query(
            `DELETE FROM seat_commit_log WHERE log = $1 AND id <= $2 AND ${fenceCondition(3)}`,
            [this.file, batchId, ...fenceParams(fence)],
          )
        : this.#pool.query('DELETE FROM seat_commit_log WHERE log = $1 AND id <= $2', [this.file, batchId]),
    );
  }

  /** Resolves once every batch committed so far is durable in PostgreSQL; rejects if any write failed. */
  sync(): Promise<void> {
    return this.#writes.settled();
  }

  close(): void {
    this.#isClosed = true;
  }

  /** Waits for the writes sent before `close()` (the pool belongs to the caller). */
  async closed(): Promise<void> {
    await this.#writes.settled().catch(() => undefined);
  }
}
