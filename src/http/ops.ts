/**
 * @module ops
 * Operations routes: liveness, readiness (every partition recovered), Prometheus metrics, the OpenAPI
 * document generated from the routes' zod schemas, and a reference page rendered from it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppDeps, AppEnv } from './context.js';
import { type OpenApiLike, renderDocsPage } from './docs-page.js';
import { errorBody } from './errors.js';
import { finishOpenApiDocument, OPENAPI_INFO, registerDocumentExtras } from './openapi-document.js';
import { requestHeader } from './request-context.js';

export function registerOpsRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    const { isReady, isDraining } = deps.lifecycle;
    const store = deps.store.dialect;
    if (!isReady || isDraining || !deps.router.isReady) {
      const reason = isDraining ? 'shutting down' : 'recovering partitions';
      return c.json(errorBody('NOT_READY', `not ready: ${reason}`, { store }), 503);
    }
    // A node whose database does not answer cannot take writes: the balancer should send them elsewhere.
    const reachable = await deps.store.get('SELECT 1 AS ok').then(
      () => true,
      () => false,
    );
    if (!reachable)
      return c.json(errorBody('NOT_READY', 'not ready: the database is unavailable', { store }), 503);
    const cluster = deps.cluster && {
      node: deps.cluster.identity.node,
      partitions: [...deps.router.ownedPartitions().keys()].sort((a, b) => a - b),
      nodes: deps.cluster.keeper.liveNodes,
    };
    return c.json({ status: 'ready', store, ...(cluster ? { cluster } : {}) });
  });
  const metricsToken = deps.config.METRICS_TOKEN;
  app.get('/metrics', async (c) => {
    if (metricsToken !== undefined && !isBearer(requestHeader(c, 'authorization'), metricsToken))
      return c.json(
        errorBody('UNAUTHENTICATED', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>'),
        401,
        { 'www-authenticate': 'Bearer realm="metrics"' },
      );
    const shards = deps.router.stats();
    for (const [worker, depth] of shards.inFlight.entries())
      deps.metrics.mailboxDepth.set({ worker: String(worker) }, depth);
    deps.metrics.shardRestarts.set(shards.restarts);
    const body = await deps.metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': deps.metrics.registry.contentType });
  });
  registerDocumentExtras(app);
  // Built on first use, when every route module has registered: the routes do not change after start.
  let document: ReturnType<typeof app.getOpenAPI31Document> | undefined;
  const documentOnce = () => {
    document ??= finishOpenApiDocument(app.getOpenAPI31Document(OPENAPI_INFO));
    return document;
  };
  app.get('/openapi.json', (c) => c.json(documentOnce()));
  app.get('/docs', (c) => c.html(renderDocsPage(documentOnce() as unknown as OpenApiLike)));
}

/** Compares digests, so the time taken says nothing about how much of the token was right. */
function isBearer(authorization: string | undefined, token: string): boolean {
  const presented = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(token));
}
