/**
 * @module test/helpers/app-stores
 * The app data's two stores for parameterised domain tests (`describe.each(APP_STORES)`): each opens a
 * fresh, migrated store, an in-memory SQLite database or a new database on the suite's PostgreSQL.
 */
import pg from 'pg';
import { openAppDb } from '../../src/persistence/app-db.js';
import { migratePostgres } from '../../src/persistence/pg-app-db.js';
import { PostgresStore, type Queryable, SqliteStore, type Store } from '../../src/persistence/store.js';
import { freshPostgresDatabase } from './postgres.js';

export interface AppStoreFixture {
  name: 'sqlite' | 'postgres';
  /** A fresh, migrated, empty store; close it when done. */
  open(label: string): Promise<Store>;
}

const sqlite: AppStoreFixture = {
  name: 'sqlite',
  async open() {
    return new SqliteStore(openAppDb(':memory:'));
  },
};

const postgres: AppStoreFixture = {
  name: 'postgres',
  async open(label) {
    const url = await freshPostgresDatabase(label);
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      await migratePostgres(pool);
    } finally {
      await pool.end();
    }
    return new PostgresStore(url, { maxConnections: 10, statementTimeoutMs: 5_000 });
  },
};

export const APP_STORES: readonly AppStoreFixture[] = [sqlite, postgres];

/**
 * A user row for tests that need one to point at (bookings, notifications, tokens): nobody signs in as
 * it, so its password hash is a placeholder. `email` defaults to one made from the id.
 */
export async function insertUser(
  q: Queryable,
  id: string,
  options: { email?: string; phone?: string } = {},
): Promise<void> {
  const at = '2026-12-01T10:00:00.000Z';
  await q.run(
    `INSERT INTO users (id, name, email, phone, password_hash, role, created_at, updated_at)
     VALUES (?, 'Asha', ?, ?, 'x', 'user', ?, ?)`,
    [id, options.email ?? `${id}@example.com`, options.phone ?? null, at, at],
  );
}
