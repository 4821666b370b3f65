/**
 * @module load-test-users
 * Test accounts in bulk for load testing (`npm run load`): N ordinary users under the reserved domain
 * `load.test`, all sharing one password hashed once, each with a token. Registering 5,000 users one by
 * one costs 5,000 scrypt runs (about 96 s on 2 cores); this costs one. The HTTP layer refuses it unless
 * LOAD_TEST_MODE is on: one call mints thousands of valid sessions.
 */
import { randomBytes } from 'node:crypto';
import { newId } from '../ids.js';
import type { Store } from '../persistence/store.js';
import type { TokenService } from './auth-tokens.js';
import { type Failure, failure } from './failure.js';
import { hashPassword, isUniqueViolation } from './users.js';

/** Users per request: 10,000 tokens are about 3 MB of reply and a second of signing. */
export const MAX_LOAD_TEST_USERS_PER_REQUEST = 10_000;
/**
 * Rows per INSERT statement: 6 parameters each stays far below SQLite's 32,766 and PostgreSQL's 65,535
 * bound parameters, and 10,000 users take 20 statements instead of 10,000 round trips.
 */
const INSERT_CHUNK_ROWS = 500;
/** Reserved for testing (RFC 2606's `.test`): no mail to these addresses can reach anyone. */
export const LOAD_TEST_EMAIL_DOMAIN = 'load.test';
/** A run id names the batch in every email, so a run's users can be found and told apart later. */
export const RUN_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;

export interface LoadTestUser {
  id: string;
  email: string;
  token: string;
}

export interface LoadTestBatch {
  ok: true;
  runId: string;
  users: LoadTestUser[];
  expiresAtMs: number;
}

export function loadTestEmail(runId: string, index: number): string {
  return `loadtest-${runId}-${index}@${LOAD_TEST_EMAIL_DOMAIN}`;
}

/**
 * Creates `count` users `loadtest-<runId>-<i>@load.test` (i from `firstIndex`) with `password`, all or
 * none: an email already taken (the same run and index twice) refuses the whole batch.
 */
export async function createLoadTestUsers(
  store: Store,
  tokens: TokenService,
  request: { count: number; runId?: string; firstIndex?: number; password: string; now: () => number },
): Promise<LoadTestBatch | Failure> {
  const { count, password } = request;
  const firstIndex = request.firstIndex ?? 0;
  if (!Number.isInteger(count) || count < 1 || count > MAX_LOAD_TEST_USERS_PER_REQUEST)
    return failure('VALIDATION_FAILED', `count must be 1 to ${MAX_LOAD_TEST_USERS_PER_REQUEST}`, {
      fields: { count: 'out of range' },
    });
  const runId = request.runId ?? randomBytes(4).toString('hex');
  if (!RUN_ID_PATTERN.test(runId))
    return failure('VALIDATION_FAILED', 'runId: lower-case letters, digits and dashes, at most 32', {
      fields: { runId: 'invalid' },
    });
  // One scrypt for the whole batch: the salt is shared, which only matters for accounts nobody owns.
  const hash = await hashPassword(password);
  const nowIso = new Date(request.now()).toISOString();
  const rows = Array.from({ length: count }, (_, k) => ({
    id: newId('usr'),
    name: `Load Test ${firstIndex + k}`,
    email: loadTestEmail(runId, firstIndex + k),
  }));
  try {
    // All or none: one transaction. A concurrent batch over the same run and indexes is refused by the
    // unique email index (on PostgreSQL it waits for ours to commit or roll back, then fails or lands).
    await store.transaction(async (tx) => {
      for (let start = 0; start < rows.length; start += INSERT_CHUNK_ROWS) {
        const chunk = rows.slice(start, start + INSERT_CHUNK_ROWS);
        // The same row UserService.register writes; session_generation keeps its default of 0.
        await tx.run(
          `INSERT INTO users (id, name, email, phone, password_hash, role, created_at, updated_at)
           VALUES ${chunk.map(() => "(?, ?, ?, NULL, ?, 'user', ?, ?)").join(', ')}`,
          chunk.flatMap((row) => [row.id, row.name, row.email, hash, nowIso, nowIso]),
        );
      }
    });
  } catch (err) {
    if (isUniqueViolation(err))
      return failure('EMAIL_TAKEN', `run ${runId} already has users in this index range`, { runId });
    throw err;
  }
  const users: LoadTestUser[] = [];
  let expiresAtMs = 0;
  for (const row of rows) {
    const issued = await tokens.issue({ id: row.id, role: 'user', generation: 0 });
    expiresAtMs = issued.expiresAtMs;
    users.push({ id: row.id, email: row.email, token: issued.token });
  }
  return { ok: true, runId, users, expiresAtMs };
}
