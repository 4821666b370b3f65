/**
 * @module commit-log
 * A worker's commit log: one SQLite file (WAL) holding, per batch, one row with every command the
 * batch accepted, for all of the worker's partitions. One row and one WAL flush per batch, however
 * many partitions the batch touched; the partition files take the same state as snapshots at
 * checkpoints, after which the rows behind them are deleted.
 *
 * A row's body is newline-separated records in UTF-8, each a JSON array `[partition, seq, showId,
 * command]` (JSON never contains a raw newline, so a newline always ends a record). Records are written
 * straight into a reused buffer as they are accepted: joining thousands of strings first cost more
 * than the insert itself (measured: ~1 µs a record to join, ~0.15 µs to write into a buffer).
 */
import type Database from 'better-sqlite3';
import { type JournalSync, newFlushTally, openWalDatabase, type WalFlusher } from './wal-flush.js';

/**
 * Every commit log's WAL flushes in this thread (module state is per thread: a shard worker's own).
 * The worker reports it to the main thread; elsewhere nobody reads it.
 */
export const commitLogFlushes = newFlushTally();

export interface LogRecord {
  partition: number;
  seq: number;
  showId: string;
  /** The command, decoded. */
  command: unknown;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, records INTEGER NOT NULL, body BLOB NOT NULL);
`;

/** Bytes the pending buffer starts with; it doubles when a batch needs more. */
const INITIAL_BUFFER_BYTES = 1 << 20;
const NEWLINE = 0x0a;

/** The batch being built, in the body format above; both stores' commit logs write it as one row. */
export class BatchBuilder {
  #buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  #bytes = 0;
  #records = 0;

  /** Adds a record; `command` is already JSON and is spliced in as it is. */
  add(partition: number, seq: number, showId: string, command: string): void {
    const line = `[${partition},${seq},${JSON.stringify(showId)},${command}]`;
    // UTF-8 takes at most 3 bytes per UTF-16 unit, plus the newline.
    if (this.#bytes + line.length * 3 + 1 > this.#buffer.length) this.#grow(line.length * 3 + 1);
    if (this.#records > 0) this.#buffer[this.#bytes++] = NEWLINE;
    this.#bytes += this.#buffer.write(line, this.#bytes);
    this.#records++;
  }

  get records(): number {
    return this.#records;
  }

  /** The body so far: a view of the reused buffer, valid until the next `add` after `clear`. */
  body(): Buffer {
    return this.#buffer.subarray(0, this.#bytes);
  }

  clear(): void {
    this.#bytes = 0;
    this.#records = 0;
  }

  #grow(atLeast: number): void {
    let size = this.#buffer.length * 2;
    while (size < this.#bytes + atLeast) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.#buffer.copy(bigger, 0, 0, this.#bytes);
    this.#buffer = bigger;
  }
}

/** The records of one batch's body, in order. */
export function* decodeBatch(body: Buffer): Generator<LogRecord> {
  for (const line of body.toString('utf8').split('\n')) {
    const [partition, seq, showId, command] = JSON.parse(line) as [number, number, string, unknown];
    yield { partition, seq, showId, command };
  }
}

export class CommitLog {
  readonly #db: Database.Database;
  readonly #insert;
  readonly #prune;
  readonly #wal: WalFlusher;
  #lastBatchId: number;
  readonly #pending = new BatchBuilder();

  constructor(
    readonly file: string,
    sync: JournalSync,
  ) {
    // Rows are whole batches (hundreds of kilobytes): large pages keep the overflow chains short. For
    // power loss ('full') `sync()` flushes the WAL after the commit while the next batch is applied.
    ({ db: this.#db, wal: this.#wal } = openWalDatabase(file, sync, {
      pageSize: 65536,
      tally: commitLogFlushes,
    }));
    this.#db.exec(SCHEMA);
    this.#insert = this.#db.prepare('INSERT INTO batches (id, records, body) VALUES (?, ?, ?)');
    this.#prune = this.#db.prepare('DELETE FROM batches WHERE id <= ?');
    this.#lastBatchId = (this.#db.prepare('SELECT MAX(id) FROM batches').pluck().get() as number | null) ?? 0;
  }

  /** Adds a record to the batch being built; `command` is already JSON and is spliced in as it is. */
  add(partition: number, seq: number, showId: string, command: string): void {
    this.#pending.add(partition, seq, showId, command);
  }

  get pendingRecords(): number {
    return this.#pending.records;
  }

  /** Writes the batch being built as one row (when it has records); returns its id. */
  commit(): number | undefined {
    if (this.#pending.records === 0) return undefined;
    const id = this.#lastBatchId + 1;
    this.#insert.run(id, this.#pending.records, this.#pending.body());
    this.#lastBatchId = id;
    this.#pending.clear();
    return id;
  }

  get lastBatchId(): number {
    return this.#lastBatchId;
  }

  /** Every record still kept, in the order it was appended. */
  *records(): Generator<LogRecord> {
    const rows = this.#db
      .prepare('SELECT body FROM batches ORDER BY id')
      .pluck()
      .iterate() as IterableIterator<Buffer>;
    for (const body of rows) yield* decodeBatch(body);
  }

  /** Records still kept (tests and the recovery log line). */
  recordCount(): number {
    return (this.#db.prepare('SELECT COALESCE(SUM(records), 0) FROM batches').pluck().get() as number) ?? 0;
  }

  /** Deletes every batch up to this id: the partition files hold their effects durably. */
  pruneThrough(batchId: number): void {
    this.#prune.run(batchId);
  }

  /** Flushes the WAL to stable storage when the log is 'full'; a no-op for 'normal'. */
  sync(): Promise<void> {
    return this.#wal.flush();
  }

  close(): void {
    this.#wal.close();
    this.#db.close();
  }
}
