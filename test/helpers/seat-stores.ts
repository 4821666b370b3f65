/**
 * @module test/helpers/seat-stores
 * The shard's two seat stores for parameterised tests (`describe.each(SEAT_STORES)`): each gives a
 * fresh place to keep seats and the few direct edits tests make to stand for what a crash leaves
 * (a show's creation lost, a show row without its log row, a fold cut short).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { commitLogFile, journalFile, type SeatStoreOption } from '../../src/persistence/seat-store.js';
import { freshPostgresDatabase } from './postgres.js';

export interface SeatTarget {
  dataDir: string;
  seatStore?: SeatStoreOption;
}

export interface SeatStoreFixture {
  name: 'sqlite' | 'postgres';
  /** A new data directory, and for PostgreSQL a new database. */
  fresh(label: string): Promise<SeatTarget>;
  /** Removes a show and its snapshot from a partition's data. */
  deleteShow(target: SeatTarget, partition: number, showId: string): Promise<void>;
  /** Adds a show row (with the layout of the partition's first show) starting after `createdSeq`. */
  insertShow(target: SeatTarget, partition: number, showId: string, createdSeq: number): Promise<void>;
  /** Copies a commit log under another name. */
  copyLog(target: SeatTarget, from: string, to: string): Promise<void>;
  /**
   * Makes a commit log unreadable (recovery fails on it) and returns what puts it back as it was.
   */
  damageLog(target: SeatTarget, name: string): Promise<() => Promise<void>>;
  /** The commit logs the store holds. */
  logNames(target: SeatTarget): Promise<string[]>;
  /** Empties the target for another run (many runs share one PostgreSQL database). */
  clear(target: SeatTarget): Promise<void>;
  /** Removes everything the target holds (data directory and database). */
  remove(target: SeatTarget): Promise<void>;
}

function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `boxoffice-${label}-`));
}

const sqlite: SeatStoreFixture = {
  name: 'sqlite',
  async fresh(label) {
    return { dataDir: tempDir(label) };
  },
  async deleteShow({ dataDir }, partition, showId) {
    const db = new Database(journalFile(dataDir, partition));
    db.prepare('DELETE FROM shows WHERE show_id = ?').run(showId);
    db.prepare('DELETE FROM snapshots WHERE show_id = ?').run(showId);
    db.close();
  },
  async insertShow({ dataDir }, partition, showId, createdSeq) {
    const db = new Database(journalFile(dataDir, partition));
    const layoutId = db.prepare('SELECT layout_id FROM shows').pluck().get();
    db.prepare('INSERT INTO shows (show_id, layout_id, forbid_gaps, created_seq) VALUES (?, ?, 0, ?)').run(
      showId,
      layoutId,
      createdSeq,
    );
    db.close();
  },
  async copyLog({ dataDir }, from, to) {
    fs.copyFileSync(commitLogFile(dataDir, from), commitLogFile(dataDir, to));
  },
  async damageLog({ dataDir }, name) {
    const file = commitLogFile(dataDir, name);
    const parked = ['', '-wal', '-shm'].filter((suffix) => fs.existsSync(file + suffix));
    for (const suffix of parked) fs.renameSync(file + suffix, `${file + suffix}.parked`);
    fs.writeFileSync(file, 'this is not a database, and recovery cannot open it');
    return async () => {
      fs.rmSync(file);
      for (const suffix of parked) fs.renameSync(`${file + suffix}.parked`, file + suffix);
    };
  },
  async logNames({ dataDir }) {
    const dir = path.dirname(commitLogFile(dataDir, 'w-0'));
    return fs.existsSync(dir) ? fs.readdirSync(dir).map((file) => file.replace(/\.db.*$/, '')) : [];
  },
  async clear({ dataDir }) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.mkdirSync(dataDir);
  },
  async remove({ dataDir }) {
    fs.rmSync(dataDir, { recursive: true, force: true });
  },
};

async function withPool<T>(target: SeatTarget, use: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const url = (target.seatStore as { url: string }).url;
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    return await use(pool);
  } finally {
    await pool.end();
  }
}

const postgres: SeatStoreFixture = {
  name: 'postgres',
  async fresh(label) {
    const url = await freshPostgresDatabase(label.replace(/[^a-z0-9]/gi, '_'));
    return { dataDir: tempDir(label), seatStore: { kind: 'postgres', url } };
  },
  deleteShow: (target, partition, showId) =>
    withPool(target, async (pool) => {
      await pool.query('DELETE FROM seat_shows WHERE partition = $1 AND show_id = $2', [partition, showId]);
      await pool.query('DELETE FROM seat_snapshots WHERE partition = $1 AND show_id = $2', [
        partition,
        showId,
      ]);
    }),
  insertShow: (target, partition, showId, createdSeq) =>
    withPool(target, async (pool) => {
      await pool.query(
        `INSERT INTO seat_shows (partition, show_id, layout_id, forbid_gaps, created_seq)
         SELECT $1, $2, layout_id, false, $3 FROM seat_shows WHERE partition = $1 LIMIT 1`,
        [partition, showId, createdSeq],
      );
    }),
  copyLog: (target, from, to) =>
    withPool(target, async (pool) => {
      await pool.query(
        'INSERT INTO seat_commit_log (log, id, records, body) SELECT $2, id, records, body FROM seat_commit_log WHERE log = $1',
        [from, to],
      );
    }),
  damageLog: (target, name) =>
    withPool(target, async (pool) => {
      await pool.query("UPDATE seat_commit_log SET log = log || '.parked' WHERE log = $1", [name]);
      await pool.query(
        "INSERT INTO seat_commit_log (log, id, records, body) VALUES ($1, 1, 1, convert_to('this is not a record', 'UTF8'))",
        [name],
      );
      return () =>
        withPool(target, async (again) => {
          await again.query('DELETE FROM seat_commit_log WHERE log = $1', [name]);
          await again.query("UPDATE seat_commit_log SET log = $1 WHERE log = $1 || '.parked'", [name]);
        });
    }),
  logNames: (target) =>
    withPool(target, async (pool) => {
      const { rows } = await pool.query<{ log: string }>(
        'SELECT DISTINCT log FROM seat_commit_log ORDER BY log',
      );
      return rows.map((r) => r.log);
    }),
  async clear(target) {
    fs.rmSync(target.dataDir, { recursive: true, force: true });
    fs.mkdirSync(target.dataDir);
    await withPool(target, async (pool) => {
      await pool.query('DROP TABLE IF EXISTS seat_layouts, seat_shows, seat_snapshots, seat_commit_log');
    });
  },
  async remove({ dataDir }) {
    // The database goes with the test server at the end of the run.
    fs.rmSync(dataDir, { recursive: true, force: true });
  },
};

export const SEAT_STORES: readonly SeatStoreFixture[] = [sqlite, postgres];
