/**
 * @module http/onsales
 * The on-sale waiting room at the edge: admin `POST/GET/PATCH/DELETE /api/admin/onsales[/:id]`, the
 * buyer's `POST/GET /api/onsales/:id/queue`, and `requireAdmission`, which every route that creates a
 * hold calls with the show it holds on (the `Admission-Token` header).
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { MAX_SHOWS_PER_ONSALE } from '../domain/onsales.js';
import { MAX_ADMISSION_TOKEN_CHARS } from '../tickets/ticket-signer.js';
import { requireAdmin, requireUser } from './auth.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, unwrap } from './errors.js';
import { idempotent } from './idempotency.js';
import { requestHeader } from './request-context.js';
import { bearer, createRoute, errorResponse, IdParam, json, jsonBody, queryParam } from './schemas.js';

/** The header a hold carries its admission in. */
export const ADMISSION_HEADER = 'admission-token';
/** The fastest rate an admin may name: far above what any hold path absorbs. */
export const MAX_ADMIT_PER_MINUTE = 1_000_000;

/**
 * Throws 403 ADMISSION_REQUIRED unless the caller may hold on `showId` now: no open on-sale covers it,
 * or the request carries a live admission for this user, on-sale and show. Answered from memory.
 */
export function requireAdmission(c: Context<AppEnv>, deps: AppDeps, showId: string): void {
  const token = requestHeader(c, ADMISSION_HEADER)?.trim();
  const refused = deps.onsales.checkAdmission(c.get('user').id, showId, token || undefined);
  if (refused) throw ApiError.from(refused);
}

const Iso = z.iso.datetime({ offset: true });

