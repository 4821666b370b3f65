/**
 * @module http/load-test
 * `POST /api/admin/load-test/users` (role admin, and only with LOAD_TEST_MODE=true): test users in
 * bulk with their tokens, for `npm run load`. Off, it answers 403 before looking at the token, so a
 * production service never mints sessions this way whoever asks.
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import {
  createLoadTestUsers,
  LOAD_TEST_EMAIL_DOMAIN,
  MAX_LOAD_TEST_USERS_PER_REQUEST,
  RUN_ID_PATTERN,
} from '../domain/load-test-users.js';
import { requireAdmin } from './auth.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, unwrap } from './errors.js';
import { bearer, createRoute, errorResponse, json, jsonBody } from './schemas.js';

const LoadTestUsersInput = z
  .object({
    count: z.number().int().min(1).max(MAX_LOAD_TEST_USERS_PER_REQUEST),
    runId: z.string().regex(RUN_ID_PATTERN, 'lower-case letters, digits and dashes').optional(),
    firstIndex: z.number().int().min(0).max(1_000_000).optional(),
    password: z.string().min(8).max(200).optional(),
  })
  .strict()
  .openapi('LoadTestUsersInput');

const LoadTestUsersReply = z
  .object({
    runId: z.string(),
    users: z.array(z.object({ id: z.string(), email: z.string(), token: z.string() })),
    expiresAt: z.string(),
  })
  .openapi('LoadTestUsers');

/** Used when the caller names none; the accounts are for load only, and their tokens come back anyway. */
const DEFAULT_PASSWORD = 'load-test-password';

function requireLoadTestMode(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (_c, next) => {
    if (!deps.config.LOAD_TEST_MODE)
      throw new ApiError('FORBIDDEN', 'load-test mode is off: start the service with LOAD_TEST_MODE=true');
    await next();
  };
}

export function registerLoadTestRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'post',
      path: '/api/admin/load-test/users',
      summary: 'Create test users in bulk (LOAD_TEST_MODE only)',
      description: `Creates \`count\` users \`loadtest-<runId>-<i>@${LOAD_TEST_EMAIL_DOMAIN}\` sharing one password (hashed once) and returns a token for each. Refused with 403 unless the service runs with LOAD_TEST_MODE=true.`,
      middleware: [requireLoadTestMode(deps), requireAdmin(deps)] as const,
      request: { ...jsonBody(LoadTestUsersInput) },
      responses: {
        201: json(LoadTestUsersReply, 'Created'),
        400: errorResponse('Bad input, or count above the bound'),
        401: errorResponse('No or bad token'),
        403: errorResponse('Not an admin, or load-test mode is off'),
        409: errorResponse('EMAIL_TAKEN: this run already has users in this index range'),
      },
    }),
    async (c) => {
      const input = c.req.valid('json');
      const batch = unwrap(
        await createLoadTestUsers(deps.store, deps.tokens, {
          count: input.count,
          runId: input.runId,
          firstIndex: input.firstIndex,
          password: input.password ?? DEFAULT_PASSWORD,
          now: deps.now,
        }),
      );
      return c.json(
        { runId: batch.runId, users: batch.users, expiresAt: new Date(batch.expiresAtMs).toISOString() },
        201,
      );
    },
  );
}
