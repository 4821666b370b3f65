/**
 * @module http/holds
 * Seat maps and holds: GET /api/shows/:id/seats, POST /api/shows/:id/holds, GET/DELETE /api/holds/:id,
 * POST /api/holds/:id/extend, and the seed design's POST /api/shows/:id/lock-seat.
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { requireUser } from './auth.js';
import { clientAddressOf } from './client-address.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, unwrap } from './errors.js';
import { idempotent } from './idempotency.js';
import { ADMISSION_HEADER_DESCRIPTION, requireAdmission } from './onsales.js';
import { setResponseHeader } from './request-context.js';
import { sharedRequestLimit } from './request-limit.js';
import {
  bearer,
  createRoute,
  errorResponse,
  IdParam,
  json,
  jsonBody,
  MINOR_UNITS,
  oneOf,
  SeatLabel,
} from './schemas.js';

/** Most seats one request may name; the per-user limit (config) usually bites first. */
export const MAX_SEATS_PER_REQUEST = 50;
/** IdParam's bound on an id, checked by hand on the seat-map route. */
const MAX_ID_LENGTH = 200;

/**
 * Spends one of the client address's hold creations (HOLDS_PER_ADDRESS_PER_MINUTE), or throws 429.
 * Shared by every route that creates a hold: POST /api/shows/:id/holds, lock-seat, and the
 * hold-and-book form of POST /api/bookings. Refused attempts count too: they are what a hoarder repeats.
 */
export async function admitHoldCreation(c: Context, deps: AppDeps): Promise<void> {
  const limit = sharedRequestLimit(deps, 'holds-by-address', deps.config.HOLDS_PER_ADDRESS_PER_MINUTE);
  await limit.take(clientAddressOf(c, deps.config.trustedProxies), 'holds from this address');
}

const HoldSchema = z
  .object({
    id: z.string(),
    showId: z.string(),
    seats: z.array(z.string()),
    expiresAt: z.string(),
    createdAt: z.string(),
  })
  .openapi('Hold');

const HoldBody = oneOf(
  'HoldRequest',
  {
    HoldSeats: z.object({ seats: z.array(SeatLabel).min(1).max(MAX_SEATS_PER_REQUEST) }).strict(),
    HoldBestAvailable: z
      .object({
        count: z.number().int().min(1).max(MAX_SEATS_PER_REQUEST),
        category: z.string().min(1).max(20).optional(),
        allowSplit: z.boolean().optional(),
      })
      .strict(),
  },
  'Either explicit seats (all or nothing) or a count for best-available selection.',
);

const SeatMapSchema = z
  .object({
    showId: z.string(),
    version: z.number(),
    currency: z.string().nullable(),
    seats: z.array(
      z.object({
        id: z.string(),
        row: z.string(),
        number: z.number(),
        column: z.number().openapi({
          description: "The seat's column on the screen's grid, aisles and staggered rows included",
        }),
        category: z.string(),
        price: z
          .number()
          .int()
          .nullable()
          .openapi({ description: `The seat's price in ${MINOR_UNITS}` }),
        status: z.enum(['available', 'held', 'booked', 'blocked']),
      }),
    ),
    counts: z.object({ available: z.number(), held: z.number(), booked: z.number(), blocked: z.number() }),
    layout: z
      .object({
        rows: z.array(z.string()).openapi({ description: 'Row labels from the screen backwards' }),
        columns: z.number().openapi({ description: 'Width of the grid in seat columns' }),
        centreColumn: z.number().openapi({ description: "The screen's centre line, in columns" }),
      })
      .openapi({ description: 'Geometry for drawing the map; a column with no seat is an aisle or gap' }),
  })
  .openapi('SeatMap');

