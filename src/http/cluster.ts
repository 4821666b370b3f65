/**
 * @module http/cluster
 * The one route between nodes: `POST /internal/shard`, a request for a partition this node serves,
 * forwarded by another node (`src/cluster/forward.ts`). Not part of the public contract: it exists only
 * with CLUSTER_SECRET set, and a wrong secret gets the 404 of any unknown path, so it tells an outsider
 * nothing. The body is a batch of requests (those one node made for this one in one turn); the reply is
 * always 200 with their results in order (NOT_OWNER for a partition that moved).
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import {
  CLUSTER_SECRET_HEADER,
  encodeResults,
  FORWARD_PATH,
  isClusterSecret,
  parseForwardedBatch,
} from '../cluster/forward.js';
import type { AppDeps, AppEnv } from './context.js';
import { errorBody } from './errors.js';

export function registerClusterRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.post(FORWARD_PATH, async (c) => {
    if (!isClusterSecret(c.req.header(CLUSTER_SECRET_HEADER), deps.config.CLUSTER_SECRET))
      return c.json(errorBody('ROUTE_NOT_FOUND', `no route POST ${FORWARD_PATH}`), 404);
    const requests = parseForwardedBatch(await c.req.json().catch(() => undefined));
    if (!requests)
      return c.json(errorBody('VALIDATION_FAILED', 'not a batch of forwarded shard requests'), 400);
    const results = await Promise.all(
      requests.map((r) => deps.router.requestForwarded(r.partition, r.showId, r.op)),
    );
    return c.body(encodeResults(results), 200, { 'content-type': 'application/json' });
  });
}
