import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAppDb } from '../../src/persistence/app-db.js';
import { migratePostgres } from '../../src/persistence/pg-app-db.js';
import {
  isStoreUnavailable,
  numberPlaceholders,
  PostgresStore,
  SqliteStore,
  type Store,
} from '../../src/persistence/store.js';
import { insertUser } from '../helpers/app-stores.js';
import { ADMIN_ENV, bookAndPay, createShow, newUser } from '../helpers/catalog.js';
import {
  createDatabase,
  freshPostgresDatabase,
  startTestPostgres,
  type TestPostgres,
  throughSocket,
} from '../helpers/postgres.js';
import { turnCountingRelay } from '../helpers/postgres-relay.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const NOW = '2026-12-01T10:00:00.000Z';

async function addOffer(store: Store, id: string, totalLimit: number) {
  await store.run(
    `INSERT INTO offers (id, code, kind, value, valid_from, valid_until, total_limit, created_at, updated_at)
     VALUES (?, ?, 'flat', 100, ?, ?, ?, ?, ?)`,
    [id, `CODE-${id}`, NOW, '2027-01-01T00:00:00.000Z', totalLimit, NOW, NOW],
  );
}

const TAKE_USE =
  'UPDATE offers SET used_count = used_count + 1 WHERE id = ? AND (total_limit IS NULL OR used_count < total_limit)';