const OnsaleSchema = z
  .object({
    id: z.string(),
    showIds: z.array(z.string()),
    opensAt: z.string(),
    admitPerMinute: z.number().int().nullable().openapi({
      description:
        'Buyers admitted per minute; null: follows the seats left and the hold time (max(1, seatsAvailable / 2) × 60 / HOLD_TTL_SECONDS)',
    }),
    state: z.enum(['scheduled', 'open', 'closed']),
    shuffleSeed: z.string().nullable().openapi({
      description:
        'Set at opening: the hex seed of the shuffle of everyone who joined before it (SHA-256 counter-mode PRNG, Fisher–Yates over arrival order), so an audit can replay it',
    }),
    openedAt: z.string().nullable(),
    closedAt: z.string().nullable(),
    waiting: z.number().int(),
    admitted: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Onsale');

const OnsaleInput = z
  .object({
    showIds: z.array(z.string().min(1).max(200)).min(1).max(MAX_SHOWS_PER_ONSALE),
    opensAt: Iso,
    admitPerMinute: z.number().int().min(1).max(MAX_ADMIT_PER_MINUTE).nullable().optional(),
  })
  .strict()
  .openapi('OnsaleInput');

const OnsalePatch = z
  .object({
    opensAt: Iso.optional(),
    admitPerMinute: z.number().int().min(1).max(MAX_ADMIT_PER_MINUTE).nullable().optional(),
  })
  .strict()
  .openapi('OnsalePatch');

export const QueueAnswerSchema = z
  .object({
    position: z.number().int().nullable().openapi({
      description: '1-based place in the queue; null until the on-sale opens (the shuffle decides it)',
    }),
    ahead: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Buyers still waiting before you; null before opening' }),
    estimatedWaitSeconds: z.number().int(),
    state: z.enum(['waiting', 'admitted', 'closed']).openapi({
      description:
        'closed: sold out, or your admission was used by a booking or ran out (the place does not return)',
    }),
    admission: z
      .object({
        token: z.string().openapi({ description: 'Send as the Admission-Token header on holds' }),
        expiresAt: z.string(),
      })
      .optional(),
  })
  .openapi('QueueAnswer');

export function registerOnsaleRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const admin = requireAdmin(deps);
  const auth = requireUser(deps);
  const once = idempotent(deps);
  const { onsales } = deps;
  const adminErrors = { 401: errorResponse('No or bad token'), 403: errorResponse('Not an admin') };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/admin/onsales',
      tags: ['On-sales'],
      summary: 'Put shows on a queued on-sale',
      security: bearer,
      middleware: [admin, once] as const,
      request: { ...jsonBody(OnsaleInput) },
      responses: {
        201: json(z.object({ onsale: OnsaleSchema }), 'Created, state scheduled'),
        404: errorResponse('SHOW_NOT_FOUND: details.showIds names the unknown ones'),
        409: errorResponse('CONFLICT: a show is already on another on-sale that is not closed'),
        422: errorResponse('RULE_VIOLATION: too many on-sales kept'),
        ...adminErrors,
      },
    }),
    async (c) => c.json({ onsale: unwrap(await onsales.create(c.req.valid('json'))).onsale }, 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/admin/onsales/{id}',
      tags: ['On-sales'],
      summary: 'An on-sale, with its queue counts and (once open) its shuffle seed',
      security: bearer,
      middleware: [admin] as const,
      request: { params: IdParam },
      responses: {
        200: json(z.object({ onsale: OnsaleSchema }), 'The on-sale'),
        404: errorResponse('ONSALE_NOT_FOUND'),
        ...adminErrors,
      },
    }),
    async (c) => c.json({ onsale: unwrap(onsales.get(c.req.valid('param').id)).onsale }, 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/admin/onsales/{id}',
      tags: ['On-sales'],
      summary: 'Move the opening (before it) or change the rate',
      security: bearer,
      middleware: [admin] as const,
      request: { params: IdParam, ...jsonBody(OnsalePatch) },
      responses: {
        200: json(z.object({ onsale: OnsaleSchema }), 'Changed'),
        404: errorResponse('ONSALE_NOT_FOUND'),
        409: errorResponse('INVALID_STATE: opened (opensAt) or closed'),
        ...adminErrors,
      },
    }),
    async (c) =>
      c.json(
        { onsale: unwrap(await onsales.update(c.req.valid('param').id, c.req.valid('json'))).onsale },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/admin/onsales/{id}',
      tags: ['On-sales'],
      summary: 'Take an on-sale down: its shows need no admission any more, its queue is dropped',
      security: bearer,
      middleware: [admin] as const,
      request: { params: IdParam },
      responses: {
        204: { description: 'Deleted' },
        404: errorResponse('ONSALE_NOT_FOUND'),
        ...adminErrors,
      },
    }),
    async (c) => {
      unwrap(await onsales.remove(c.req.valid('param').id));
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/onsales/{id}/queue',
      tags: ['On-sales'],
      summary: 'Join the queue (once per account; joining again answers the same place)',
      security: bearer,
      middleware: [auth] as const,
      request: { params: IdParam },
      responses: {
        200: json(QueueAnswerSchema, 'Already in the queue: your place'),
        201: json(QueueAnswerSchema, 'Joined: your place'),
        404: errorResponse('ONSALE_NOT_FOUND'),
        503: errorResponse('OVERLOADED: the queue is full; or NOT_READY'),
      },
    }),
    async (c) => {
      const joined = unwrap(await onsales.join(c.get('user').id, c.req.valid('param').id));
      return joined.isNew ? c.json(joined.view, 201) : c.json(joined.view, 200);
    },
  );

  app.openAPIRegistry.registerPath(
    createRoute({
      method: 'get',
      path: '/ws/onsales/{id}',
      tags: ['On-sales'],
      summary: 'Your place in the queue over a WebSocket, pushed as it changes',
      description:
        'Send the WebSocket upgrade headers, and sign in with `Authorization: Bearer <token>` or `?access_token=<token>` (browsers cannot set headers on a WebSocket). The server sends the same object `GET /api/onsales/{id}/queue` answers (a `QueueAnswer`) at once, then again whenever it changes: at opening (your position), as buyers ahead of you are admitted, when you are admitted (with `admission`), and `state: "closed"` when the shows sell out or the on-sale is taken down. A client that reads too slowly is closed with 1013; 1001 means the server is shutting down. Messages from the client are ignored.',
      security: bearer,
      request: {
        params: IdParam,
        query: z.object({ access_token: queryParam(z.string().max(4096)) }),
      },
      responses: {
        101: { description: 'Switching Protocols: the feed is open' },
        401: errorResponse('UNAUTHENTICATED: no token, or a bad, expired or revoked one'),
        404: errorResponse('ONSALE_NOT_FOUND, or NOT_FOUND: you have not joined this queue'),
        429: errorResponse(
          'RATE_LIMITED: WS_MAX_FEEDS_PER_ADDRESS feeds from this address, with retry-after',
        ),
        503: errorResponse('NOT_READY (shutting down) or OVERLOADED (too many feeds)'),
      },
      'x-websocket-messages': { server: { oneOf: [{ $ref: '#/components/schemas/QueueAnswer' }] } },
    }),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/onsales/{id}/queue',
      tags: ['On-sales'],
      summary: 'Your place in the queue (answered from memory: cheap to poll)',
      security: bearer,
      middleware: [auth] as const,
      request: { params: IdParam },
      responses: {
        200: json(QueueAnswerSchema, 'Your place'),
        404: errorResponse('ONSALE_NOT_FOUND, or NOT_FOUND: you have not joined'),
      },
    }),
    async (c) => c.json(unwrap(onsales.poll(c.get('user').id, c.req.valid('param').id)).view, 200),
  );
}

/** Documented bound on the header, for the holds routes' OpenAPI entries. */
export const ADMISSION_HEADER_DESCRIPTION = `While the show is on an open on-sale: the admission token from the queue (at most ${MAX_ADMISSION_TOKEN_CHARS} characters)`;
