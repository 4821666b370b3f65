/**
 * @module http/cluster
 * The one route between nodes: `POST /internal/shard`, a request for a partition this node serves,
 * forwarded by another node (`src/cluster/forward.ts`). Not part of the public contract: it exists only
 * with CLUSTER_SECRET set, and a wrong secret gets the 404 of any unknown path, so it tells an outsider
 * nothing. The reply is always 200 with the shard's result (NOT_OWNER when the partition moved).
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import {
  CLUSTER_SECRET_HEADER,
  encodeResult,
  FORWARD_PATH,
  isClusterSecret,
  parseForwarded,
} from '../cluster/forward.js';
import type { AppDeps, AppEnv } from './context.js';
import { errorBody } from './errors.js';

export function registerClusterRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.post(FORWARD_PATH, async (c) => {
    if (!isClusterSecret(c.req.header(CLUSTER_SECRET_HEADER), deps.config.CLUSTER_SECRET))
      return c.json(errorBody('ROUTE_NOT_FOUND', `no route POST ${FORWARD_PATH}`), 404);
    const request = parseForwarded(await c.req.json().catch(() => undefined));
    if (!request) return c.json(errorBody('VALIDATION_FAILED', 'not a forwarded shard request'), 400);
    const result = await deps.router.requestForwarded(request.partition, request.showId, request.op);
    return c.body(encodeResult(result), 200, { 'content-type': 'application/json' });
  });
}
