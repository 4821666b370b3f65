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
import { FORWARD_PATH, MAX_FORWARD_BODY_BYTES } from '../cluster/forward.js';
import { isStoreUnavailable } from '../persistence/store.js';
import { registerClusterRoutes } from './cluster.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, errorBody, statusOf } from './errors.js';
import { registerOpsRoutes } from './ops.js';
import { requestContext, requestHeader, setResponseHeader } from './request-context.js';
import { registerRouteModules } from './routes.js';
import { registerWebApp } from './web-app.js';

export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use('*', requestContext(deps));
  app.use('*', securityHeaders());
  app.use('/api/*', limitBody(deps.config.BODY_LIMIT_BYTES));
  app.use('/api/*', answerWhenDurable(deps.durable));
  registerOpsRoutes(app, deps);
  if (deps.config.CLUSTER_SECRET) {
    app.use(FORWARD_PATH, limitBody(MAX_FORWARD_BODY_BYTES));
    registerClusterRoutes(app, deps);
  }
  registerRouteModules(app, deps);
  registerWebApp(app);
  app.notFound((c) => notFound(app, c));
  app.onError((err, c) => onError(err, c));
  return app;
}

/** Routes whose replies carry a bearer token to an anonymous caller. */
const ISSUES_TOKENS = new Set(['/api/register', '/api/login']);
/** A 503 is a shard restarting, recovery or a full queue: over within a second or two. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Headers every reply gets: no content sniffing, no framing (the HTML pages; harmless on JSON), no
 * caching of replies to a caller with a credential or that hand one out (tokens, tickets, bookings),
 * and retry-after on a 503. Set on Node's response, which merges them into whatever the app writes
 * (a route's own cache-control or retry-after wins), so the adapter keeps its lightweight response.
 */
function securityHeaders(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    setResponseHeader(c, 'x-content-type-options', 'nosniff');
    setResponseHeader(c, 'x-frame-options', 'DENY');
    setResponseHeader(c, 'content-security-policy', "frame-ancestors 'none'");
    if (requestHeader(c, 'authorization') !== undefined || ISSUES_TOKENS.has(c.req.path))
      setResponseHeader(c, 'cache-control', 'no-store');
    await next();
    if (c.res.status === 503) setResponseHeader(c, 'retry-after', String(RETRY_AFTER_SECONDS));
  };
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
 * and when nothing is pending (every read of a quiet database) the check compares two counters.
 */
function answerWhenDurable(durable: () => Promise<void>): MiddlewareHandler<AppEnv> {
  return async (_c, next) => {
    await next();
    await durable();
  };
}

interface Issue {
  code?: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  errors?: Issue[][];
}

/** What the client sent, as a person calls it: zod's validator targets are Hono's names. */
const TARGET_NAMES: Record<string, string> = {
  json: 'request body',
  query: 'query string',
  param: 'path',
  header: 'request headers',
};

/**
 * zod failures become 400 VALIDATION_FAILED, naming each missing or bad field in `details.fields` and
 * saying in the message what is wrong with it. An either/or body is judged against the alternative it
 * comes closest to, so `{holdId}` without `paymentMethod` names `paymentMethod`, not the whole body.
 */
function validationHook(
  result: { success: boolean; error?: { issues: Issue[] }; target?: string; data?: unknown },
  c: Context<AppEnv>,
) {
  if (result.success) return;
  const where = TARGET_NAMES[result.target ?? ''] ?? 'request';
  const sent = { input: result.data, where };
  const fields: Record<string, string> = {};
  const alternatives: string[] = [];
  for (const issue of result.error?.issues ?? []) {
    if (issue.code === 'invalid_union' && issue.errors?.length) {
      const closest = closestAlternatives(issue.errors);
      for (const branch of closest) addFields(fields, branch, issue.path, sent);
      if (closest.length > 1)
        alternatives.push(
          closest.map((branch) => describe(fieldsOf(branch, issue.path, sent))).join('; or '),
        );
    } else addFields(fields, [issue], [], sent);
  }
  const message =
    alternatives.length > 0
      ? `the ${where} fits none of its accepted forms; fix one of: ${alternatives.join('; ')}`
      : `bad fields in the ${where}: ${describe(fields)}`;
  return c.json(errorBody('VALIDATION_FAILED', message, { fields }), 400);
}

/** The alternatives with the fewest problems: the ones the client most likely meant. */
function closestAlternatives(branches: Issue[][]): Issue[][] {
  const cost = (branch: Issue[]) =>
    branch.reduce((n, issue) => n + (issue.code === 'unrecognized_keys' ? (issue.keys?.length ?? 1) : 1), 0);
  const least = Math.min(...branches.map(cost));
  return branches.filter((branch) => cost(branch) === least);
}

interface Sent {
  input: unknown;
  where: string;
}

function fieldsOf(issues: Issue[], prefix: PropertyKey[], sent: Sent): Record<string, string> {
  const fields: Record<string, string> = {};
  addFields(fields, issues, prefix, sent);
  return fields;
}

function addFields(fields: Record<string, string>, issues: Issue[], prefix: PropertyKey[], sent: Sent) {
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys ?? []) fields[[...path, key].map(String).join('.')] ??= 'not allowed here';
      continue;
    }
    const key = path.map(String).join('.') || sent.where;
    fields[key] ??= path.length > 0 && valueAt(sent.input, path) === undefined ? 'required' : issue.message;
  }
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

const describe = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([field, problem]) => (problem === 'required' ? `${field} is required` : `${field}: ${problem}`))
    .join(', ');

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
    if (err.status === 415)
      return c.json(
        errorBody(
          'UNSUPPORTED_MEDIA_TYPE',
          'send the body as JSON with the header Content-Type: application/json',
          { contentType: c.req.header('content-type') ?? null },
        ),
        415,
      );
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
  if (isStoreUnavailable(err)) {
    c.get('log')?.warn({ err, requestId: c.get('requestId') }, 'database unavailable');
    return c.json(errorBody('STORE_UNAVAILABLE', 'the database is unavailable; try again shortly'), 503);
  }
  c.get('log')?.error({ err, requestId: c.get('requestId') }, 'unhandled error');
  return c.json(errorBody('INTERNAL', 'something went wrong on our side; it has been logged'), 500);
}
