/**
 * @module openapi-document
 * What the OpenAPI document needs beyond the routes' own definitions: the bearer security scheme, the
 * routes mounted without zod (operations, the webhook, the seat feed's WebSocket), and the finishing
 * step that turns zod-to-openapi's output into what the service really accepts.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { z } from '@hono/zod-openapi';
import type { AppEnv } from './context.js';
import { createRoute, EMPTY_MEANS_ABSENT, errorResponse, IdParam, queryParam } from './schemas.js';

export const OPENAPI_INFO = {
  openapi: '3.1.0',
  info: {
    title: 'BoxOffice API',
    version: '1.0.0',
    description:
      'Movie-ticket booking: catalog, live seat maps, holds, bookings, payments and e-tickets. Every amount of money is an integer in minor units of its currency (paise for INR: 25000 is ₹250.00). Errors are always {"error": {"code", "message", "details"}}.',
  },
};

const FeedSeat = z.object({
  id: z.string().openapi({ example: 'A7' }),
  status: z.enum(['available', 'held', 'booked', 'blocked']),
});

const FEED_MESSAGES = {
  SeatFeedSnapshot: z
    .object({
      type: z.literal('snapshot'),
      showId: z.string(),
      version: z.number().int(),
      seats: z.array(FeedSeat),
    })
    .openapi({ description: 'Sent first, and again when the missed deltas are no longer kept' }),
  SeatFeedDelta: z
    .object({
      type: z.literal('delta'),
      showId: z.string(),
      version: z.number().int(),
      changes: z.array(FeedSeat),
    })
    .openapi({ description: 'One applied change set; versions rise by exactly one' }),
  SeatFeedError: z
    .object({
      type: z.literal('error'),
      code: z.enum(['INVALID_JSON', 'UNKNOWN_MESSAGE']),
      message: z.string(),
    })
    .openapi({ description: 'The answer to a client message the server could not use' }),
  SeatFeedResume: z
    .object({ type: z.literal('resume'), version: z.number().int().min(0) })
    .openapi({ description: 'From the client: the last version it applied' }),
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Documents the routes that are mounted with plain `app.get`, and declares the bearer scheme. */
export function registerDocumentExtras(app: OpenAPIHono<AppEnv>): void {
  const registry = app.openAPIRegistry;
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'The token from POST /api/register or POST /api/login',
  });
  for (const [name, schema] of Object.entries(FEED_MESSAGES)) registry.register(name, schema);

  const status = (value: string) => z.object({ status: z.literal(value) });
  registry.registerPath(
    createRoute({
      method: 'get',
      path: '/healthz',
      tags: ['Operations'],
      summary: 'Liveness: the process is up',
      responses: { 200: { description: 'Up', content: { 'application/json': { schema: status('ok') } } } },
    }),
  );
  registry.registerPath(
    createRoute({
      method: 'get',
      path: '/readyz',
      tags: ['Operations'],
      summary: 'Readiness: journals recovered, the database answering, accepting requests',
      responses: {
        200: {
          description: 'Ready; `store` names where the data lives',
          content: {
            'application/json': {
              schema: z.object({ status: z.literal('ready'), store: z.enum(['sqlite', 'postgres']) }),
            },
          },
        },
        503: errorResponse('NOT_READY: recovering, shutting down, or the database does not answer'),
      },
    }),
  );
  registry.registerPath(
    createRoute({
      method: 'get',
      path: '/metrics',
      tags: ['Operations'],
      summary: 'Prometheus metrics (text exposition format)',
      description:
        'Open by default; with METRICS_TOKEN set it needs `Authorization: Bearer <METRICS_TOKEN>`.',
      responses: {
        200: { description: 'Metrics', content: { 'text/plain': { schema: z.string() } } },
        401: errorResponse('UNAUTHENTICATED: METRICS_TOKEN is set and the request did not carry it'),
      },
    }),
  );
  registry.registerPath(
    createRoute({
      method: 'get',
      path: '/openapi.json',
      tags: ['Operations'],
      summary: 'This document',
      responses: {
        200: {
          description: 'OpenAPI 3.1',
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
        },
      },
    }),
  );
  registry.registerPath(
    createRoute({
      method: 'get',
      path: '/docs',
      tags: ['Operations'],
      summary: 'The API reference as a web page, rendered from this document',
      responses: { 200: { description: 'HTML', content: { 'text/html': { schema: z.string() } } } },
    }),
  );
  registry.registerPath(
    createRoute({
      method: 'get',
      path: '/ws/shows/{id}',
      tags: ['Live seat feed'],
      summary: "A show's live seat map over a WebSocket",
      description:
        'Send the WebSocket upgrade headers (`Connection: Upgrade`, `Upgrade: websocket`). The server sends a `snapshot` first, then a `delta` for every change, versions rising by one. A client that reconnects sends `{"type":"resume","version":N}` (or connects with `?version=N`) and gets the missed deltas, or a fresh snapshot when they are no longer kept. A client that reads too slowly is closed with 1013 and should reconnect and resume; 1001 means the server is shutting down. The messages are described in `x-websocket-messages`.',
      request: { params: IdParam, query: z.object({ version: queryParam(z.coerce.number().int().min(0)) }) },
      responses: {
        101: { description: 'Switching Protocols: the feed is open' },
        404: errorResponse('SHOW_NOT_FOUND, or ROUTE_NOT_FOUND for a request without the upgrade headers'),
        503: errorResponse('NOT_READY (shutting down) or OVERLOADED (too many feeds)'),
      },
      'x-websocket-messages': {
        server: { oneOf: [ref('SeatFeedSnapshot'), ref('SeatFeedDelta'), ref('SeatFeedError')] },
        client: { oneOf: [ref('SeatFeedResume')] },
      },
    }),
  );
}

type Json = Record<string, unknown>;

/**
 * The generated document made true to what the service does:
 * - an either/or body (`oneOf` from schemas.ts) loses the `anyOf` that zod-to-openapi writes beside it;
 * - a query parameter built with `queryParam` accepts an empty value (it means "no filter"), so its
 *   documented schema allows one.
 */
export function finishOpenApiDocument<T extends object>(doc: T): T {
  const out = structuredClone(doc) as Json;
  for (const schema of Object.values(((out.components as Json | undefined)?.schemas ?? {}) as Json)) {
    const s = schema as Json;
    if (s.oneOf && s.anyOf) delete s.anyOf;
  }
  for (const methods of Object.values((out.paths ?? {}) as Json)) {
    for (const op of Object.values(methods as Json)) {
      for (const param of ((op as Json).parameters ?? []) as Json[]) {
        const schema = param.schema as Json | undefined;
        if (!schema?.[EMPTY_MEANS_ABSENT]) continue;
        delete schema[EMPTY_MEANS_ABSENT];
        if (schema.minLength === 1) delete schema.minLength;
        if (Array.isArray(schema.enum)) schema.enum = [...schema.enum, ''];
        const said = typeof param.description === 'string' ? `${param.description}. ` : '';
        param.description = `${said}Optional; an empty value means the same as leaving it out.`;
      }
    }
  }
  return out as T;
}
