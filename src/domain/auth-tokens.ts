/**
 * @module auth-tokens
 * Access tokens: HS256 JWTs (jose) with a short expiry and a `jti` that logout revokes. Revocations are
 * stored in the app database (they survive restarts) and mirrored in memory; verified tokens are cached
 * so the hot path does one map lookup instead of an HMAC per request. Each token carries the user's
 * session generation (`gen`); a password change moves it on, voiding every other session of the user
 * but the one that made the change (`nextGeneration`, then `sessionsEnded` after the commit).
 */
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { jwtVerify, SignJWT } from 'jose';
import { notify, type Queryable, type Store, type Subscription } from '../persistence/store.js';

export type Role = 'user' | 'admin';

export interface AuthUser {
  id: string;
  role: Role;
  jti: string;
  /** The user's session generation when the token was issued (0 for tokens without the claim). */
  generation: number;
  expiresAtMs: number;
}

export interface SessionGeneration {
  generation: number;
  /** The one earlier session still valid: the one that changed the password. */
  keptJti: string | null;
}

/** Bound on cached verified tokens; past it the oldest half is dropped. */
export const MAX_CACHED_TOKENS = 100_000;
const ISSUER = 'boxoffice';
/**
 * Where nodes sharing a PostgreSQL database tell each other about revocations and ended sessions. A
 * change reaches the others when its transaction commits; one that a node missed while its listening
 * connection was down is picked up by the reload when it reconnects (retried every second).
 */
export const SESSIONS_CHANNEL = 'boxoffice_sessions';
const RELOAD_RETRY_MS = 1_000;

type SessionChange =
  | { revoked: string; expiresAtMs: number; user?: undefined; generation?: undefined; keptJti?: undefined }
  | {
      user: string;
      generation: number;
      keptJti: string | null;
      revoked?: undefined;
      expiresAtMs?: undefined;
    };

export class TokenService {
  readonly #key: Uint8Array;
  readonly #revoked = new Map<string, number>();
  /** Users whose generation moved on (most never change their password): user id → generation. */
  readonly #generations = new Map<string, SessionGeneration>();
  readonly #cache = new Map<string, AuthUser>();
  #subscription?: Subscription;

  private constructor(
    private readonly store: Store,
    key: Uint8Array,
    private readonly ttlSeconds: number,
    private readonly now: () => number,
  ) {
    this.#key = key;
  }

