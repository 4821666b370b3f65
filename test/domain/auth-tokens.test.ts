/**
 * TokenService on both app stores: revocations and session generations written through the store,
 * answered from memory, loaded again by a new service (a restart), and concurrent generation bumps.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuthUser, TokenService } from '../../src/domain/auth-tokens.js';
import { migratePostgres } from '../../src/persistence/pg-app-db.js';
import { PostgresStore, type Store } from '../../src/persistence/store.js';
import { APP_STORES, insertUser } from '../helpers/app-stores.js';
import { freshPostgresDatabase } from '../helpers/postgres.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const TTL_SECONDS = 3600;

describe.each(APP_STORES)('TokenService on the $name store', (fixture) => {
  let store: Store;
  const key = randomBytes(32);
  const now = () => T0;
  const opened: TokenService[] = [];
  const open = async () => {
    const tokens = await TokenService.open(store, key, TTL_SECONDS, now);
    opened.push(tokens);
    return tokens;
  };

  /** A token for `userId` and the user it verifies as (with its jti). */
  async function session(tokens: TokenService, userId: string): Promise<{ token: string; user: AuthUser }> {
    const { token } = await tokens.issue({ id: userId, role: 'user' });
    const user = await tokens.verify(token);
    if (!user) throw new Error('a fresh token did not verify');
    return { token, user };
  }

  beforeAll(async () => {
    store = await fixture.open('auth_tokens');
  });
  afterAll(async () => {
    for (const tokens of opened) await tokens.close();
    await store?.close();
  });

  it('refuses a revoked token at once and after a restart; a second revoke is harmless', async () => {
    await insertUser(store, 'usr_rev');
    const tokens = await open();
    const { token, user } = await session(tokens, 'usr_rev');
    await tokens.revoke(user);
    expect(await tokens.verify(token)).toBeUndefined();
    // A retried logout, and several at once: the primary key keeps one row, none of them fails.
    await Promise.all(Array.from({ length: 8 }, () => tokens.revoke(user)));
    const rows = await store.all<{ n: number }>('SELECT COUNT(*) AS n FROM revoked_tokens WHERE jti = ?', [
      user.jti,
    ]);
    expect(rows[0]?.n).toBe(1);
    const restarted = await open();
    expect(await restarted.verify(token)).toBeUndefined();
    const other = await session(restarted, 'usr_rev');
    expect(await restarted.verify(other.token)).toMatchObject({ id: 'usr_rev' });
  });

  it('forgets revocations of tokens that have expired when it opens', async () => {
    await store.run('INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?), (?, ?)', [
      'jti-old',
      new Date(T0 - 1000).toISOString(),
      'jti-live',
      new Date(T0 + 60_000).toISOString(),
    ]);
    await open();
    const left = await store.all<{ jti: string }>(
      "SELECT jti FROM revoked_tokens WHERE jti IN ('jti-old', 'jti-live') ORDER BY jti",
    );
    expect(left.map((row) => row.jti)).toEqual(['jti-live']);
  });

  it('ends every other session on a generation bump, also after a restart', async () => {
    await insertUser(store, 'usr_gen');
    const tokens = await open();
    const kept = await session(tokens, 'usr_gen');
    const ended = await session(tokens, 'usr_gen');
    const bumped = await store.transaction((tx) => tokens.nextGeneration(tx, 'usr_gen', kept.user));
    expect(bumped).toEqual({ generation: 1, keptJti: kept.user.jti });
    tokens.sessionsEnded('usr_gen', bumped);
    expect(await tokens.verify(ended.token)).toBeUndefined();
    expect(await tokens.verify(kept.token)).toMatchObject({ id: 'usr_gen' });
    const fresh = await session(tokens, 'usr_gen');
    expect(fresh.user.generation).toBe(1);

    const restarted = await open();
    expect(await restarted.verify(ended.token)).toBeUndefined();
    expect(await restarted.verify(kept.token)).toMatchObject({ id: 'usr_gen' });
    expect(await restarted.verify(fresh.token)).toMatchObject({ id: 'usr_gen' });
  });

  it('keeps memory on a bump that rolled back unchanged', async () => {
    await insertUser(store, 'usr_rollback');
    const tokens = await open();
    const before = await session(tokens, 'usr_rollback');
    await expect(
      store.transaction(async (tx) => {
        await tokens.nextGeneration(tx, 'usr_rollback');
        throw new Error('the rest of the change failed');
      }),
    ).rejects.toThrow('the rest of the change failed');
    expect(await tokens.verify(before.token)).toMatchObject({ id: 'usr_rollback' });
    const row = await store.get<{ session_generation: number }>(
      'SELECT session_generation FROM users WHERE id = ?',
      ['usr_rollback'],
    );
    expect(row?.session_generation).toBe(0);
  });

  it('never lets an older bump that finishes last replace a newer one in memory', async () => {
    await insertUser(store, 'usr_order');
    const tokens = await open();
    const first = await session(tokens, 'usr_order');
    const second = await session(tokens, 'usr_order');
    const one = await store.transaction((tx) => tokens.nextGeneration(tx, 'usr_order', first.user));
    const two = await store.transaction((tx) => tokens.nextGeneration(tx, 'usr_order', second.user));
    tokens.sessionsEnded('usr_order', two);
    tokens.sessionsEnded('usr_order', one);
    expect(await tokens.verify(second.token)).toMatchObject({ id: 'usr_order' });
    expect(await tokens.verify(first.token)).toBeUndefined();
  });

  it('gives concurrent bumps of one user distinct generations and ends where the row ends', async () => {
    await insertUser(store, 'usr_race');
    const tokens = await open();
    const sessions = await Promise.all(Array.from({ length: 12 }, () => session(tokens, 'usr_race')));
    const bumps = await Promise.all(
      sessions.map(async (s) => {
        const bumped = await store.transaction((tx) => tokens.nextGeneration(tx, 'usr_race', s.user));
        tokens.sessionsEnded('usr_race', bumped);
        return bumped;
      }),
    );
    expect(bumps.map((b) => b?.generation).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      Array.from({ length: 12 }, (_, k) => k + 1),
    );
    const row = await store.get<{ session_generation: number; kept_session_jti: string }>(
      'SELECT session_generation, kept_session_jti FROM users WHERE id = ?',
      ['usr_race'],
    );
    expect(row?.session_generation).toBe(12);
    // Exactly one session survives: the one the last bump kept, on this node and after a restart.
    const restarted = await open();
    for (const service of [tokens, restarted]) {
      const live = [];
      for (const s of sessions) if (await service.verify(s.token)) live.push(s.user.jti);
      expect(live).toEqual([row?.kept_session_jti]);
    }
  });
});

