import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAppDb } from '../../src/persistence/app-db.js';
import { MIGRATIONS } from '../../src/persistence/migrations/index.js';
import { migratePostgres, PostgresCollationError } from '../../src/persistence/pg-app-db.js';
import { PG_MIGRATIONS } from '../../src/persistence/pg-migrations/index.js';
import {
  postgresSchemaShape,
  type SchemaShape,
  sqliteSchemaShape,
} from '../../src/persistence/schema-shape.js';
import { freshPostgresDatabase, sharedPostgresUrl } from '../helpers/postgres.js';

describe('the two stores produce the same schema shape', () => {
  let dir: string;
  let pool: pg.Pool;
  let sqlite: SchemaShape;
  let postgres: SchemaShape;
  let appliedOnPostgres: number[];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-shape-'));
    const db = openAppDb(path.join(dir, 'app.db'));
    sqlite = sqliteSchemaShape(db);
    db.close();
    pool = new pg.Pool({ connectionString: await freshPostgresDatabase('shape'), max: 4 });
    appliedOnPostgres = await migratePostgres(pool);
    postgres = await postgresSchemaShape(pool);
  });

  afterAll(async () => {
    await pool?.end();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every SQLite migration has a PostgreSQL twin with the same id and name, applied in order', () => {
    expect(PG_MIGRATIONS.map((m) => [m.id, m.name])).toEqual(MIGRATIONS.map((m) => [m.id, m.name]));
    expect(appliedOnPostgres).toEqual(MIGRATIONS.map((m) => m.id));
  });

  it('lists the same tables', () => {
    expect(postgres.map((t) => t.name)).toEqual(sqlite.map((t) => t.name));
    // The whole app schema, not an empty pair that would match trivially.
    expect(sqlite.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        'users',
        'bookings',
        'offers',
        'outbox',
        'simulated_payment_intents',
        'schema_migrations',
      ]),
    );
  });

  it('gives every table the same columns, types, nullability, defaults, keys, uniques, indexes and foreign keys', () => {
    // Compared whole, so a failure's diff shows every difference at once.
    expect(postgres).toEqual(sqlite);
    expect(sqlite.find((t) => t.name === 'bookings')?.indexes.length).toBeGreaterThan(2);
  });

  it('maps every column to a known logical type', () => {
    const unmapped = [...sqlite, ...postgres].flatMap((t) =>
      t.columns.filter((c) => c.type.startsWith('unmapped:')).map((c) => `${t.name}.${c.name}: ${c.type}`),
    );
    expect(unmapped).toEqual([]);
  });

  it('records the migrations as SQLite does, and a second run applies nothing', async () => {
    const { rows } = await pool.query('SELECT id, name FROM schema_migrations ORDER BY id');
    expect(rows).toEqual(
      MIGRATIONS.map((m) => ({ id: m.id, name: m.name })).map((r) => ({ ...r, id: String(r.id) })),
    );
    expect(await migratePostgres(pool)).toEqual([]);
  });

  it('nodes migrating at once apply each migration once', async () => {
    const url = await freshPostgresDatabase('shape_race');
    const pools = [1, 2, 3].map(() => new pg.Pool({ connectionString: url, max: 2 }));
    try {
      const applied = await Promise.all(pools.map((p) => migratePostgres(p)));
      expect(applied.flat().sort((a, b) => a - b)).toEqual(MIGRATIONS.map((m) => m.id));
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('refuses a database whose collation is not byte order', async () => {
    const admin = new pg.Client({ connectionString: sharedPostgresUrl() });
    await admin.connect();
    const name = `shape_collation_${process.pid}`;
    try {
      // ICU's root locale orders text by language rules, not bytes.
      await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und'`);
      const url = new URL(sharedPostgresUrl());
      url.pathname = `/${name}`;
      const other = new pg.Pool({ connectionString: url.toString(), max: 1 });
      try {
        await expect(migratePostgres(other)).rejects.toBeInstanceOf(PostgresCollationError);
        const { rows } = await other.query("SELECT to_regclass('schema_migrations') AS t");
        expect(rows[0].t).toBeNull();
      } finally {
        await other.end();
      }
    } finally {
      await admin.end();
    }
  });
});
