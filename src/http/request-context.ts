/**
 * @module request-context
 * Per-request plumbing: the `x-request-id` (echoed when the client sent a sane one), a child logger,
 * one structured log line and one metrics observation per request; and the header access the hot paths
 * share. Under @hono/node-server, headers are read from Node's parsed request and `x-request-id` is set
 * on Node's response: going through `c.req.header()` / `c.res.headers` makes the adapter build web
 * Headers (and, after the handler, turns its lightweight response into a full one) on every request.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { AppDeps, AppEnv } from './context.js';

const SANE_REQUEST_ID = /^[\w.:-]{1,128}$/;

interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

/** A request header (lower-case name), from Node's parsed headers when the app runs on node:http. */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = (c.env as NodeBindings | undefined)?.incoming;
  if (!incoming) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Sets a response header on Node's response when there is one, so Hono's stay a plain object. */
export function setResponseHeader(c: Context, name: string, value: string): void {
  const outgoing = (c.env as NodeBindings | undefined)?.outgoing;
  if (outgoing) outgoing.setHeader(name, value);
  else c.header(name, value);
}

/**
 * Request ids need to be unique, not secret: a random prefix per process and a counter, which costs a
 * fraction of a UUID per request.
 */
const REQUEST_ID_PREFIX = `req_${randomUUID().slice(0, 8)}`;
let requestCount = 0;

function nextRequestId(): string {
  return `${REQUEST_ID_PREFIX}-${(++requestCount).toString(36)}`;
}

type DurationObserver = { observe(seconds: number): void };

export function requestContext(deps: AppDeps): MiddlewareHandler<AppEnv> {
  // One histogram child per (method, route, status), looked up by a plain string key: prom-client's
  // own label lookup hashes the label object on every call.
  const durations = new Map<string, DurationObserver>();
  const durationOf = (method: string, route: string, status: string): DurationObserver => {
    const key = `${method} ${status} ${route}`;
    let child = durations.get(key);
    if (!child) {
      child = deps.metrics.httpDuration.labels({ method, route, status });
      durations.set(key, child);
    }
    return child;
  };
  return async (c, next) => {
    const started = performance.now();
    const incoming = requestHeader(c, 'x-request-id');
    const requestId = incoming && SANE_REQUEST_ID.test(incoming) ? incoming : nextRequestId();
    c.set('requestId', requestId);
    c.set('log', deps.logger);
    // Node merges headers set here into whatever response the app writes, error pages included.
    const outgoing = (c.env as NodeBindings | undefined)?.outgoing;
    outgoing?.setHeader('x-request-id', requestId);
    await next();
    if (!outgoing) c.res.headers.set('x-request-id', requestId);
    const route = routePath(c) || 'unmatched';
    const seconds = (performance.now() - started) / 1000;
    durationOf(c.req.method, route, String(c.res.status)).observe(seconds);
    if (deps.logger.isLevelEnabled('info'))
      deps.logger.info(
        {
          requestId,
          method: c.req.method,
          path: c.req.path,
          route,
          status: c.res.status,
          ms: Math.round(seconds * 10000) / 10,
          userId: c.get('user')?.id,
        },
        'request',
      );
  };
}