describe('two nodes on one PostgreSQL database', () => {
  const key = randomBytes(32);
  const now = () => T0;
  const stores: Store[] = [];
  const services: TokenService[] = [];
  afterAll(async () => {
    for (const tokens of services) await tokens.close();
    for (const store of stores) await store.close();
  });

  async function node(url: string): Promise<{ store: Store; tokens: TokenService }> {
    const store = new PostgresStore(url, { maxConnections: 4, statementTimeoutMs: 5_000 });
    stores.push(store);
    const tokens = await TokenService.open(store, key, TTL_SECONDS, now);
    services.push(tokens);
    return { store, tokens };
  }

  /** Polls until `check` holds; a NOTIFY arrives in milliseconds, the bound only stops a broken test. */
  async function eventually(check: () => Promise<boolean>): Promise<boolean> {
    for (let attempt = 0; attempt < 200; attempt++) {
      if (await check()) return true;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return false;
  }

  it('refuses on one node a token revoked, or a session ended, on the other', async () => {
    const url = await freshPostgresDatabase('two_nodes');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    await migratePostgres(pool);
    await pool.end();
    const a = await node(url);
    const b = await node(url);
    await insertUser(a.store, 'usr_two');

    const { token } = await a.tokens.issue({ id: 'usr_two', role: 'user' });
    const onA = (await a.tokens.verify(token))!;
    expect(await b.tokens.verify(token)).toMatchObject({ id: 'usr_two' });
    await a.tokens.revoke(onA);
    expect(await eventually(async () => (await b.tokens.verify(token)) === undefined)).toBe(true);

    // A password change on B ends every other session of the user, on A too; B's own one stays.
    const kept = await b.tokens.issue({ id: 'usr_two', role: 'user' });
    const other = await a.tokens.issue({ id: 'usr_two', role: 'user' });
    expect(await a.tokens.verify(other.token)).toBeDefined();
    const keeper = (await b.tokens.verify(kept.token))!;
    const bumped = await b.store.transaction((tx) => b.tokens.nextGeneration(tx, 'usr_two', keeper));
    b.tokens.sessionsEnded('usr_two', bumped);
    expect(await eventually(async () => (await a.tokens.verify(other.token)) === undefined)).toBe(true);
    expect(await a.tokens.verify(kept.token)).toMatchObject({ id: 'usr_two' });
  });

  it('picks up what it missed while its listening connection was cut, once it is back', async () => {
    const url = await freshPostgresDatabase('two_nodes_cut');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    await migratePostgres(pool);
    const a = await node(url);
    const b = await node(url);
    await insertUser(a.store, 'usr_cut');
    const { token } = await a.tokens.issue({ id: 'usr_cut', role: 'user' });
    const onA = (await a.tokens.verify(token))!;
    // B's listener is ended by the server (as by a restart or a network cut); A revokes meanwhile.
    await pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`,
    );
    await a.tokens.revoke(onA);
    await pool.end();
    expect(await eventually(async () => (await b.tokens.verify(token)) === undefined)).toBe(true);
  });
});
