/**
 * @module app-db
 * The application database (users, catalog, bookings, payments, offers, outbox) in one SQLite file,
 * opened once by the main thread. Migrations are numbered and applied in order, each in a transaction,
 * and recorded so a start never applies one twice. Commits run at `synchronous=NORMAL`: they survive a
 * process crash at once, and power loss once the owner's group commit (`group-commit.ts`) has flushed
 * the WAL, which it does off the JavaScript thread before anything reports them.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { createPrivateFile, makePrivateDirectory } from './data-dir.js';
import { MIGRATIONS } from './migrations/index.js';

export type AppDb = Database.Database;

export interface AppDbOptions {
  /**
   * Diagnosis (benches, tests): called once per commit with the statements it wrote, in order: an
   * explicit transaction's (`BEGIN` … `COMMIT`) or one autocommitted write. Costs a string per statement
   * (better-sqlite3's `verbose`), so the service leaves it off.
   */
  onCommit?: (statements: string[]) => void;
}

export function openAppDb(file: string, options: AppDbOptions = {}): AppDb {
  if (file !== ':memory:') {
    makePrivateDirectory(path.dirname(file));
    createPrivateFile(file);
  }
  const onCommit = options.onCommit;
  let db: AppDb | undefined;
  let pending: string[] = [];
  /** Where each open savepoint began in `pending` (the store's transactions are savepoints). */
  const savepoints = new Map<string, number>();
  const verbose = onCommit
    ? (sql: unknown) => {
        const text = String(sql).trimStart();
        const verb = /^[A-Za-z]+/.exec(text)?.[0]?.toUpperCase() ?? '';
        if (verb === 'BEGIN') {
          pending = [];
          savepoints.clear();
        } else if (verb === 'SAVEPOINT') savepoints.set(savepointName(text), pending.length);
        else if (verb === 'ROLLBACK' && /^ROLLBACK\s+(?:TRANSACTION\s+)?TO\b/i.test(text)) {
          // Undone: the statements since the savepoint are not part of the commit.
          const mark = savepoints.get(savepointName(text));
          if (mark !== undefined) pending.length = mark;
        } else if (verb === 'ROLLBACK') pending = [];
        else if (verb === 'COMMIT' || verb === 'END') {
          onCommit(pending);
          pending = [];
        } else if (WRITE_VERBS.has(verb)) {
          // Called before the statement runs: outside a transaction, it commits on its own.
          if (db?.inTransaction) pending.push(text);
          else onCommit([text]);
        }
      }
    : undefined;
  db = new Database(file, verbose ? { verbose } : {});
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** The name a `SAVEPOINT x` or `ROLLBACK TO [SAVEPOINT] x` statement names. */
function savepointName(sql: string): string {
  return /(\w+)\s*;?\s*$/.exec(sql)?.[1] ?? '';
}

/** Statements that write, and so commit by themselves when no transaction is open. */
const WRITE_VERBS = new Set(['INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'WITH', 'CREATE', 'DROP', 'ALTER']);

/** A commit's name for diagnosis: "INSERT bookings + INSERT booking_events", kinds in first-seen order. */
export function describeCommit(statements: string[]): string {
  const kinds = statements.map((sql) => {
    const match = /^(INSERT|UPDATE|DELETE|REPLACE)(?:\s+OR\s+\w+)?(?:\s+INTO|\s+FROM)?\s+"?(\w+)/i.exec(sql);
    return match ? `${match[1]!.toUpperCase()} ${match[2]}` : sql.slice(0, 30);
  });
  return [...new Set(kinds)].join(' + ') || '(nothing)';
}

export function migrate(db: AppDb): number[] {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  const done = new Set(db.prepare('SELECT id FROM schema_migrations').pluck().all() as number[]);
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.id)) continue;
    db.transaction(() => {
      if (m.sql.trim()) db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(
        m.id,
        m.name,
        new Date().toISOString(),
      );
    })();
    applied.push(m.id);
  }
  return applied;
}
