/**
 * Operations routes and the error contract at the edges: health, readiness, metrics, OpenAPI and docs,
 * unknown routes, wrong methods, malformed and oversized bodies, request ids; and a property test that
 * throws random malformed requests at every documented route and never sees a 5xx.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, createShow, login, newUser } from '../helpers/catalog.js';
import { TEST_STORE_ENV } from '../helpers/postgres.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...ADMIN_ENV, BODY_LIMIT_BYTES: '4096' });
});
afterAll(() => server?.destroy());

describe('operations', () => {
  it('reports liveness and readiness', async () => {
    expect((await server.api('GET', '/healthz')).status).toBe(200);
    const ready = await server.api('GET', '/readyz');
    expect(ready.status).toBe(200);
    const store = process.env[TEST_STORE_ENV] === 'postgres' ? 'postgres' : 'sqlite';
    // On PostgreSQL the node is a cluster of one: it names itself and serves every partition.
    const cluster =
      store === 'postgres'
        ? {
            cluster: {
              node: expect.any(String),
              partitions: [...Array(server.deps.router.partitionCount).keys()],
              nodes: [expect.any(String)],
            },
          }
        : {};
    expect(ready.body).toEqual({ status: 'ready', store, ...cluster });
  });

  it('exposes Prometheus metrics including HTTP latency by route', async () => {
    await server.api('GET', '/healthz');
    const res = await server.api('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.body).toContain('boxoffice_http_request_duration_seconds_bucket');
    expect(res.body).toContain('route="/healthz"');
    expect(res.body).toContain('nodejs_eventloop_lag');
    // The PostgreSQL pool's connections, where there is a pool.
    const pooled = process.env[TEST_STORE_ENV] === 'postgres';
    expect(/boxoffice_store_connections\{state="idle"\} \d+/.test(res.body)).toBe(pooled);
    expect(/boxoffice_store_waiting \d+/.test(res.body)).toBe(pooled);
  });

  it('serves the OpenAPI document and a readable reference page', async () => {
    const doc = await server.api('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/api/shows/{id}/holds', '/api/bookings']),
    );
    const page = await server.api('GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.body).toContain('/api/shows/{id}/holds');
  });
});

describe('the error contract at the edges', () => {
  it('answers unknown routes with 404 and wrong methods with 405, in the contract shape', async () => {
    const missing = await server.api('GET', '/api/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'ROUTE_NOT_FOUND', details: {} });
    const wrong = await server.api('PUT', '/api/bookings');
    expect(wrong.status).toBe(405);
    expect(wrong.body.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(wrong.headers.get('allow')).toContain('POST');
  });

  it('answers malformed JSON with 400 and changes nothing', async () => {
    const { token } = await newUser(server.api);
    const res = await server.api('POST', '/api/bookings', { raw: '{"holdId": ', token });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_JSON');
  });

  it('names the bad fields of an invalid body', async () => {
    const res = await server.api('POST', '/api/register', {
      body: { name: '', email: 'not-an-email', password: 'x' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(Object.keys(res.body.error.details.fields)).toEqual(expect.arrayContaining(['email', 'password']));
  });

  it('refuses oversized bodies with 413', async () => {
    const res = await server.api('POST', '/api/register', {
      raw: JSON.stringify({ name: 'x'.repeat(10_000) }),
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('echoes a sane x-request-id and makes one up otherwise', async () => {
    const echoed = await server.api('GET', '/healthz', { headers: { 'x-request-id': 'abc-123' } });
    expect(echoed.headers.get('x-request-id')).toBe('abc-123');
    const made = await server.api('GET', '/healthz', { headers: { 'x-request-id': 'bad id with spaces' } });
    const id = made.headers.get('x-request-id');
    expect(id).toMatch(/^req_[0-9a-f]{8}-[0-9a-z]+$/);
    const next = await server.api('GET', '/healthz');
    expect(next.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{8}-[0-9a-z]+$/);
    expect(next.headers.get('x-request-id')).not.toBe(id);
  });

  it('never answers a malformed request to any documented route with a 5xx', async () => {
    const { showId } = await createShow(server.api);
    const user = await newUser(server.api);
    const adminToken = await login(server.api, ADMIN.email, ADMIN.password);
    const doc = (await server.api('GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })),
    );
    expect(routes.length).toBeGreaterThan(20);
    const junk = fc.oneof(
      fc.anything({ maxDepth: 3 }),
      fc.record({
        seats: fc.anything(),
        count: fc.anything(),
        holdId: fc.anything(),
        showId: fc.constant(showId),
      }),
      fc.dictionary(
        fc.string({ maxLength: 12 }),
        fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null)),
      ),
    );
    const param = fc.oneof(
      fc.constant(showId),
      fc.string({ minLength: 1, maxLength: 30 }),
      fc.constant('..'),
      fc.constant('%00'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        param,
        junk,
        fc.constantFrom(user.token, adminToken, undefined, 'garbage'),
        fc.boolean(),
        async (route, id, body, token, rawText) => {
          const path = route.path.replace(/\{[^}]+\}/g, encodeURIComponent(id));
          let raw: string;
          try {
            raw = rawText ? String(body).slice(0, 500) : (JSON.stringify(body) ?? 'null');
          } catch {
            raw = 'null';
          }
          const res = await server.api(route.method, path, {
            raw: route.method === 'GET' || route.method === 'DELETE' ? undefined : raw,
            token,
          });
          if (res.status >= 500)
            throw new Error(`${route.method} ${path} ${raw} → ${res.status} ${JSON.stringify(res.body)}`);
          if (res.status >= 400 && res.headers.get('content-type')?.includes('json'))
            expect(res.body.error?.code).toBeTypeOf('string');
        },
      ),
      { numRuns: 400 },
    );
  });
});
