/**
 * @module http/catalog
 * The public catalog: GET /api/cities, /api/movies (filters), /api/movies/:id, /api/movies/:id/shows,
 * /api/theaters, /api/shows/:id, and POST /api/movies/:id/ratings. The seat map route lives with holds.
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { MAX_LIVE_COUNTED_SHOWS } from '../domain/catalog.js';
import { requireUser } from './auth.js';
import type { AppDeps, AppEnv } from './context.js';
import { unwrap } from './errors.js';
import {
  bearer,
  createRoute,
  errorResponse,
  IdParam,
  json,
  jsonBody,
  MINOR_UNITS,
  queryParam,
} from './schemas.js';

export const MovieSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    description: z.string(),
    genres: z.array(z.string()),
    language: z.string(),
    durationMin: z.number(),
    certificate: z.string(),
    rating: z.number().openapi({ description: 'Average score, one decimal; 0 before the first vote' }),
    votes: z.number(),
    releaseDate: z.string(),
    posterUrl: z.string().nullable(),
  })
  .openapi('Movie');

export const ScreenSummarySchema = z
  .object({ id: z.string(), name: z.string(), seatCount: z.number(), categories: z.array(z.string()) })
  .openapi('ScreenSummary');

const TimeZoneSchema = z.string().openapi({
  description: 'IANA time zone of the theater; texts give show times in it',
  example: 'Asia/Kolkata',
});

export const TheaterSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    city: z.string(),
    address: z.string(),
    timeZone: TimeZoneSchema,
    screens: z.array(ScreenSummarySchema),
  })
  .openapi('Theater');

export const ShowSchema = z
  .object({
    id: z.string(),
    movieId: z.string(),
    movie: MovieSchema,
    theater: z.object({
      id: z.string(),
      name: z.string(),
      city: z.string(),
      address: z.string(),
      timeZone: TimeZoneSchema,
    }),
    screen: ScreenSummarySchema,
    startTime: z.string(),
    endTime: z.string(),
    format: z.string(),
    language: z.string(),
    prices: z
      .record(z.string(), z.number().int())
      .openapi({ description: `The price of a seat per category, in ${MINOR_UNITS}` }),
    priceFrom: z
      .number()
      .int()
      .openapi({ description: `The cheapest seat, in ${MINOR_UNITS}` }),
    currency: z.string(),
    status: z.enum(['scheduled', 'cancelled']),
    forbidSingleSeatGaps: z.boolean(),
  })
  .openapi('Show');

const ShowListingSchema = z
  .object({
    id: z.string(),
    movieId: z.string(),
    theater: z.object({ id: z.string(), name: z.string(), city: z.string(), timeZone: TimeZoneSchema }),
    screen: z.object({ id: z.string(), name: z.string() }),
    startTime: z.string(),
    format: z.string(),
    language: z.string(),
    seatsAvailable: z.number(),
    priceFrom: z
      .number()
      .int()
      .openapi({ description: `The cheapest seat, in ${MINOR_UNITS}` }),
    currency: z.string(),
  })
  .openapi('ShowListing');

const City = z.string().trim().min(1).max(80);
const Day = z.iso.date().openapi({ description: 'A UTC day, YYYY-MM-DD', example: '2026-01-31' });

const MoviesQuery = z.object({
  city: queryParam(City).openapi({ description: 'Only movies with an upcoming show in this city' }),
  language: queryParam(z.string().trim().min(1).max(40)),
  genre: queryParam(z.string().trim().min(1).max(40)),
  minRating: queryParam(z.coerce.number().min(0).max(10)),
  date: queryParam(Day).openapi({ description: 'Only movies with an upcoming show on this UTC day' }),
  q: queryParam(z.string().trim().min(1).max(100)).openapi({ description: 'Text in the title' }),
});

const ShowsQuery = z.object({ city: queryParam(City), date: queryParam(Day) });

export function registerCatalogRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const auth = requireUser(deps);
  const { catalog } = deps;

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/cities',
      tags: ['Catalog'],
      summary: 'Cities with theaters, and how many movies are showing in each',
      responses: {
        200: json(
          z.object({
            cities: z.array(z.object({ name: z.string(), theaters: z.number(), movies: z.number() })),
          }),
          'Cities',
        ),
      },
    }),
    async (c) => c.json({ cities: await catalog.cities() }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/movies',
      tags: ['Catalog'],
      summary: 'Movies, filtered; all filters combine',
      description:
        'Ordered by rating, then votes, then title. Show-based filters (city, date) count only upcoming shows.',
      request: { query: MoviesQuery },
      responses: {
        200: json(z.object({ movies: z.array(MovieSchema) }), 'Movies'),
        400: errorResponse('Bad filter'),
      },
    }),
    async (c) => c.json({ movies: await catalog.movies(c.req.valid('query')) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/movies/{id}',
      tags: ['Catalog'],
      summary: 'One movie',
      request: { params: IdParam },
      responses: {
        200: json(z.object({ movie: MovieSchema }), 'The movie'),
        404: errorResponse('MOVIE_NOT_FOUND'),
      },
    }),
    async (c) => c.json({ movie: unwrap(await catalog.movie(c.req.valid('param').id)).movie }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/movies/{id}/shows',
      tags: ['Catalog'],
      summary: "A movie's upcoming shows, by start time",
      description: `seatsAvailable is live when the list has at most ${MAX_LIVE_COUNTED_SHOWS} shows; longer lists give the screen's capacity (narrow by city or date for live counts).`,
      request: { params: IdParam, query: ShowsQuery },
      responses: {
        200: json(z.object({ shows: z.array(ShowListingSchema) }), 'Shows'),
        404: errorResponse('MOVIE_NOT_FOUND'),
      },
    }),
    async (c) => {
      const result = await catalog.movieShows(c.req.valid('param').id, c.req.valid('query'));
      return c.json({ shows: unwrap(result).shows }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/theaters',
      tags: ['Catalog'],
      summary: 'Theaters with their screens',
      request: { query: z.object({ city: queryParam(City) }) },
      responses: { 200: json(z.object({ theaters: z.array(TheaterSchema) }), 'Theaters') },
    }),
    async (c) => c.json({ theaters: await catalog.theaters(c.req.valid('query').city) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/shows/{id}',
      tags: ['Catalog'],
      summary: 'One show with its movie, theater, screen and prices',
      request: { params: IdParam },
      responses: {
        200: json(z.object({ show: ShowSchema }), 'The show'),
        404: errorResponse('SHOW_NOT_FOUND'),
      },
    }),
    async (c) => c.json({ show: unwrap(await catalog.show(c.req.valid('param').id)).show }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/movies/{id}/ratings',
      tags: ['Catalog'],
      summary: 'Rate a movie you have a confirmed booking for (again to change your score)',
      security: bearer,
      middleware: [auth] as const,
      request: {
        params: IdParam,
        ...jsonBody(z.object({ score: z.number().int().min(1).max(10) }).openapi('Rating')),
      },
      responses: {
        200: json(
          z.object({ movie: MovieSchema, rating: z.object({ score: z.number() }) }),
          'The movie, rating updated',
        ),
        401: errorResponse('No or bad token'),
        404: errorResponse('MOVIE_NOT_FOUND'),
        422: errorResponse('NOT_ELIGIBLE: no confirmed booking of this movie'),
      },
    }),
    async (c) => {
      const rated = unwrap(
        await catalog.rate(c.get('user').id, c.req.valid('param').id, c.req.valid('json').score),
      );
      return c.json({ movie: rated.movie, rating: { score: rated.score } }, 200);
    },
  );
}
