/**
 * @module idempotency
 * `Idempotency-Key` for POSTs that create or pay: the same key and body within 24 h answers the first
 * response again; the same key with another body is 409 IDEMPOTENCY_KEY_REUSED; a retry that arrives
 * while the first is still running is 409 IDEMPOTENCY_KEY_IN_USE. Keys are per user, stored in the app db;
 * bodies are compared as canonical JSON, by a digest keyed with the server's secret (a body may hold a
 * password or a card number, and a plain hash of it could be guessed back offline from the database).
 * Anonymous keys (registration) are scoped by that digest too: a stranger who sends the same key with
 * another body lands in another scope, so one caller can neither take nor probe another's key; only the
 * very same request (which already holds the password) replays. A route may keep less of its reply than
 * it sent (`toStored`: a registration's token never reaches the store) and rebuild a replay (`replay`).
 * Server errors are not stored, so a request that failed on our side can be retried with the same key;
 * nor is a 400 (bad input changed nothing), so a client that fixes a typo, say in a card's expiry, may
 * resend with the same key, as Stripe allows after a validation failure.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError } from './errors.js';
import { requestHeader } from './request-context.js';

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Claim, read, claim again: a key freed or expired between our insert and our read gets a few more. */
const MAX_CLAIM_TRIES = 3;

interface KeyRow {
  body_hash: string;
  status: number | null;
  response: string | null;
  created_at: string;
}

export interface IdempotencyOptions {
  /** What is kept of a completed reply's body (the reply itself goes out whole). */
  toStored?: (status: number, body: string) => string;
  /** Answers a replay from what was kept; undefined answers the kept reply as it is. */
  replay?: (
    c: Context<AppEnv>,
    stored: { status: number; body: string; requestBody: string },
  ) => Promise<Response | undefined>;
}

export function idempotent(deps: AppDeps, options: IdempotencyOptions = {}): MiddlewareHandler<AppEnv> {
  const { store } = deps;
  const remove = (userId: string, key: string) =>
    store.run('DELETE FROM idempotency_keys WHERE user_id = ? AND key = ?', [userId, key]);
  let lastPurgeMs = 0;

  /**
   * Claims the key for this request, or answers what an earlier request with it left. The claim is a
   * primary-key insert that does nothing on conflict: of concurrent retries with one key exactly one
   * inserts (changes === 1) and runs; the others read its row and replay it or answer 409. No read
   * decides the insert, so nothing needs a lock or a transaction.
   */
  const claimOrAnswer = async (
    c: Context<AppEnv>,
    claim: { userId: string; key: string; bodyHash: string; raw: string; nowMs: number },
  ): Promise<Response | undefined> => {
    const { userId, key, bodyHash, nowMs } = claim;
    for (let tries = 0; tries < MAX_CLAIM_TRIES; tries++) {
      const inserted = await store.run(
        `INSERT INTO idempotency_keys (user_id, key, route, body_hash, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (user_id, key) DO NOTHING`,
        [userId, key, c.req.path, bodyHash, new Date(nowMs).toISOString()],
      );
      if (inserted.changes === 1) return undefined;
      const seen = await store.get<KeyRow>(
        'SELECT body_hash, status, response, created_at FROM idempotency_keys WHERE user_id = ? AND key = ?',
        [userId, key],
      );
      // Gone between the insert and the read: its request failed and let go of it; claim again.
      if (!seen) continue;
      if (Date.parse(seen.created_at) <= nowMs - IDEMPOTENCY_TTL_MS) {
        // Expired: removed only if it is still that very row (a concurrent retry may have replaced it).
        await store.run('DELETE FROM idempotency_keys WHERE user_id = ? AND key = ? AND created_at = ?', [
          userId,
          key,
          seen.created_at,
        ]);
        continue;
      }
      if (seen.body_hash !== bodyHash)
        throw new ApiError(
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was used with a different request',
        );
      if (seen.status === null)
        throw new ApiError(
          'IDEMPOTENCY_KEY_IN_USE',
          'a request with this Idempotency-Key is still in progress',
        );
      const rebuilt = await options.replay?.(c, {
        status: seen.status,
        body: seen.response ?? '',
        requestBody: claim.raw,
      });
      if (rebuilt) return rebuilt;
      return new Response(seen.response, {
        status: seen.status,
        headers: { 'content-type': 'application/json', 'idempotent-replayed': 'true' },
      });
    }
    // Only a key claimed and released over and over, faster than these tries, lands here.
    throw new ApiError('IDEMPOTENCY_KEY_IN_USE', 'a request with this Idempotency-Key is still in progress');
  };

  const middleware: MiddlewareHandler<AppEnv> = async (c, next) => {
    const key = requestHeader(c, 'idempotency-key');
    if (key === undefined) return next();
    if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH)
      throw new ApiError(
        'VALIDATION_FAILED',
        `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
        {
          fields: { 'Idempotency-Key': 'bad length' },
        },
      );
    const nowMs = deps.now();
    if (nowMs - lastPurgeMs > 60_000) {
      lastPurgeMs = nowMs;
      await store.run('DELETE FROM idempotency_keys WHERE created_at < ?', [
        new Date(nowMs - IDEMPOTENCY_TTL_MS).toISOString(),
      ]);
    }
    const raw = await c.req.raw.clone().text();
    const bodyHash = deps.tokens.keyedDigest(
      `idempotency\n${c.req.method} ${c.req.path}\n${canonicalBody(raw)}`,
    );
    const userId = c.get('user')?.id ?? `anonymous:${bodyHash}`;
    const answer = await claimOrAnswer(c, { userId, key, bodyHash, raw, nowMs });
    if (answer) return answer;
    try {
      await next();
    } catch (err) {
      await remove(userId, key);
      throw err;
    }
    if (c.res.status >= 500 || c.res.status === 400) {
      await remove(userId, key);
      return;
    }
    const text = await c.res.clone().text();
    await store.run('UPDATE idempotency_keys SET status = ?, response = ? WHERE user_id = ? AND key = ?', [
      c.res.status,
      options.toStored?.(c.res.status, text) ?? text,
      userId,
      key,
    ]);
  };
  IDEMPOTENT.add(middleware);
  return middleware;
}

/** Lets a route definition document the 409s that this middleware can answer. */
const IDEMPOTENT = new WeakSet<object>();
export const isIdempotent = (middleware: unknown): boolean =>
  typeof middleware === 'function' && IDEMPOTENT.has(middleware);

/**
 * The body as compared between a request and its retry: JSON with its object keys sorted and no
 * whitespace, so a client that re-serializes the same request (another key order, other spacing) is
 * recognised; anything that is not JSON as it came.
 */
export function canonicalBody(raw: string): string {
  if (raw.length === 0) return raw;
  try {
    return JSON.stringify(JSON.parse(raw), (_key, value: unknown) =>
      value !== null && typeof value === 'object' && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : value,
    );
  } catch {
    return raw;
  }
}
