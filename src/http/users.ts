/**
 * @module http/users
 * Accounts: POST /api/register, /api/login, /api/logout; GET and PATCH /api/me; GET /api/me/bookings.
 * Registration is limited per client address; its idempotent replies are stored without the token, and
 * a replay signs the caller in again with the request's own credentials (see `registrationReplies`).
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { MAX_HISTORY_PAGE, type Session } from '../domain/users.js';
import { requireUser } from './auth.js';
import { clientAddressOf } from './client-address.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, type Failure, unwrap } from './errors.js';
import { type IdempotencyOptions, idempotent } from './idempotency.js';
import { RequestLimit } from './request-limit.js';
import {
  BookingSchema,
  BookingStatusSchema,
  bearer,
  createRoute,
  errorResponse,
  json,
  jsonBody,
  queryParam,
} from './schemas.js';

export const UserSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    email: z.email(),
    phone: z.string().nullable(),
    role: z.enum(['user', 'admin']),
    createdAt: z.string(),
  })
  .openapi('User');

const SessionSchema = z
  .object({ user: UserSchema, token: z.string(), expiresAt: z.string() })
  .openapi('Session');

const Name = z.string().trim().min(1).max(100);
const Email = z.string().trim().toLowerCase().max(254).pipe(z.email()).openapi({ format: 'email' });
/** Long enough to resist guessing; bounded so hashing a huge body costs nothing extra. */
const Password = z.string().min(8, 'at least 8 characters').max(200);
const Phone = z
  .string()
  .trim()
  .regex(/^\+?[0-9][0-9 ()-]{5,18}[0-9]$/, 'a phone number like +919876543210');

const RegisterBody = z
  .object({ name: Name, email: Email, password: Password, phone: Phone.optional() })
  .openapi('Registration');
const LoginBody = z.object({ email: Email, password: z.string().min(1).max(200) }).openapi('Login');
const ProfilePatch = z
  .object({
    name: Name.optional(),
    phone: Phone.nullable().optional(),
    password: Password.optional(),
    currentPassword: z.string().min(1).max(200).optional(),
  })
  .strict()
  .openapi('ProfilePatch');

const HistoryQuery = z.object({
  status: queryParam(BookingStatusSchema),
  cursor: queryParam(z.string().min(1).max(500)),
  limit: queryParam(z.coerce.number().int().min(1).max(MAX_HISTORY_PAGE)),
});

/** A failure as the edge answers it: a wait the use case asked for goes out as retry-after too. */
function failureError(result: Failure): ApiError {
  const retry = result.details?.retryAfterSeconds;
  if (typeof retry === 'number')
    return new ApiError(result.code, result.message, result.details, { 'retry-after': String(retry) });
  return ApiError.from(result);
}

function okOrThrow<T extends { ok: true }>(result: T | Failure): T {
  if (!result.ok) throw failureError(result);
  return result;
}

function sessionOrThrow(result: Session | Failure) {
  const session = okOrThrow(result);
  return { user: session.user, token: session.token, expiresAt: new Date(session.expiresAtMs).toISOString() };
}

/**
 * Registrations per client address per window. A shared NAT (an office, a carrier) puts many people
 * behind one address, so the default (20 per 10 minutes) is generous for people and tight for a script.
 */
function registrationLimit(deps: AppDeps): MiddlewareHandler<AppEnv> {
  const limit = new RequestLimit(
    'registrations-by-address',
    deps.config.REGISTER_MAX_PER_ADDRESS,
    deps.config.REGISTER_WINDOW_SECONDS,
  );
  return async (c, next) => {
    await limit.take(clientAddressOf(c, deps.config.trustedProxies), 'registrations from this address');
    return next();
  };
}

/**
 * A registration reply holds a bearer token, which must not sit in the idempotency store (nor its
 * WAL). The reply is kept without it; a replay signs the caller in again with the request's own email
 * and password, through the same throttle as a login, and answers the registration's 201 with a fresh
 * token: what a client retrying a lost reply expects. Should the password have changed since, the
 * replay is 401 INVALID_CREDENTIALS, as a login with it would be.
 */
function registrationReplies(deps: AppDeps): IdempotencyOptions {
  return {
    toStored: (status, body) => {
      if (status !== 201) return body;
      const { token: _token, expiresAt: _expiresAt, ...kept } = JSON.parse(body) as Record<string, unknown>;
      return JSON.stringify(kept);
    },
    replay: async (c, stored) => {
      if (stored.status !== 201) return undefined;
      const { email, password } = JSON.parse(stored.requestBody) as { email: string; password: string };
      const address = clientAddressOf(c, deps.config.trustedProxies);
      const session = sessionOrThrow(await deps.users.login(email, password, address));
      return c.json(session, 201, { 'idempotent-replayed': 'true' });
    },
  };
}

