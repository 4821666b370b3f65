/**
 * @module open-store
 * Opens the service's stores from the config: SQLite files under `DATA_DIR` (the embedded default), or
 * PostgreSQL for everything when `DATABASE_URL` is set. The rest of the service sees one `Store` for the
 * app data, a seat-store choice for the shard workers, and `durable()`, which resolves once every
 * commit made before the call is on stable storage.
 */
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { describeError, StartupError } from '../startup-preflight.js';
import { type AppDbOptions, openAppDb } from './app-db.js';
import { startCheckpointer } from './checkpointer.js';
import { GroupCommit, type GroupCommitStats } from './group-commit.js';
import { migratePostgres, PostgresCollationError } from './pg-app-db.js';
import type { SeatStoreOption } from './seat-store.js';
import { PostgresStore, SqliteStore, type Store } from './store.js';
import { WalFlusher } from './wal-flush.js';

export interface OpenedStore {
  store: Store;
  seatStore: SeatStoreOption;
  /**
   * Resolves once every commit made before the call is durable. SQLite commits at `synchronous=NORMAL`
   * and a group commit flushes the WAL off the JavaScript thread; a PostgreSQL commit is already durable
   * when it returns, so there it resolves at once.
   */
  durable: () => Promise<void>;
  /** SQLite only: the group commit's flush and wait figures (PostgreSQL commits wait in the server). */
  flushStats?: () => GroupCommitStats;
  /** Closes what was opened, after the last write. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  logger: Logger;
  /** Test-only: replaces the app database's WAL flush. */
  appDbFlush?: () => Promise<void>;
  /** Benches and tests: every SQLite commit, with the statements it wrote. */
  onAppDbCommit?: AppDbOptions['onCommit'];
}

export async function openStore(config: Config, options: OpenStoreOptions): Promise<OpenedStore> {
  return config.DATABASE_URL ? openPostgres(config, config.DATABASE_URL) : openSqlite(config, options);
}

async function openPostgres(config: Config, url: string): Promise<OpenedStore> {
  const store = new PostgresStore(url, {
    maxConnections: config.DATABASE_POOL_MAX,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
  });
  try {
    await migratePostgres(store.pool);
  } catch (err) {
    await store.close().catch(() => undefined);
    const reason =
      err instanceof PostgresCollationError
        ? err.message
        : `cannot connect or migrate (${describeError(err)})`;
    throw new StartupError(`DATABASE_URL=${redact(url)}: ${reason}`);
  }
  return {
    store,
    seatStore: { kind: 'postgres', url },
    durable: () => Promise.resolve(),
    close: () => store.close(),
  };
}

async function openSqlite(config: Config, options: OpenStoreOptions): Promise<OpenedStore> {
  const { logger } = options;
  const dbFile = path.join(config.dataDir, 'app.db');
  const db = openAppDb(dbFile, { onCommit: options.onAppDbCommit });
  const checkpointer = startCheckpointer(db, logger);
  const wal = new WalFlusher(dbFile, config.JOURNAL_SYNC === 'full');
  const store = new SqliteStore(db);
  const groupCommit = new GroupCommit({
    flush: options.appDbFlush ?? (() => wal.flush()),
    // Rows changed by commits so far: group commit's "anything new?" check. Only committed ones: a
    // flush covers what is in the WAL, and an open batch is not there yet (`SqliteStore`).
    changes: () => store.committedChanges,
    // Ending the process is the conservative answer to a failed flush: a retry could report pages the
    // kernel already dropped as safe. Restart recovery starts from what is really on disk.
    onFlushFailed: (err) => {
      logger.fatal({ err }, 'flushing the app database failed: stopping');
      process.exit(1);
    },
  });
  return {
    store,
    seatStore: { kind: 'sqlite' },
    durable: () => groupCommit.whenDurable(),
    flushStats: () => groupCommit.stats(),
    async close() {
      await checkpointer.stop();
      wal.close();
      // Commits the open batch, if any, then closes the connection.
      await store.close();
    },
  };
}

/** The URL without its password, for a message that may be logged. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://…';
  }
}
