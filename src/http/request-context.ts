/**
 * @module request-context
 * Per-request plumbing: the `x-request-id` (echoed when the client sent a sane one), a child logger,
 * one structured log line and one metrics observation per request.
 */
import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { AppDeps, AppEnv } from './context.js';

const SANE_REQUEST_ID = /^[\w.:-]{1,128}$/;

export function requestContext(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    c.set('requestId', requestId);
    c.set('log', deps.logger);
    await next();
    c.res.headers.set('x-request-id', requestId);
    const route = routePath(c) || 'unmatched';
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.httpDuration.observe({ method: c.req.method, route, status: String(c.res.status) }, seconds);
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