describe('numberPlaceholders', () => {
  it('numbers each ? in order and leaves quoted question marks alone', () => {
    expect(numberPlaceholders(`SELECT '?', "a?b", x FROM t WHERE a = ? AND b IN (?, ?)`)).toBe(
      `SELECT '?', "a?b", x FROM t WHERE a = $1 AND b IN ($2, $3)`,
    );
  });
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-store-'));
const stores: Record<'sqlite' | 'postgres', () => Promise<Store>> = {
  sqlite: async () => new SqliteStore(openAppDb(path.join(dir, `app-${Math.random()}.db`))),
  postgres: async () => {
    const store = new PostgresStore(await freshPostgresDatabase('store'), {
      maxConnections: 8,
      statementTimeoutMs: 10_000,
    });
    await migratePostgres(store.pool);
    return store;
  },
};

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each(['sqlite', 'postgres'] as const)('the %s store', (dialect) => {
  let store: Store;
  beforeAll(async () => {
    store = await stores[dialect]();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('finds a user by email whatever its case, with integers as numbers', async () => {
    await insertUser(store, 'usr_1', { email: 'Asha@Example.com' });
    const row = await store.get<{ id: string; email: string; session_generation: number }>(
      'SELECT id, email, session_generation FROM users WHERE email = ?',
      ['asha@example.COM'],
    );
    expect(row).toEqual({ id: 'usr_1', email: 'Asha@Example.com', session_generation: 0 });
    expect(await store.get('SELECT COUNT(*) AS n FROM users')).toEqual({ n: 1 });
  });

  it('refuses a second account with the same email in another case', async () => {
    await expect(insertUser(store, 'usr_2', { email: 'ASHA@example.com' })).rejects.toThrow();
  });

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    await store.transaction(async (tx) => insertUser(tx, 'usr_kept', { email: 'kept@example.com' }));
    await expect(
      store.transaction(async (tx) => {
        await insertUser(tx, 'usr_lost', { email: 'lost@example.com' });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    const ids = await store.all<{ id: string }>("SELECT id FROM users WHERE id IN ('usr_kept', 'usr_lost')");
    expect(ids).toEqual([{ id: 'usr_kept' }]);
  });

  it('reports how many rows a statement changed', async () => {
    await addOffer(store, 'off_changes', 5);
    expect(await store.run(TAKE_USE, ['off_changes'])).toEqual({ changes: 1 });
    expect(await store.run(TAKE_USE, ['off_nope'])).toEqual({ changes: 0 });
  });

  it('gives the last use of an offer to exactly one of many concurrent transactions', async () => {
    await addOffer(store, 'off_last', 1);
    const takers = Array.from({ length: 12 }, () =>
      store.transaction(async (tx) => {
        const taken = (await tx.run(TAKE_USE, ['off_last'])).changes === 1;
        // Stay open a little, so on PostgreSQL the others queue on the row lock meanwhile.
        await new Promise((resolve) => setTimeout(resolve, 5));
        return taken;
      }),
    );
    expect((await Promise.all(takers)).filter(Boolean)).toHaveLength(1);
    expect(await store.get('SELECT used_count FROM offers WHERE id = ?', ['off_last'])).toEqual({
      used_count: 1,
    });
  });
});

describe('the SQLite store keeps other statements out of an open transaction', () => {
  it('runs a statement made during a transaction after it, so a rollback does not take it along', async () => {
    const store = new SqliteStore(openAppDb(path.join(dir, 'lock.db')));
    const order: string[] = [];
    let outside: Promise<unknown> | undefined;
    await expect(
      store.transaction(async (tx) => {
        await tx.run('INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)', ['in-tx', NOW]);
        outside = store
          .run('INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)', ['outside', NOW])
          .then(() => order.push('outside'));
        await new Promise((resolve) => setImmediate(resolve));
        order.push('transaction');
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await outside;
    expect(order).toEqual(['transaction', 'outside']);
    expect(await store.all('SELECT jti FROM revoked_tokens')).toEqual([{ jti: 'outside' }]);
    await store.close();
  });
});

describe('the SQLite store commits once per turn of the event loop', () => {
  const INSERT = 'INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)';

  /**
   * A store whose commit fails when an orphan is inserted in `children`: a deferred foreign key is
   * checked at COMMIT, the one way to make SQLite refuse a commit at will.
   */
  function storeThatCanFailCommits(file: string): SqliteStore {
    const db = openAppDb(path.join(dir, file));
    db.exec(`CREATE TABLE parents (id TEXT PRIMARY KEY);
             CREATE TABLE children (id TEXT PRIMARY KEY,
               parent TEXT REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)`);
    return new SqliteStore(db);
  }

  it('puts the writes and transactions of one turn in one commit, and answers each after it', async () => {
    const commits: string[][] = [];
    const store = new SqliteStore(
      openAppDb(path.join(dir, 'batch.db'), { onCommit: (statements) => commits.push(statements) }),
    );
    commits.splice(0); // the migrations'
    const before = store.committedChanges;
    const seenAtAnswer: number[] = [];
    const answered = (p: Promise<unknown>) => p.then(() => seenAtAnswer.push(store.committedChanges));
    await Promise.all([
      answered(store.run(INSERT, ['a', NOW])),
      answered(store.transaction((tx) => tx.run(INSERT, ['b', NOW]))),
      answered(store.run(INSERT, ['c', NOW])),
      answered(store.transaction(async (tx) => (await tx.run(INSERT, ['d', NOW])).changes)),
    ]);
    expect(commits).toHaveLength(1);
    expect(commits[0]).toHaveLength(4);
    // Nobody learnt of a write before the commit that holds all four.
    expect(seenAtAnswer).toEqual([before + 4, before + 4, before + 4, before + 4]);
    // A later turn: a commit of its own.
    await store.run(INSERT, ['e', NOW]);
    expect(commits).toHaveLength(2);
    await store.close();
  });

  it('rolls back a transaction that throws alone, and keeps the rest of its turn', async () => {
    const store = new SqliteStore(openAppDb(path.join(dir, 'batch-rollback.db')));
    const results = await Promise.allSettled([
      store.run(INSERT, ['kept-1', NOW]),
      store.transaction(async (tx) => {
        await tx.run(INSERT, ['undone', NOW]);
        throw new Error('changed my mind');
      }),
      store.transaction((tx) => tx.run(INSERT, ['kept-2', NOW])),
      // A statement that fails changes nothing, and the others stay.
      store.run(INSERT, ['kept-1', NOW]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect(await store.all('SELECT jti FROM revoked_tokens ORDER BY jti')).toEqual([
      { jti: 'kept-1' },
      { jti: 'kept-2' },
    ]);
    await store.close();
  });

  it('fails every statement of a turn whose commit fails, and keeps none of them', async () => {
    const store = storeThatCanFailCommits('batch-fail.db');
    const before = store.committedChanges;
    const results = await Promise.allSettled([
      store.run(INSERT, ['innocent', NOW]),
      store.run('INSERT INTO children (id, parent) VALUES (?, ?)', ['orphan', 'nobody']),
      store.transaction((tx) => tx.run(INSERT, ['bystander', NOW])),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/);
    expect(store.committedChanges).toBe(before);
    expect(await store.all('SELECT jti FROM revoked_tokens')).toEqual([]);
    // The store goes on: the next turn commits.
    await store.run(INSERT, ['after', NOW]);
    expect(await store.all('SELECT jti FROM revoked_tokens')).toEqual([{ jti: 'after' }]);
    await store.close();
  });

  it('tells a refusal only after the write it rests on committed, and not at all if that write never does', async () => {
    const store = storeThatCanFailCommits('batch-refusal.db');
    // The second insert of a key collides with the first, which is not committed yet: its UNIQUE
    // refusal is told once the first is committed.
    let before = store.committedChanges;
    const seen: string[] = [];
    const [first, second] = await Promise.allSettled([
      store.run(INSERT, ['taken', NOW]),
      store.run(INSERT, ['taken', NOW]).catch((err: Error) => {
        seen.push(`refused with ${store.committedChanges > before ? 'the first committed' : 'it open'}`);
        throw err;
      }),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(String((second as PromiseRejectedResult).reason)).toMatch(/UNIQUE/);
    expect(seen).toEqual(['refused with the first committed']);
    // Now the first write's batch fails at COMMIT: the collision it caused is never told as such.
    before = store.committedChanges;
    const results = await Promise.allSettled([
      store.run(INSERT, ['ghost', NOW]),
      store.run(INSERT, ['ghost', NOW]),
      store.transaction(async (tx) => {
        await tx.run(INSERT, ['ghost', NOW]);
      }),
      store.run('INSERT INTO children (id, parent) VALUES (?, ?)', ['orphan', 'nobody']),
    ]);
    const reasons = results.map((r) => String((r as PromiseRejectedResult).reason));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    for (const reason of reasons) expect(reason).toMatch(/batch failed/);
    expect(store.committedChanges).toBe(before);
    expect(await store.all("SELECT jti FROM revoked_tokens WHERE jti = 'ghost'")).toEqual([]);
    await store.close();
  });

  it('commits what it accepted when it closes, and refuses what comes after', async () => {
    const file = path.join(dir, 'batch-close.db');
    const store = new SqliteStore(openAppDb(file));
    const accepted = store.run(INSERT, ['accepted', NOW]);
    const closing = store.close();
    const late = store.transaction((tx) => tx.run(INSERT, ['late', NOW]));
    await expect(accepted).resolves.toEqual({ changes: 1 });
    await closing;
    await expect(late).rejects.toThrow(/closed|not open/);
    const again = new SqliteStore(openAppDb(file));
    expect(await again.all('SELECT jti FROM revoked_tokens')).toEqual([{ jti: 'accepted' }]);
    await again.close();
  });

  it('answers a read made while a turn’s writes are open only after they committed', async () => {
    const store = new SqliteStore(openAppDb(path.join(dir, 'batch-read.db')));
    const before = store.committedChanges;
    const order: string[] = [];
    const write = store.run(INSERT, ['w', NOW]).then(() => order.push('write'));
    const read = store.all<{ jti: string }>('SELECT jti FROM revoked_tokens').then((rows) => {
      order.push(`read ${rows.length} at ${store.committedChanges > before ? 'committed' : 'open'}`);
    });
    await Promise.all([write, read]);
    expect(order).toEqual(['write', 'read 1 at committed']);
    await store.close();
  });
});

describe('the PostgreSQL store', () => {
  it('cancels a statement that runs past its timeout', async () => {
    const store = new PostgresStore(await freshPostgresDatabase('timeout'), {
      maxConnections: 1,
      statementTimeoutMs: 50,
    });
    try {
      // The pool's one connection first: its connect is bounded by the same 50 ms, which a loaded
      // machine can miss (CI did once); this test is about the statement, so try a few times.
      for (let attempt = 1; ; attempt++) {
        const warm = await store.get('SELECT 1 AS one').catch((err: unknown) => err);
        if (!(warm instanceof Error)) break;
        if (attempt === 20) throw warm;
      }
      const slow = await store.get('SELECT pg_sleep(5)').catch((err: unknown) => err);
      expect(String(slow)).toMatch(/statement timeout/);
      expect(isStoreUnavailable(slow)).toBe(true);
      expect(await store.get('SELECT 1 AS one')).toEqual({ one: 1 });
    } finally {
      await store.close();
    }
  });
});

describe('the PostgreSQL store’s transactions', () => {
  it('sends BEGIN with the first statement: one round trip fewer per transaction', async () => {
    const relay = await turnCountingRelay(new URL(await freshPostgresDatabase('begin-trips')));
    const store = new PostgresStore(relay.url, { maxConnections: 1, statementTimeoutMs: 10_000 });
    try {
      expect(await store.get('SELECT 1 AS one')).toEqual({ one: 1 });
      const before = relay.turns();
      const sum = await store.transaction(async (tx) => {
        const a = await tx.get<{ n: number }>('SELECT 2 AS n');
        const b = await tx.get<{ n: number }>('SELECT 3 AS n');
        return (a?.n ?? 0) + (b?.n ?? 0);
      });
      expect(sum).toBe(5);
      // BEGIN and the first SELECT, the second SELECT, COMMIT.
      expect(relay.turns() - before).toBe(3);
      // Statements made together share one round trip, each inside the transaction, in order.
      await store.run('CREATE TABLE marks (n integer)');
      const together = relay.turns();
      const marks = await store.transaction(async (tx) => {
        await tx.run('INSERT INTO marks (n) VALUES (?)', [1]);
        await Promise.all([2, 3, 4].map((n) => tx.run('INSERT INTO marks (n) VALUES (?)', [n])));
        return tx.all<{ n: number }>('SELECT n FROM marks ORDER BY n');
      });
      expect(marks.map((m) => m.n)).toEqual([1, 2, 3, 4]);
      // BEGIN and the first insert, the three inserts, the SELECT, COMMIT.
      expect(relay.turns() - together).toBe(4);
      await store.run('DELETE FROM marks');
      // A statement that fails among statements made together fails the transaction, all of it.
      const halfway = await store
        .transaction((tx) =>
          Promise.all([
            tx.run('INSERT INTO marks (n) VALUES (?)', [5]),
            tx.run('INSERT INTO marks (n) VALUES (?)', ['not a number']),
            tx.run('INSERT INTO marks (n) VALUES (?)', [6]),
          ]),
        )
        .catch((err: unknown) => err);
      expect(String(halfway)).toMatch(/invalid input syntax/);
      expect(await store.get('SELECT COUNT(*) AS n FROM marks')).toEqual({ n: 0 });
      // The first statement ran inside the transaction: a rollback takes it back.
      const failed = await store
        .transaction(async (tx) => {
          await tx.run('INSERT INTO marks (n) VALUES (?)', [1]);
          throw new Error('changed my mind');
        })
        .catch((err: unknown) => err);
      expect(String(failed)).toMatch(/changed my mind/);
      expect(await store.get('SELECT COUNT(*) AS n FROM marks')).toEqual({ n: 0 });
      // A statement that fails in a transaction fails it, and the connection serves the next one.
      const refused = await store
        .transaction((tx) => tx.get('SELECT nope FROM marks'))
        .catch((e: unknown) => e);
      expect(String(refused)).toMatch(/nope/);
      expect(await store.transaction((tx) => tx.get('SELECT 7 AS n'))).toEqual({ n: 7 });
    } finally {
      await store.close();
      relay.close();
    }
  });
});

describe('a PostgreSQL server that goes away or hangs', () => {
  // A server of this file's own: these tests stop and freeze it.
  let server: TestPostgres;
  beforeAll(async () => {
    server = await startTestPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('serves the whole service through the server’s Unix-domain socket (DATABASE_URL ?host=dir)', async () => {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    let service: TestServer | undefined;
    try {
      const url = throughSocket(await createDatabase(server.url, 'via_socket'), server.socketDir);
      service = await startTestServer({ ...ADMIN_ENV, DATABASE_URL: url });
      const { api } = service;
      const show = await createShow(api);
      const { token } = await newUser(api);
      const booked = await bookAndPay(api, token, show.showId, ['A1']);
      expect(booked.status).toBe('confirmed');
      const map = await api('GET', `/api/shows/${show.showId}/seats`);
      expect(map.body.seats.find((s: { id: string }) => s.id === 'A1')?.status).toBe('booked');
      expect((await api('GET', '/readyz')).status).toBe(200);
      // Every connection the service holds came through the socket: a socket client has no address.
      const { rows } = await admin.query(
        "SELECT count(*)::int AS n, count(client_addr)::int AS tcp FROM pg_stat_activity WHERE datname = 'via_socket'",
      );
      expect(rows[0].n).toBeGreaterThan(0);
      expect(rows[0].tcp).toBe(0);
    } finally {
      await service?.destroy();
      await admin.end();
    }
  }, 60_000);

  it('fails statements as unavailable while the server is down, and serves again once it is back', async () => {
    const store = new PostgresStore(server.url, { maxConnections: 2, statementTimeoutMs: 2_000 });
    try {
      expect(await store.get('SELECT 1 AS one')).toEqual({ one: 1 });
      await server.halt();
      const down = await store.get('SELECT 1 AS one').catch((err: unknown) => err);
      expect(down).toBeInstanceOf(Error);
      expect(isStoreUnavailable(down)).toBe(true);
      const inTransaction = await store.transaction((tx) => tx.get('SELECT 1')).catch((err: unknown) => err);
      expect(isStoreUnavailable(inTransaction)).toBe(true);
      await server.restart();
      // The pool dropped the dead connections: the next statement opens a new one.
      expect(await store.get('SELECT 1 AS one')).toEqual({ one: 1 });
    } finally {
      await store.close();
    }
  }, 60_000);

  it('gives up on a server that answers nothing, as unavailable, rather than waiting for ever', async () => {
    const store = new PostgresStore(server.url, { maxConnections: 2, statementTimeoutMs: 300 });
    const thaw = server.freeze();
    try {
      // Neither a new connection nor a statement can be answered: both are bounded on our side.
      const hung = await store.get('SELECT 1 AS one').catch((err: unknown) => err);
      expect(hung).toBeInstanceOf(Error);
      expect(isStoreUnavailable(hung)).toBe(true);
    } finally {
      thaw();
    }
    // A connection that stops answering in the middle of a transaction: the transaction fails as
    // unavailable (and the process carries on), the connection is dropped, the next one serves.
    expect(await store.get('SELECT 1 AS one')).toEqual({ one: 1 });
    const stalled = store
      .transaction(async (tx) => {
        await tx.get('SELECT 1 AS one');
        const thawAgain = server.freeze();
        try {
          return await tx.get('SELECT 2 AS two');
        } finally {
          setTimeout(thawAgain, 1_500);
        }
      })
      .catch((err: unknown) => err);
    const inTransaction = await stalled;
    expect(inTransaction).toBeInstanceOf(Error);
    expect(isStoreUnavailable(inTransaction)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    try {
      expect(await store.get('SELECT 1 AS one')).toEqual({ one: 1 });
    } finally {
      await store.close();
    }
  }, 60_000);
});

describe('isStoreUnavailable', () => {
  it('tells a database that cannot serve now from a statement that is wrong', () => {
    const coded = (message: string, code: string) => Object.assign(new Error(message), { code });
    expect(isStoreUnavailable(coded('the database system is shutting down', '57P03'))).toBe(true);
    expect(isStoreUnavailable(coded('too many clients', '53300'))).toBe(true);
    expect(isStoreUnavailable(coded('could not serialize access', '40001'))).toBe(true);
    expect(isStoreUnavailable(coded('database is locked', 'SQLITE_BUSY'))).toBe(true);
    expect(isStoreUnavailable(coded('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'))).toBe(true);
    expect(isStoreUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isStoreUnavailable(coded('duplicate key value violates unique constraint', '23505'))).toBe(false);
    expect(isStoreUnavailable(coded('syntax error at or near "SELEC"', '42601'))).toBe(false);
    expect(
      isStoreUnavailable(coded('UNIQUE constraint failed: users.email', 'SQLITE_CONSTRAINT_UNIQUE')),
    ).toBe(false);
    expect(isStoreUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(
      false,
    );
  });
});
