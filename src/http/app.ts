/**
 * @module app
 * The Hono application: request ids, one log line per request, body limits, the contract's error shape
 * for every failure (bad JSON, failed validation, unknown routes, wrong methods, unexpected exceptions),
 * and the route modules. Routes are thin: parse with zod, call a use case, map the result.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, errorBody, statusOf } from './errors.js';
import { registerOpsRoutes } from './ops.js';
import { requestContext, requestHeader } from './request-context.js';
import { registerRouteModules } from './routes.js';

export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use('*', requestContext(deps));
  app.use('/api/*', limitBody(deps.config.BODY_LIMIT_BYTES));
  app.use('/api/*', answerWhenDurable(deps.durable));
  registerOpsRoutes(app, deps);
  registerRouteModules(app, deps);
  app.notFound((c) => notFound(app, c));
  app.onError((err, c) => onError(err, c));
  return app;
}

/**
 * Bodies over the limit are 413. A declared length is checked from the header alone; only a chunked body
 * is counted as it streams, by Hono's own middleware. Hono's middleware reads `c.req.raw.body` first,
 * which makes @hono/node-server build a full web Request (AbortController, web stream) for every
 * request, GETs included: that was the costliest step of a seat-map read, and needless for a body that
 * states its length (Node refuses one that does not match it).
 */
function limitBody(maxSize: number): MiddlewareHandler<AppEnv> {
  const onError = (c: Context<AppEnv>) =>
    c.json(errorBody('PAYLOAD_TOO_LARGE', `request bodies are limited to ${maxSize} bytes`), 413);
  const streamed = bodyLimit({ maxSize, onError });
  return async (c, next) => {
    const method = c.req.method;
    // The adapter gives GET and HEAD no body at all.
    if (method === 'GET' || method === 'HEAD') return next();
    if (requestHeader(c, 'transfer-encoding') !== undefined) return streamed(c, next);
    const length = requestHeader(c, 'content-length');
    return length !== undefined && Number.parseInt(length, 10) > maxSize ? onError(c) : next();
  };
}

/**
 * Group commit's rule at the edge: no answer leaves while a commit made before it is unflushed (its own,
 * or another request's that it may be reporting), so a client is never told of a change a power cut
 * could still take back. Many requests share one flush; the HTTP thread never waits on the disk itself,
 * and when nothing is pending (every read of a quiet database) the check costs one `total_changes()`.
 */
function answerWhenDurable(durable: () => Promise<void>): MiddlewareHandler<AppEnv> {
  return async (_c, next) => {
    await next();
    await durable();
  };
}

/** zod failures become 400 VALIDATION_FAILED naming each bad field. */
function validationHook(
  result: {
    success: boolean;
    error?: { issues: { path: PropertyKey[]; message: string }[] };
    target?: string;
  },
  c: Context<AppEnv>,
) {
  if (result.success) return;
  const fields: Record<string, string> = {};
  for (const issue of result.error?.issues ?? []) {
    const key = issue.path.map(String).join('.') || (result.target ?? 'body');
    fields[key] ??= issue.message;
  }
  return c.json(
    errorBody(
      'VALIDATION_FAILED',
      `invalid ${result.target ?? 'request'}: ${Object.keys(fields).join(', ')}`,
      {
        fields,
      },
    ),
    400,
  );
}

/** A path that exists under another method is 405 with `allow`; anything else is 404. */
function notFound(app: OpenAPIHono<AppEnv>, c: Context<AppEnv>) {
  const allowed = new Set<string>();
  for (const route of app.routes) {
    if (route.method === 'ALL' || route.method === c.req.method) continue;
    if (matchesPath(route.path, c.req.path)) allowed.add(route.method);
  }
  if (allowed.size > 0) {
    c.header('allow', [...allowed].join(', '));
    return c.json(
      errorBody('METHOD_NOT_ALLOWED', `${c.req.method} is not allowed on ${c.req.path}`, {
        allow: [...allowed],
      }),
      405,
    );
  }
  return c.json(errorBody('ROUTE_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), 404);
}

function matchesPath(pattern: string, path: string): boolean {
  const a = pattern.split('/');
  const b = path.split('/');
  if (a.length !== b.length) return false;
  return a.every((seg, i) => seg.startsWith(':') || seg === '*' || seg === b[i]);
}

function onError(err: Error, c: Context<AppEnv>) {
  if (err instanceof ApiError) {
    for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
    return c.json(errorBody(err.code, err.message, err.details), statusOf(err.code));
  }
  if (err instanceof HTTPException) {
    if (err.status === 400)
      return c.json(errorBody('INVALID_JSON', 'the request body is not valid JSON'), 400);
    if (err.status === 413)
      return c.json(errorBody('PAYLOAD_TOO_LARGE', 'the request body is too large'), 413);
    if (err.status === 401)
      return c.json(errorBody('UNAUTHENTICATED', err.message || 'authentication required'), 401);
    if (err.status < 500)
      return c.json(errorBody('VALIDATION_FAILED', err.message || 'bad request'), err.status as 400);
  }
  const code = (err as { code?: string }).code;
  if (code === 'WORKER_FAILED' || code === 'OVERLOADED' || code === 'NOT_READY')
    return c.json(errorBody(code, 'the seat allocator is busy or recovering; try again shortly'), 503);
  c.get('log')?.error({ err, requestId: c.get('requestId') }, 'unhandled error');
  return c.json(errorBody('INTERNAL', 'something went wrong on our side; it has been logged'), 500);
}