export function registerUserRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const auth = requireUser(deps);
  const { users } = deps;

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/register',
      tags: ['Users'],
      summary: 'Create an account and get a token',
      description:
        'Passwords on a list of the most common ones, or equal to the email, are refused (400, details.fields.password says why). ' +
        'Limited per client address (REGISTER_MAX_PER_ADDRESS per REGISTER_WINDOW_SECONDS): past it, 429 with retry-after. ' +
        'An anonymous Idempotency-Key is scoped by the request body: only the same request replays. ' +
        'A replay answers the same account with a fresh token (the stored reply keeps none).',
      middleware: [idempotent(deps, registrationReplies(deps)), registrationLimit(deps)] as const,
      request: { ...jsonBody(RegisterBody) },
      responses: {
        201: json(SessionSchema, 'The new account and an access token'),
        400: errorResponse('Bad input (details.fields)'),
        401: errorResponse('INVALID_CREDENTIALS: a replay whose password no longer signs in'),
        409: errorResponse('EMAIL_TAKEN'),
        429: errorResponse('RATE_LIMITED, with a retry-after header'),
        503: errorResponse('OVERLOADED: too many password hashes waiting, with a retry-after header'),
      },
    }),
    async (c) => c.json(sessionOrThrow(await users.register(c.req.valid('json'))), 201),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/login',
      tags: ['Users'],
      summary: 'Exchange email and password for a token',
      description:
        'Unknown email and wrong password get the same 401. Failed logins back off per (account, client address): ' +
        'LOGIN_MAX_FAILURES free, then 1 s, 2 s, 4 s … up to LOGIN_MAX_BACKOFF_SECONDS. Past LOGIN_ACCOUNT_SLOWDOWN_AFTER ' +
        'failures from all addresses, an account is slowed (at most LOGIN_ACCOUNT_MAX_DELAY_SECONDS) for addresses it never ' +
        'signed in from; an address may fail LOGIN_MAX_FAILURES_PER_ADDRESS times per LOGIN_WINDOW_SECONDS. ' +
        'While waiting: 429 with retry-after.',
      request: { ...jsonBody(LoginBody) },
      responses: {
        200: json(SessionSchema, 'The account and an access token'),
        401: errorResponse('INVALID_CREDENTIALS'),
        429: errorResponse('RATE_LIMITED, with a retry-after header'),
        503: errorResponse('OVERLOADED: too many password hashes waiting, with a retry-after header'),
      },
    }),
    async (c) => {
      const { email, password } = c.req.valid('json');
      return c.json(
        sessionOrThrow(await users.login(email, password, clientAddressOf(c, deps.config.trustedProxies))),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/logout',
      tags: ['Users'],
      summary: 'Revoke the token this request carries',
      security: bearer,
      middleware: [auth] as const,
      responses: {
        204: { description: 'Revoked: the token is refused from now on' },
        401: errorResponse('No or bad token'),
      },
    }),
    (c) => {
      deps.tokens.revoke(c.get('user'));
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/me',
      tags: ['Users'],
      summary: 'Your profile',
      security: bearer,
      middleware: [auth] as const,
      responses: {
        200: json(z.object({ user: UserSchema }), 'Your profile'),
        401: errorResponse('No or bad token'),
      },
    }),
    (c) => c.json({ user: unwrap(users.get(c.get('user').id)).user }, 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/me',
      tags: ['Users'],
      summary: 'Change your name, phone (null clears it) or password',
      description:
        'A new `password` needs `currentPassword` (401 INVALID_CREDENTIALS when missing or wrong; wrong guesses back off ' +
        'as logins do, 429) and ends every other session: tokens issued before it stop working, except this one. ' +
        'The most common passwords and your email are refused (400, details.fields.password says why).',
      security: bearer,
      middleware: [auth] as const,
      request: { ...jsonBody(ProfilePatch) },
      responses: {
        200: json(z.object({ user: UserSchema }), 'Your profile'),
        400: errorResponse('Bad input, or a password that is too common or is your email'),
        401: errorResponse('No or bad token; INVALID_CREDENTIALS: currentPassword missing or wrong'),
        429: errorResponse('RATE_LIMITED: too many wrong currentPassword guesses, with a retry-after header'),
        503: errorResponse('OVERLOADED: too many password hashes waiting, with a retry-after header'),
      },
    }),
    async (c) => {
      const address = clientAddressOf(c, deps.config.trustedProxies);
      const updated = await users.update(c.get('user').id, c.req.valid('json'), c.get('user'), address);
      return c.json({ user: okOrThrow(updated).user }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/me/bookings',
      tags: ['Users'],
      summary: 'Your booking history, newest first',
      description: `Pages of up to \`limit\` (default 20, at most ${MAX_HISTORY_PAGE}); pass \`nextCursor\` back as \`cursor\` for the next page.`,
      security: bearer,
      middleware: [auth] as const,
      request: { query: HistoryQuery },
      responses: {
        200: json(
          z.object({ bookings: z.array(BookingSchema), nextCursor: z.string().nullable() }),
          'One page',
        ),
        400: errorResponse('Bad status or cursor'),
        401: errorResponse('No or bad token'),
      },
    }),
    async (c) => {
      const page = unwrap(users.bookingHistory(c.get('user').id, c.req.valid('query')));
      return c.json(
        {
          bookings: await Promise.all(page.rows.map((row) => deps.bookings.view(row))),
          nextCursor: page.nextCursor,
        },
        200,
      );
    },
  );
}
