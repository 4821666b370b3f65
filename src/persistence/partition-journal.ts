/**
 * @module partition-journal
 * One partition's durable state, in a SQLite file of its own (WAL): the shows created in it (with their
 * layouts) and a snapshot per show. The commands themselves go to the owning worker's commit log
 * (`commit-log.ts`), one row per batch for all its partitions; checkpoints move their effect here as
 * snapshots. Recovery is each show's latest snapshot plus the commit log's later records.
 *
 * Journal rows written per partition by earlier versions are still read at recovery and deleted by the
 * next checkpoint, so an older data directory keeps every acknowledged command.
 */
import type Database from 'better-sqlite3';
import { type JournalSync, newFlushTally, openWalDatabase, type WalFlusher } from './wal-flush.js';

/** Every partition file's WAL flushes in this thread, as `commitLogFlushes` (commit-log.ts). */
export const partitionFlushes = newFlushTally();

export type { JournalSync } from './wal-flush.js';

export interface ShowRecord {
  showId: string;
  /** Id into `layouts()`: many shows share one layout, so it is read once. */
  layoutId: number;
  forbidSingleSeatGaps: boolean;
  /**
   * The sequence the show's state is at: its snapshot's, or without one the partition's last sequence
   * when the show was created (its history starts after it).
   */
  snapshotSeq: number;
  snapshot?: Buffer;
}

export interface JournalRow {
  seq: number;
  showId: string;
  command: string;
}

/** Everything one batch writes to a partition, committed together or not at all. */
export interface BatchWrites {
  creates: { showId: string; layoutKey: string; forbidSingleSeatGaps: boolean; createdSeq: number }[];
  snapshots: { showId: string; seq: number; state: Buffer }[];
  /** At a checkpoint: every earlier version's journal row is covered by snapshots and is deleted. */
  isClearingJournal?: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS layouts (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS shows (
  show_id TEXT PRIMARY KEY,
  layout_id INTEGER NOT NULL REFERENCES layouts (id),
  forbid_gaps INTEGER NOT NULL,
  -- The partition's last sequence at creation: a log record at or below it is not this show's.
  created_seq INTEGER NOT NULL DEFAULT 0
);
-- Commands journaled per partition by earlier versions: read at recovery, cleared at a checkpoint.
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, show_id TEXT NOT NULL, command TEXT NOT NULL);
DROP INDEX IF EXISTS journal_show;
CREATE TABLE IF NOT EXISTS snapshots (show_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, state BLOB NOT NULL);
`;

export class PartitionJournal {
  readonly #db: Database.Database;
  readonly #layoutIds = new Map<string, number>();
  readonly #insertLayout;
  readonly #insertShow;
  readonly #upsertSnapshot;
  readonly #clearJournal;
  readonly #writeBatch: (writes: BatchWrites) => void;
  readonly #lastSeq: number;
  readonly #wal: WalFlusher;

  constructor(
    readonly file: string,
    sync: JournalSync,
  ) {
    // For power loss ('full') the shard calls `sync()` after committing, so many partitions' WAL files
    // are flushed concurrently instead of one after another.
    ({ db: this.#db, wal: this.#wal } = openWalDatabase(file, sync, { tally: partitionFlushes }));
    this.#db.exec(SCHEMA);
    const columns = this.#db.prepare('PRAGMA table_info(shows)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'created_seq'))
      this.#db.exec('ALTER TABLE shows ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0');
    for (const row of this.#db.prepare('SELECT id, key FROM layouts').all() as { id: number; key: string }[])
      this.#layoutIds.set(row.key, row.id);
    this.#insertLayout = this.#db.prepare('INSERT INTO layouts (key) VALUES (?)');
    this.#insertShow = this.#db.prepare(
      'INSERT INTO shows (show_id, layout_id, forbid_gaps, created_seq) VALUES (?, ?, ?, ?)',
    );
    this.#upsertSnapshot = this.#db.prepare(
      'INSERT INTO snapshots (show_id, seq, state) VALUES (?, ?, ?) ON CONFLICT (show_id) DO UPDATE SET seq = excluded.seq, state = excluded.state',
    );
    this.#clearJournal = this.#db.prepare('DELETE FROM journal');
    // Every sequence this file mentions: a show's starting point counts too, since the log records up to
    // it may have been lost (a crash between the partition commit and the log's), and numbering a new
    // command at or below it would make recovery skip that command.
    const highest = (sql: string) => (this.#db.prepare(sql).pluck().get() as number | null) ?? 0;
    this.#lastSeq = Math.max(
      highest('SELECT MAX(seq) FROM journal'),
      highest('SELECT MAX(seq) FROM snapshots'),
      highest('SELECT MAX(created_seq) FROM shows'),
    );
    this.#writeBatch = this.#db.transaction((writes: BatchWrites) => this.#write(writes));
  }

  /** The highest sequence this file knows of (0 for a new partition); the commit log may know later. */
  lastSeq(): number {
    return this.#lastSeq;
  }

  /** Writes a batch in one transaction; throws if it could not be made durable. */
  commit(writes: BatchWrites): void {
    if (isEmpty(writes)) return;
    this.#writeBatch(writes);
  }

  #write(writes: BatchWrites): void {
    for (const c of writes.creates)
      this.#insertShow.run(
        c.showId,
        this.#layoutId(c.layoutKey),
        c.forbidSingleSeatGaps ? 1 : 0,
        c.createdSeq,
      );
    for (const s of writes.snapshots) this.#upsertSnapshot.run(s.showId, s.seq, s.state);
    if (writes.isClearingJournal) this.#clearJournal.run();
  }

  #layoutId(key: string): number {
    let id = this.#layoutIds.get(key);
    if (id === undefined) {
      id = Number(this.#insertLayout.run(key).lastInsertRowid);
      this.#layoutIds.set(key, id);
    }
    return id;
  }

  /** Layout keys by id. */
  layouts(): Map<number, string> {
    return new Map([...this.#layoutIds].map(([key, id]) => [id, key]));
  }

  /** Every show with its layout id and latest snapshot, for recovery. */
  *shows(): Generator<ShowRecord> {
    const rows = this.#db
      .prepare(
        `SELECT s.show_id, s.layout_id, s.forbid_gaps, s.created_seq, sn.seq, sn.state FROM shows s
         LEFT JOIN snapshots sn ON sn.show_id = s.show_id`,
      )
      .raw()
      .iterate() as IterableIterator<[string, number, number, number, number | null, Buffer | null]>;
    for (const [showId, layoutId, forbid, createdSeq, seq, state] of rows)
      yield {
        showId,
        layoutId,
        forbidSingleSeatGaps: forbid === 1,
        snapshotSeq: seq ?? createdSeq,
        snapshot: state ?? undefined,
      };
  }

  /** Commands an earlier version journaled here, in the order they were applied. */
  *commands(): Generator<JournalRow> {
    const rows = this.#db
      .prepare('SELECT seq, show_id, command FROM journal ORDER BY seq')
      .raw()
      .iterate() as IterableIterator<[number, string, string]>;
    for (const [seq, showId, command] of rows) yield { seq, showId, command };
  }

  /**
   * Flushes the write-ahead log to stable storage (fdatasync on the thread pool) when the journal is
   * 'full'; a no-op for 'normal'. Call after `commit` and before telling anyone.
   */
  sync(): Promise<void> {
    return this.#wal.flush();
  }

  close(): void {
    this.#wal.close();
    this.#db.close();
  }
}

export function isEmpty(writes: BatchWrites): boolean {
  return writes.creates.length + writes.snapshots.length === 0 && !writes.isClearingJournal;
}
