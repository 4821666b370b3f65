/**
 * @module http/admin
 * Catalog administration (role admin): movies, theaters, screens with seat layouts, shows, and taking
 * seats off sale. Creates accept Idempotency-Key. Offers have their own module (http/offers).
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { MAX_ROWS, MAX_SEATS_PER_SHOW, type SeatLayout } from '../actors/seat-layout.js';
import { canonicalTimeZone, DEFAULT_TIME_ZONE } from '../domain/catalog.js';
import { requireAdmin } from './auth.js';
import { MovieSchema, ScreenSummarySchema, ShowSchema, TheaterSchema } from './catalog.js';
import type { AppDeps, AppEnv } from './context.js';
import { unwrap } from './errors.js';
import { idempotent } from './idempotency.js';
import {
  bearer,
  createRoute,
  errorResponse,
  IdParam,
  json,
  jsonBody,
  MINOR_UNITS,
  SeatLabel,
} from './schemas.js';

const MovieInput = z
  .object({
    title: z.string().trim().min(1).max(200),
    description: z.string().max(2000).optional(),
    genres: z.array(z.string().trim().min(1).max(40)).min(1).max(10),
    language: z.string().trim().min(1).max(40),
    durationMin: z.number().int().min(1).max(600),
    certificate: z.string().trim().min(1).max(10).openapi({ example: 'UA' }),
    releaseDate: z.iso.date(),
    posterUrl: z.url().max(2000).nullable().optional(),
  })
  .strict()
  .openapi('MovieInput');

const TheaterInput = z
  .object({
    name: z.string().trim().min(1).max(120),
    city: z.string().trim().min(1).max(80),
    address: z.string().trim().max(300).optional(),
    timeZone: z
      .string()
      .max(64)
      .refine((zone) => canonicalTimeZone(zone) !== undefined, 'not an IANA time zone such as Asia/Kolkata')
      .optional()
      .openapi({
        description: `IANA time zone of the theater; show times in emails and texts are given in it. Default ${DEFAULT_TIME_ZONE}.`,
        example: 'Asia/Kolkata',
      }),
  })
  .strict()
  .openapi('TheaterInput');

/** Shape only: labels, counts and limits are checked by compileLayout and answered INVALID_LAYOUT. */
const RowInput = z
  .object({
    label: z.string().max(10),
    category: z.string().max(40),
    seats: z.number().int(),
    firstNumber: z.number().int().optional(),
    aislesAfter: z.array(z.number().int()).max(200).optional(),
    offset: z.number().int().optional(),
  })
  .strict();

const LayoutInput = z
  .object({ rows: z.array(RowInput).max(1000) })
  .strict()
  .openapi('SeatLayout', {
    description: `Rows from the screen backwards; at most ${MAX_ROWS} rows and ${MAX_SEATS_PER_SHOW} seats; an aisle follows each number in aislesAfter.`,
    example: { rows: [{ label: 'A', category: 'GOLD', seats: 10, aislesAfter: [5] }] },
  });

const ScreenInput = z.object({ name: z.string().trim().min(1).max(60), layout: LayoutInput }).strict();

const ScreenSchema = ScreenSummarySchema.extend({ theaterId: z.string(), layout: LayoutInput }).openapi(
  'Screen',
);

const Prices = z
  .record(
    z.string().regex(/^[A-Z][A-Z0-9_]{0,19}$/, 'a category code'),
    z.number().int().min(1).max(100_000_000),
  )
  .openapi({
    description: `The price of a seat per category, in ${MINOR_UNITS}; exactly the categories of the screen layout`,
  });

const ShowInput = z
  .object({
    movieId: z.string().min(1).max(200),
    screenId: z.string().min(1).max(200),
    startTime: z.iso.datetime({ offset: true }),
    prices: Prices,
    format: z.string().trim().min(1).max(20).optional(),
    language: z.string().trim().min(1).max(40).optional(),
    forbidSingleSeatGaps: z.boolean().optional(),
  })
  .strict()
  .openapi('ShowInput');

