/**
 * @module pg-app-db
 * The application database on PostgreSQL: migrations from `pg-migrations/`, applied in order, each in a
 * transaction and recorded in `schema_migrations` exactly as `app-db.ts` records SQLite's. Nodes of a
 * cluster may start together, so the whole run holds a session advisory lock: one node migrates, the
 * others wait and then find nothing left to do.
 */
import type pg from 'pg';
import type { Migration } from './migrations/index.js';
import { PG_MIGRATIONS } from './pg-migrations/index.js';

/** Arbitrary, fixed: the advisory lock key every BoxOffice node takes to migrate. */
const MIGRATION_LOCK_KEY = 0x0b0c_0ff1;

/**
 * Collations whose text order is byte order, as SQLite's BINARY is. Ids, ISO-8601 times and cursors are
 * compared and sorted as text, so any other collation (en_US ignores punctuation at first level) could
 * order them differently from SQLite.
 */
const BYTE_ORDER_COLLATIONS = new Set(['C', 'POSIX', 'C.UTF-8', 'C.utf8']);

export class PostgresCollationError extends Error {}

/** Applies the migrations not yet recorded; returns the ids it applied. */
export async function migratePostgres(
  pool: pg.Pool,
  migrations: readonly Migration[] = PG_MIGRATIONS,
): Promise<number[]> {
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ datcollate: string; datlocprovider: string }>(
      'SELECT datcollate, datlocprovider FROM pg_database WHERE datname = current_database()',
    );
    const collation = rows[0]?.datlocprovider === 'c' ? (rows[0]?.datcollate ?? '') : 'an ICU locale';
    if (!BYTE_ORDER_COLLATIONS.has(collation))
      throw new PostgresCollationError(
        `database collation is ${collation}; BoxOffice needs byte order (create the database with LOCALE_PROVIDER libc, LC_COLLATE 'C' or 'C.UTF-8', TEMPLATE template0)`,
      );
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (id bigint PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)',
      );
      const done = new Set(
        (await client.query<{ id: string }>('SELECT id FROM schema_migrations')).rows.map((r) =>
          Number(r.id),
        ),
      );
      const applied: number[] = [];
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        await client.query('BEGIN');
        try {
          // No parameters: the simple protocol, which runs a migration's several statements at once.
          if (m.sql.trim()) await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (id, name, applied_at) VALUES ($1, $2, $3)', [
            m.id,
            m.name,
            new Date().toISOString(),
          ]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
        applied.push(m.id);
      }
      return applied;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}