export function registerHoldRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const auth = requireUser(deps);
  const once = idempotent(deps);
  const { holds, seatMaps } = deps;

  // The hottest read is documented like every route but mounted without the validator middleware: an
  // async zod parse of its one path segment cost more than serving the pre-rendered body. Its one
  // rule (IdParam's length) is checked here, with the same answer the validator gives.
  app.openAPIRegistry.registerPath(
    createRoute({
      method: 'get',
      path: '/api/shows/{id}/seats',
      tags: ['Holds'],
      summary: "A show's live seat map",
      request: { params: IdParam },
      responses: {
        200: json(SeatMapSchema, 'The seat map at its current version'),
        400: errorResponse('Bad show id'),
        404: errorResponse('Unknown show'),
      },
    }),
  );
  app.get('/api/shows/:id/seats', async (c) => {
    const id = c.req.param('id');
    if (id.length > MAX_ID_LENGTH)
      throw new ApiError('VALIDATION_FAILED', 'invalid param: id', {
        fields: { id: `at most ${MAX_ID_LENGTH} characters` },
      });
    // A show not in memory is read from the store, once (another node may just have created it).
    if (!(deps.shows.get(id) ?? (await deps.shows.lookup(id))))
      throw new ApiError('SHOW_NOT_FOUND', `no show ${id}`);
    const view = seatMaps.mirroredSeatMapJson(id) ?? (await seatMaps.seatMapJson(id));
    if (!view) throw new ApiError('SHOW_NOT_FOUND', `no show ${id}`);
    // One header in the call keeps Hono's response headers a plain object (two make it build Headers).
    setResponseHeader(c, 'etag', `"v${view.version}"`);
    return c.body(view.bytes, 200, { 'content-type': 'application/json' });
  });

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/shows/{id}/holds',
      tags: ['Holds'],
      summary: 'Hold seats (explicit, or best available by count)',
      security: bearer,
      middleware: [auth, once] as const,
      request: { params: IdParam, ...jsonBody(HoldBody) },
      responses: {
        201: json(z.object({ hold: HoldSchema }), 'Held until expiresAt'),
        400: errorResponse('Bad input or unknown seat label'),
        404: errorResponse('Unknown show'),
        403: errorResponse(`ADMISSION_REQUIRED: ${ADMISSION_HEADER_DESCRIPTION}`),
        409: errorResponse('SEATS_UNAVAILABLE (details.seats) or SINGLE_SEAT_STRANDED'),
        422: errorResponse(
          'SEAT_LIMIT_EXCEEDED (MAX_SEATS_PER_USER on this show, or MAX_HELD_SEATS_PER_USER across all shows) or the show is not on sale',
        ),
        429: errorResponse('RATE_LIMITED: HOLDS_PER_ADDRESS_PER_MINUTE, with retry-after'),
      },
    }),
    async (c) => {
      await admitHoldCreation(c, deps);
      const { id } = c.req.valid('param');
      requireAdmission(c, deps, id);
      const result = await holds.create(c.get('user').id, id, c.req.valid('json'));
      deps.metrics.holds.inc({ outcome: result.ok ? 'held' : result.code });
      return c.json({ hold: unwrap(result).hold }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/shows/{id}/lock-seat',
      tags: ['Holds'],
      summary: "Hold one seat (the seed design's route)",
      security: bearer,
      middleware: [auth, once] as const,
      request: { params: IdParam, ...jsonBody(z.object({ seatNumber: SeatLabel })) },
      responses: {
        200: json(z.object({ message: z.string(), hold: HoldSchema }), 'Seat held'),
        403: errorResponse(`ADMISSION_REQUIRED: ${ADMISSION_HEADER_DESCRIPTION}`),
        404: errorResponse('SHOW_NOT_FOUND'),
        409: errorResponse('The seat is taken (SEATS_UNAVAILABLE or SINGLE_SEAT_STRANDED)'),
        422: errorResponse('SEAT_LIMIT_EXCEEDED, or the show is not on sale'),
        429: errorResponse('RATE_LIMITED: HOLDS_PER_ADDRESS_PER_MINUTE, with retry-after'),
      },
    }),
    async (c) => {
      await admitHoldCreation(c, deps);
      const { id } = c.req.valid('param');
      requireAdmission(c, deps, id);
      const { seatNumber } = c.req.valid('json');
      const result = await holds.create(c.get('user').id, id, { seats: [seatNumber] });
      deps.metrics.holds.inc({ outcome: result.ok ? 'held' : result.code });
      const { hold } = unwrap(result);
      return c.json({ message: `seat ${seatNumber} is held until ${hold.expiresAt}`, hold }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/holds/{id}',
      tags: ['Holds'],
      summary: 'One of your holds',
      security: bearer,
      middleware: [auth] as const,
      request: { params: IdParam },
      responses: {
        200: json(z.object({ hold: HoldSchema }), 'The hold'),
        403: errorResponse('Not yours'),
        404: errorResponse('Unknown, released or confirmed'),
        410: errorResponse('Expired'),
      },
    }),
    async (c) => {
      const result = await holds.get(c.get('user').id, c.req.valid('param').id);
      return c.json({ hold: unwrap(result).hold }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/holds/{id}/extend',
      tags: ['Holds'],
      summary: 'Extend a hold, up to the configured maximum lifetime',
      security: bearer,
      middleware: [auth] as const,
      request: { params: IdParam },
      responses: {
        200: json(z.object({ hold: HoldSchema }), 'The hold with its new expiresAt'),
        403: errorResponse('Not yours'),
        404: errorResponse('Unknown hold'),
        410: errorResponse('Expired'),
      },
    }),
    async (c) => {
      const result = await holds.extend(c.get('user').id, c.req.valid('param').id);
      return c.json({ hold: unwrap(result).hold }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/holds/{id}',
      tags: ['Holds'],
      summary: 'Release a hold: its seats are available again at once',
      security: bearer,
      middleware: [auth] as const,
      request: { params: IdParam },
      responses: {
        204: { description: 'Released' },
        403: errorResponse('Not yours'),
        404: errorResponse('Unknown hold'),
        410: errorResponse('Expired'),
      },
    }),
    async (c) => {
      unwrap(await holds.release(c.get('user').id, c.req.valid('param').id));
      return c.body(null, 204);
    },
  );
}