const ShowPatch = z
  .object({ prices: Prices.optional(), startTime: z.iso.datetime({ offset: true }).optional() })
  .strict()
  .openapi('ShowPatch');

const SeatsBody = z.object({ seats: z.array(SeatLabel).min(1).max(MAX_SEATS_PER_SHOW) }).strict();
const SeatsReply = z.object({ showId: z.string(), seats: z.array(z.string()) });

const adminErrors = { 401: errorResponse('No or bad token'), 403: errorResponse('Not an admin') };

export function registerAdminRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const admin = requireAdmin(deps);
  const once = idempotent(deps);
  const { catalog } = deps;

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'post',
      path: '/api/admin/movies',
      summary: 'Add a movie',
      middleware: [admin, once] as const,
      request: { ...jsonBody(MovieInput) },
      responses: {
        201: json(z.object({ movie: MovieSchema }), 'Created'),
        400: errorResponse('Bad input'),
        ...adminErrors,
      },
    }),
    async (c) => c.json({ movie: (await catalog.createMovie(c.req.valid('json'))).movie }, 201),
  );

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'patch',
      path: '/api/admin/movies/{id}',
      summary: 'Change a movie',
      middleware: [admin] as const,
      request: { params: IdParam, ...jsonBody(MovieInput.partial().strict()) },
      responses: {
        200: json(z.object({ movie: MovieSchema }), 'Changed'),
        404: errorResponse('MOVIE_NOT_FOUND'),
        ...adminErrors,
      },
    }),
    async (c) =>
      c.json(
        { movie: unwrap(await catalog.updateMovie(c.req.valid('param').id, c.req.valid('json'))).movie },
        200,
      ),
  );

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'delete',
      path: '/api/admin/movies/{id}',
      summary: 'Archive a movie (it leaves the catalog; past bookings keep it)',
      middleware: [admin] as const,
      request: { params: IdParam },
      responses: {
        204: { description: 'Archived' },
        404: errorResponse('MOVIE_NOT_FOUND'),
        409: errorResponse('CONFLICT: it has upcoming shows'),
        ...adminErrors,
      },
    }),
    async (c) => {
      unwrap(await catalog.archiveMovie(c.req.valid('param').id));
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'post',
      path: '/api/admin/theaters',
      summary: 'Add a theater',
      middleware: [admin, once] as const,
      request: { ...jsonBody(TheaterInput) },
      responses: {
        201: json(z.object({ theater: TheaterSchema }), 'Created'),
        400: errorResponse('Bad input, such as a timeZone that is not an IANA zone'),
        ...adminErrors,
      },
    }),
    async (c) => c.json({ theater: unwrap(await catalog.createTheater(c.req.valid('json'))).theater }, 201),
  );

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'patch',
      path: '/api/admin/theaters/{id}',
      summary: 'Change a theater (a new city moves its shows too)',
      middleware: [admin] as const,
      request: { params: IdParam, ...jsonBody(TheaterInput.partial().strict()) },
      responses: {
        200: json(z.object({ theater: TheaterSchema }), 'Changed'),
        400: errorResponse('Bad input, such as a timeZone that is not an IANA zone'),
        404: errorResponse('THEATER_NOT_FOUND'),
        ...adminErrors,
      },
    }),
    async (c) =>
      c.json(
        {
          theater: unwrap(await catalog.updateTheater(c.req.valid('param').id, c.req.valid('json'))).theater,
        },
        200,
      ),
  );

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'post',
      path: '/api/admin/theaters/{id}/screens',
      summary: 'Add a screen with its seat layout',
      middleware: [admin, once] as const,
      request: { params: IdParam, ...jsonBody(ScreenInput) },
      responses: {
        201: json(z.object({ screen: ScreenSchema }), 'Created'),
        400: errorResponse('INVALID_LAYOUT or bad input'),
        404: errorResponse('THEATER_NOT_FOUND'),
        409: errorResponse('CONFLICT: the theater has a screen with this name'),
        ...adminErrors,
      },
    }),
    async (c) => {
      const { name, layout } = c.req.valid('json');
      const created = unwrap(await catalog.createScreen(c.req.valid('param').id, name, layout as SeatLayout));
      return c.json({ screen: created.screen }, 201);
    },
  );

  registerShowAdminRoutes(app, deps, once);
}

function registerShowAdminRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: AppDeps,
  once: ReturnType<typeof idempotent>,
): void {
  const admin = requireAdmin(deps);
  const { catalog } = deps;

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'post',
      path: '/api/admin/shows',
      summary: 'Schedule a show on a screen (its seats go on sale at once)',
      middleware: [admin, once] as const,
      request: { ...jsonBody(ShowInput) },
      responses: {
        201: json(z.object({ show: ShowSchema }), 'Scheduled'),
        400: errorResponse('Bad input, or prices not matching the layout'),
        404: errorResponse('MOVIE_NOT_FOUND or SCREEN_NOT_FOUND'),
        409: errorResponse('CONFLICT: the screen is busy then'),
        422: errorResponse('RULE_VIOLATION: the start is in the past'),
        503: errorResponse('NOT_READY: saved, but its seats could not be set up yet'),
        ...adminErrors,
      },
    }),
    async (c) => c.json({ show: unwrap(await catalog.createShow(c.req.valid('json'))).show }, 201),
  );

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'patch',
      path: '/api/admin/shows/{id}',
      summary: "Change a show's prices or start time",
      middleware: [admin] as const,
      request: { params: IdParam, ...jsonBody(ShowPatch) },
      responses: {
        200: json(z.object({ show: ShowSchema }), 'Changed'),
        404: errorResponse('SHOW_NOT_FOUND'),
        409: errorResponse('CONFLICT (screen busy) or INVALID_STATE (cancelled)'),
        ...adminErrors,
      },
    }),
    async (c) =>
      c.json(
        { show: unwrap(await catalog.updateShow(c.req.valid('param').id, c.req.valid('json'))).show },
        200,
      ),
  );

  app.openapi(
    createRoute({
      tags: ['Admin'],
      security: bearer,
      method: 'delete',
      path: '/api/admin/shows/{id}',
      summary: 'Cancel a show: it goes off sale for good, and its bookings are cancelled and refunded',
      description:
        'Answers once the show is off sale. Its confirmed bookings are then cancelled and refunded in full ' +
        '(whatever the cancellation cut-off) and unpaid ones fail, in the background; customers are told ' +
        'by email and SMS. A sweep finishes the job if the process stops half way.',
      middleware: [admin] as const,
      request: { params: IdParam },
      responses: {
        204: { description: 'Cancelled' },
        404: errorResponse('SHOW_NOT_FOUND'),
        409: errorResponse('INVALID_STATE: the show has already been played'),
        ...adminErrors,
      },
    }),
    async (c) => {
      const id = c.req.valid('param').id;
      unwrap(await catalog.cancelShow(id));
      // Refunds take a provider call each: the answer does not wait for hundreds of them.
      deps.bookings
        .cancelForShow(id)
        .catch((err: unknown) =>
          deps.logger.error({ err, showId: id }, 'settling a cancelled show failed; the sweep retries'),
        );
      return c.body(null, 204);
    },
  );

  for (const isBlock of [true, false]) {
    app.openapi(
      createRoute({
        tags: ['Admin'],
        security: bearer,
        method: 'post',
        path: `/api/admin/shows/{id}/${isBlock ? 'block' : 'unblock'}`,
        summary: isBlock ? 'Take seats off sale' : 'Put blocked seats back on sale',
        middleware: [admin] as const,
        request: { params: IdParam, ...jsonBody(SeatsBody) },
        responses: {
          200: json(SeatsReply, isBlock ? 'Blocked' : 'Unblocked'),
          400: errorResponse('UNKNOWN_SEAT'),
          404: errorResponse('SHOW_NOT_FOUND'),
          409: errorResponse('SEATS_UNAVAILABLE: held or booked'),
          ...adminErrors,
        },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        const result = unwrap(await catalog.blockSeats(id, c.req.valid('json').seats, isBlock));
        return c.json({ showId: id, seats: result.seats }, 200);
      },
    );
  }
}
