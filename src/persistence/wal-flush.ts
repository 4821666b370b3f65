/**
 * @module wal-flush
 * Flushing a SQLite WAL file to stable storage ourselves: the connection runs at
 * `synchronous=NORMAL` (a commit survives a process crash), and for power loss the caller flushes the
 * WAL after committing, with `fdatasync` on libuv's thread pool, so flushes of many files overlap and
 * the JavaScript thread keeps working meanwhile. That is what SQLite's FULL does in WAL mode,
 * including its one sync of the directory after a new WAL file appears (closing the database deletes
 * the WAL, so each open starts a new one): without it the file's name may not survive power loss.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createPrivateFile, makePrivateDirectory } from './data-dir.js';

/** 'full' survives power loss (the WAL is flushed before anyone is told); 'normal' a process crash. */
export type JournalSync = 'full' | 'normal';

/**
 * Opens (creating it and its directory durably) a SQLite database in WAL mode at `synchronous=NORMAL`,
 * where a commit survives a process crash, with the flusher its owner calls after committing for
 * power loss when `sync` is 'full': off the calling thread, so work goes on while the disk catches up.
 */
export function openWalDatabase(
  file: string,
  sync: JournalSync,
  options: { pageSize?: number; tally?: FlushTally } = {},
): { db: Database.Database; wal: WalFlusher } {
  makeDirectoryDurably(path.dirname(file));
  createPrivateFile(file);
  const db = new Database(file);
  if (options.pageSize !== undefined) db.pragma(`page_size = ${options.pageSize}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return { db, wal: new WalFlusher(file, sync === 'full', options.tally) };
}

/**
 * Flushes finished and their time, summed, in whole nanoseconds (exact as a double for 104 days of
 * flushing). A plain object of the thread that owns it: a shard worker copies its figures to the
 * main thread (see `shard-worker.ts`).
 */
export interface FlushTally {
  flushes: number;
  nanoseconds: number;
}

export function newFlushTally(): FlushTally {
  return { flushes: 0, nanoseconds: 0 };
}

export class WalFlusher {
  #fd?: number;
  #isDirectorySynced = false;

  /**
   * `databaseFile`'s WAL is flushed on `flush()` when enabled; otherwise `flush()` does nothing. Each
   * flush adds to `tally` when given: from handing the fdatasync to libuv's pool until it completed,
   * which includes any wait for a free pool thread, as that is time the caller waits for the disk too.
   */
  constructor(
    private readonly databaseFile: string,
    private readonly isEnabled: boolean,
    private readonly tally?: FlushTally,
  ) {}

  flush(): Promise<void> {
    if (!this.isEnabled) return Promise.resolve();
    // The WAL exists once anything was committed; SQLite keeps the same file while the database is open.
    this.#fd ??= fs.openSync(`${this.databaseFile}-wal`, 'r');
    const fd = this.#fd;
    const { tally } = this;
    const started = tally ? performance.now() : 0;
    const flushed = new Promise<void>((resolve, reject) =>
      fs.fdatasync(fd, (err) => {
        if (tally) {
          tally.flushes += 1;
          tally.nanoseconds += Math.round((performance.now() - started) * 1e6);
        }
        if (err) reject(err);
        else resolve();
      }),
    );
    if (this.#isDirectorySynced) return flushed;
    this.#isDirectorySynced = true;
    return Promise.all([flushed, syncDirectory(path.dirname(this.databaseFile))]).then(() => undefined);
  }

  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** fsync of a directory: makes the names created, renamed or deleted in it durable. */
export function syncDirectory(dir: string): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.open(dir, 'r', (err, fd) => {
      if (err) return reject(err);
      fs.fsync(fd, (syncErr) => fs.close(fd, () => (syncErr ? reject(syncErr) : resolve())));
    }),
  );
}

/** The same, blocking: for start-up steps that must be durable before the next one. */
export function syncDirectorySync(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `mkdir -p` whose new directories are owner-only and whose names are durable (their parent flushed)
 * before it returns.
 */
export function makeDirectoryDurably(dir: string): void {
  const first = makePrivateDirectory(dir);
  if (first === undefined) return;
  // Each new level's name lives in its parent: flush the parent of every level created.
  const target = path.resolve(dir);
  for (
    let made = path.resolve(first);
    ;
    made = path.join(made, path.relative(made, target).split(path.sep)[0]!)
  ) {
    syncDirectorySync(path.dirname(made));
    if (made === target) return;
  }
}
