/**
 * @module http/users
 * Accounts: POST /api/register, /api/login, /api/logout; GET and PATCH /api/me; GET /api/me/bookings.
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { MAX_HISTORY_PAGE, type Session } from '../domain/users.js';
import { requireUser } from './auth.js';
import { clientAddressOf } from './client-address.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, type Failure, unwrap } from './errors.js';
import { idempotent } from './idempotency.js';
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
  .object({ name: Name.optional(), phone: Phone.nullable().optional(), password: Password.optional() })
  .strict()
  .openapi('ProfilePatch');

const HistoryQuery = z.object({
  status: queryParam(BookingStatusSchema),
  cursor: queryParam(z.string().min(1).max(500)),
  limit: queryParam(z.coerce.number().int().min(1).max(MAX_HISTORY_PAGE)),
});

function sessionOrThrow(result: Session | Failure) {
  if (!result.ok) {
    const retry = result.details?.retryAfterSeconds;
    if (typeof retry === 'number')
      throw new ApiError(result.code, result.message, result.details, { 'retry-after': String(retry) });
    throw ApiError.from(result);
  }
  return { user: result.user, token: result.token, expiresAt: new Date(result.expiresAtMs).toISOString() };
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
      middleware: [idempotent(deps)] as const,
      request: { ...jsonBody(RegisterBody) },
      responses: {
        201: json(SessionSchema, 'The new account and an access token'),
        400: errorResponse('Bad input (details.fields)'),
        409: errorResponse('EMAIL_TAKEN'),
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
        'Unknown email and wrong password get the same 401. Failed logins are limited per account and per address ' +
        '(LOGIN_MAX_FAILURES within LOGIN_WINDOW_SECONDS; an address gets twenty times the account limit): past it, 429 with retry-after.',
      request: { ...jsonBody(LoginBody) },
      responses: {
        200: json(SessionSchema, 'The account and an access token'),
        401: errorResponse('INVALID_CREDENTIALS'),
        429: errorResponse('RATE_LIMITED, with a retry-after header'),
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
        'A new password ends every other session: tokens issued before it stop working, except this one.',
      security: bearer,
      middleware: [auth] as const,
      request: { ...jsonBody(ProfilePatch) },
      responses: {
        200: json(z.object({ user: UserSchema }), 'Your profile'),
        400: errorResponse('Bad input'),
        401: errorResponse('No or bad token'),
      },
    }),
    async (c) =>
      c.json(
        { user: unwrap(await users.update(c.get('user').id, c.req.valid('json'), c.get('user'))).user },
        200,
      ),
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
    (c) => {
      const page = unwrap(users.bookingHistory(c.get('user').id, c.req.valid('query')));
      return c.json(
        { bookings: page.rows.map((row) => deps.bookings.view(row)), nextCursor: page.nextCursor },
        200,
      );
    },
  );
}