  /**
   * Loads the revocations and session generations into memory before the first request: every token
   * check answers from memory, so the store is only read here and written on revoke or generation bump.
   */
  static async open(
    store: Store,
    key: Uint8Array,
    ttlSeconds: number,
    now: () => number = Date.now,
  ): Promise<TokenService> {
    const tokens = new TokenService(store, key, ttlSeconds, now);
    // Subscribed before the load, so nothing committed between the two is missed.
    tokens.#subscription = await store.subscribe(SESSIONS_CHANNEL, {
      onMessage: (payload) => tokens.#apply(payload),
      onResync: () => tokens.#reload(),
    });
    await tokens.#load();
    return tokens;
  }

  /** Stops following other nodes' revocations and session changes. */
  async close(): Promise<void> {
    await this.#subscription?.close();
  }

  /**
   * Another node revoked a token or ended a user's sessions (PostgreSQL NOTIFY, sent by `revoke` and
   * `nextGeneration` and delivered at their commit): this node refuses the same tokens from now on.
   */
  #apply(payload: string): void {
    let change: SessionChange;
    try {
      change = JSON.parse(payload) as SessionChange;
    } catch {
      return;
    }
    if (typeof change.revoked === 'string' && typeof change.expiresAtMs === 'number')
      this.#revoked.set(change.revoked, change.expiresAtMs);
    else if (typeof change.user === 'string' && typeof change.generation === 'number')
      this.sessionsEnded(change.user, { generation: change.generation, keptJti: change.keptJti ?? null });
  }

  /** After a lost subscription: everything again, retried every second until the store answers. */
  #reload(): void {
    this.#load().catch(() => setTimeout(() => this.#reload(), RELOAD_RETRY_MS).unref());
  }

  async #load(): Promise<void> {
    const nowIso = new Date(this.now()).toISOString();
    await this.store.run('DELETE FROM revoked_tokens WHERE expires_at < ?', [nowIso]);
    const revoked = await this.store.all<{ jti: string; expires_at: string }>(
      'SELECT jti, expires_at FROM revoked_tokens',
    );
    for (const row of revoked) this.#revoked.set(row.jti, Date.parse(row.expires_at));
    const moved = await this.store.all<{
      id: string;
      session_generation: number;
      kept_session_jti: string | null;
    }>('SELECT id, session_generation, kept_session_jti FROM users WHERE session_generation > 0');
    // `sessionsEnded` keeps the newer of memory and row, so a reload never undoes a newer change.
    for (const row of moved)
      this.sessionsEnded(row.id, { generation: row.session_generation, keptJti: row.kept_session_jti });
  }

  /** `generation`: the user's session generation as read with the row the login checked, if known. */
  async issue(user: {
    id: string;
    role: Role;
    generation?: number;
  }): Promise<{ token: string; expiresAtMs: number }> {
    const issuedAt = Math.floor(this.now() / 1000);
    const expiresAt = issuedAt + this.ttlSeconds;
    const generation = user.generation ?? this.#generations.get(user.id)?.generation ?? 0;
    const token = await new SignJWT({ role: user.role, gen: generation })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.id)
      .setIssuer(ISSUER)
      .setJti(randomBytes(12).toString('base64url'))
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(this.#key);
    return { token, expiresAtMs: expiresAt * 1000 };
  }

  /** The token's user, or undefined when it is malformed, forged, expired or revoked. */
  async verify(token: string): Promise<AuthUser | undefined> {
    const cached = this.#cache.get(token);
    if (cached) return this.#isLive(cached) ? cached : undefined;
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        issuer: ISSUER,
        algorithms: ['HS256'],
        currentDate: new Date(this.now()),
      });
      const role = payload.role;
      if (
        typeof payload.sub !== 'string' ||
        typeof payload.jti !== 'string' ||
        typeof payload.exp !== 'number' ||
        (payload.gen !== undefined && typeof payload.gen !== 'number')
      )
        return undefined;
      if (role !== 'user' && role !== 'admin') return undefined;
      const user: AuthUser = {
        id: payload.sub,
        role,
        jti: payload.jti,
        generation: (payload.gen as number | undefined) ?? 0,
        expiresAtMs: payload.exp * 1000,
      };
      if (this.#cache.size >= MAX_CACHED_TOKENS) this.#evictHalf();
      this.#cache.set(token, user);
      return this.#isLive(user) ? user : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * HMAC-SHA256 of `text` under the signing key, for what must be compared later but not read back
   * (the idempotency store's request digests): without the key it cannot be guessed back offline.
   * Callers prefix `text` with their purpose so no two uses share a digest.
   */
  keyedDigest(text: string): string {
    return createHmac('sha256', this.#key).update(text).digest('base64url');
  }

  /**
   * Refused in memory first, so the token stops working on this node even while the write is in
   * flight; the row makes it survive a restart. A second revoke of the same token (a retried logout,
   * two at once) is a no-op thanks to ON CONFLICT DO NOTHING on the primary key.
   */
  async revoke(user: AuthUser): Promise<void> {
    this.#revoked.set(user.jti, user.expiresAtMs);
    await this.store.transaction(async (tx) => {
      await tx.run('INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING', [
        user.jti,
        new Date(user.expiresAtMs).toISOString(),
      ]);
      await notify(
        tx,
        SESSIONS_CHANNEL,
        JSON.stringify({ revoked: user.jti, expiresAtMs: user.expiresAtMs }),
      );
    });
  }

  /**
   * Moves the user's session generation on, in the caller's transaction (`q`), voiding every token of
   * the user issued so far except `keep` (the session that changed the password; none when an operator
   * rotated it). The increment is one statement, so concurrent bumps each get their own generation (the
   * row lock orders them on PostgreSQL). Hand the result to `sessionsEnded` once the transaction has
   * committed: memory must never run ahead of a transaction that could still roll back.
   */
  async nextGeneration(
    q: Queryable,
    userId: string,
    keep?: AuthUser,
  ): Promise<SessionGeneration | undefined> {
    const keptJti = keep?.jti ?? null;
    const row = await q.get<{ session_generation: number }>(
      `UPDATE users SET session_generation = session_generation + 1, kept_session_jti = ? WHERE id = ?
       RETURNING session_generation`,
      [keptJti, userId],
    );
    if (!row) return undefined;
    await notify(
      q,
      SESSIONS_CHANNEL,
      JSON.stringify({ user: userId, generation: row.session_generation, keptJti }),
    );
    return { generation: row.session_generation, keptJti };
  }

  /**
   * Applies a committed generation bump to memory. Concurrent bumps can finish in any order, so an
   * older generation never replaces a newer one: memory ends where the row ended.
   */
  sessionsEnded(userId: string, bumped: SessionGeneration | undefined): void {
    if (!bumped) return;
    const current = this.#generations.get(userId);
    if (current && current.generation >= bumped.generation) return;
    this.#generations.set(userId, bumped);
  }

  #isLive(user: AuthUser): boolean {
    if (user.expiresAtMs <= this.now() || this.#revoked.has(user.jti)) return false;
    const current = this.#generations.get(user.id);
    return !current || user.generation === current.generation || user.jti === current.keptJti;
  }

  #evictHalf(): void {
    let drop = this.#cache.size / 2;
    for (const key of this.#cache.keys()) {
      if (drop-- <= 0) break;
      this.#cache.delete(key);
    }
  }
}

/**
 * The signing key: JWT_SECRET when set, else a random key generated once and kept in the data
 * directory (mode 0600), so tokens survive restarts without any setup.
 */
export function loadJwtKey(secret: string | undefined, dataDir: string): Uint8Array {
  if (secret) return new TextEncoder().encode(secret);
  const file = path.join(dataDir, 'secrets', 'jwt-secret');
  if (fs.existsSync(file)) return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64url');
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  fs.writeFileSync(file, key.toString('base64url'), { mode: 0o600 });
  return key;
}
