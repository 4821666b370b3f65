/**
 * @module partition-journal
 * One partition's durable record, in a SQLite file of its own (WAL): the shows created in it, every
 * accepted command in order, and a snapshot per show. A batch of writes is one transaction (group
 * commit), and nobody hears of a command before its transaction has committed. Recovery is the latest
 * snapshot of each show plus the commands journaled after it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type JournalSync = 'full' | 'normal';

export interface ShowRecord {
  showId: string;
  /** Id into `layouts()`: many shows share one layout, so it is read once. */
  layoutId: number;
  forbidSingleSeatGaps: boolean;
  /** The snapshot's journal sequence and bytes, when the show has one. */
  snapshotSeq: number;
  snapshot?: Buffer;
}

export interface JournalRow {
  seq: number;
  showId: string;
  command: string;
}

/** Everything one batch writes, committed together or not at all. */
export interface BatchWrites {
  creates: { showId: string; layoutKey: string; forbidSingleSeatGaps: boolean }[];
  commands: JournalRow[];
  snapshots: { showId: string; seq: number; state: Buffer }[];
  /** A checkpoint: every row up to this sequence is covered by snapshots and is deleted. */
  pruneThrough?: number;
}

/** Journal rows written by one INSERT statement. */
const ROWS_PER_INSERT = 64;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS layouts (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS shows (
  show_id TEXT PRIMARY KEY,
  layout_id INTEGER NOT NULL REFERENCES layouts (id),
  forbid_gaps INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, show_id TEXT NOT NULL, command TEXT NOT NULL);
-- Pruning is by sequence range at checkpoints; a (show_id, seq) index halved insert throughput.
DROP INDEX IF EXISTS journal_show;
CREATE TABLE IF NOT EXISTS snapshots (show_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, state BLOB NOT NULL);
`;

export class PartitionJournal {
  readonly #db: Database.Database;
  readonly #layoutIds = new Map<string, number>();
  readonly #insertLayout;
  readonly #insertShow;
  /** Insert statements by row count (1 to ROWS_PER_INSERT), prepared on first use. */
  readonly #insertCommand: Database.Statement[] = [];
  readonly #upsertSnapshot;
  readonly #prune;
  readonly #writeBatch: (writes: BatchWrites) => void;
  #nextSeq: number;
  readonly #isDurableOnPowerLoss: boolean;
  #walFd?: number;

  constructor(
    readonly file: string,
    sync: JournalSync,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    // NORMAL: a commit survives a process crash. For power loss ('full') the shard calls `sync()` after
    // committing, so many partitions' WAL files are flushed concurrently instead of one after another.
    this.#db.pragma('synchronous = NORMAL');
    this.#isDurableOnPowerLoss = sync === 'full';
    this.#db.exec(SCHEMA);
    for (const row of this.#db.prepare('SELECT id, key FROM layouts').all() as { id: number; key: string }[])
      this.#layoutIds.set(row.key, row.id);
    this.#insertLayout = this.#db.prepare('INSERT INTO layouts (key) VALUES (?)');
    this.#insertShow = this.#db.prepare(
      'INSERT INTO shows (show_id, layout_id, forbid_gaps) VALUES (?, ?, ?)',
    );
    this.#upsertSnapshot = this.#db.prepare(
      'INSERT INTO snapshots (show_id, seq, state) VALUES (?, ?, ?) ON CONFLICT (show_id) DO UPDATE SET seq = excluded.seq, state = excluded.state',
    );
    this.#prune = this.#db.prepare('DELETE FROM journal WHERE seq <= ?');
    const last = this.#db.prepare('SELECT MAX(seq) FROM journal').pluck().get() as number | null;
    const lastSnap = this.#db.prepare('SELECT MAX(seq) FROM snapshots').pluck().get() as number | null;
    this.#nextSeq = Math.max(last ?? 0, lastSnap ?? 0) + 1;
    this.#writeBatch = this.#db.transaction((writes: BatchWrites) => this.#write(writes));
  }

  /** The last sequence number handed out (0 before any). */
  lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** The sequence number the next journaled command gets; callers number a batch before writing it. */
  takeSeq(): number {
    return this.#nextSeq++;
  }

  /** Writes a batch in one transaction; throws if it could not be made durable. */
  commit(writes: BatchWrites): void {
    if (isEmpty(writes)) return;
    this.#writeBatch(writes);
  }

  #write(writes: BatchWrites): void {
    for (const c of writes.creates)
      this.#insertShow.run(c.showId, this.#layoutId(c.layoutKey), c.forbidSingleSeatGaps ? 1 : 0);
    this.#insertCommands(writes.commands);
    for (const s of writes.snapshots) this.#upsertSnapshot.run(s.showId, s.seq, s.state);
    if (writes.pruneThrough !== undefined) this.#prune.run(writes.pruneThrough);
  }

  /** Many rows per statement: the per-call cost of better-sqlite3 dominates a one-row insert. */
  #insertCommands(rows: readonly JournalRow[]): void {
    for (let from = 0; from < rows.length; from += ROWS_PER_INSERT) {
      const count = Math.min(ROWS_PER_INSERT, rows.length - from);
      let statement = this.#insertCommand[count];
      if (!statement) {
        const values = Array.from({ length: count }, () => '(?, ?, ?)').join(', ');
        statement = this.#db.prepare(`INSERT INTO journal (seq, show_id, command) VALUES ${values}`);
        this.#insertCommand[count] = statement;
      }
      const params: (number | string)[] = new Array(count * 3);
      for (let i = 0; i < count; i++) {
        const row = rows[from + i]!;
        params[i * 3] = row.seq;
        params[i * 3 + 1] = row.showId;
        params[i * 3 + 2] = row.command;
      }
      statement.run(params);
    }
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
        `SELECT s.show_id, s.layout_id, s.forbid_gaps, sn.seq, sn.state FROM shows s
         LEFT JOIN snapshots sn ON sn.show_id = s.show_id`,
      )
      .raw()
      .iterate() as IterableIterator<[string, number, number, number | null, Buffer | null]>;
    for (const [showId, layoutId, forbid, seq, state] of rows)
      yield {
        showId,
        layoutId,
        forbidSingleSeatGaps: forbid === 1,
        snapshotSeq: seq ?? 0,
        snapshot: state ?? undefined,
      };
  }

  /** Journaled commands in the order they were applied. */
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
    if (!this.#isDurableOnPowerLoss) return Promise.resolve();
    // The WAL exists once anything was committed; SQLite keeps the same file while the database is open.
    this.#walFd ??= fs.openSync(`${this.file}-wal`, 'r');
    const fd = this.#walFd;
    return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Journal rows still kept (for tests and the recovery log line). */
  journalLength(): number {
    return this.#db.prepare('SELECT COUNT(*) FROM journal').pluck().get() as number;
  }

  close(): void {
    if (this.#walFd !== undefined) fs.closeSync(this.#walFd);
    this.#walFd = undefined;
    this.#db.close();
  }
}

export function isEmpty(writes: BatchWrites): boolean {
  return (
    writes.creates.length + writes.commands.length + writes.snapshots.length === 0 &&
    writes.pruneThrough === undefined
  );
}
