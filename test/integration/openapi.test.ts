/**
 * The OpenAPI document is valid, complete and true: a validator accepts it, every route the contract
 * names is in it (the webhook, operations, the WebSocket feed), every route lists the statuses its kind
 * can answer, either/or bodies admit exactly one alternative, and the response checker that every
 * integration test runs through really refuses an undocumented answer.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENV } from '../helpers/catalog.js';
import { compileContract } from '../helpers/openapi-contract.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

type Json = Record<string, any>;

let server: TestServer;
let doc: Json;
let resolved: Json;
beforeAll(async () => {
  server = await startTestServer(ADMIN_ENV);
  doc = (await server.api('GET', '/openapi.json')).body;
  resolved = (await SwaggerParser.dereference(structuredClone(doc) as never)) as Json;
});
afterAll(() => server?.destroy());

const operations = () =>
  Object.entries(doc.paths as Json).flatMap(([path, methods]) =>
    Object.entries(methods as Json).map(([method, op]) => ({ path, method, op: op as Json })),
  );

function ajvFor(schema: object) {
  const ajv = new Ajv2020({ strict: false });
  addFormats.default(ajv);
  return ajv.compile(schema);
}

describe('the OpenAPI document', () => {
  it('passes an OpenAPI validator', async () => {
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('declares every security scheme its operations use', () => {
    const declared = Object.keys(doc.components?.securitySchemes ?? {});
    const used = new Set(
      operations().flatMap(({ op }) => (op.security ?? []).flatMap((s: Json) => Object.keys(s))),
    );
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) expect(declared).toContain(name);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('documents the webhook, the operations routes, the JWKS and the seat feed', () => {
    for (const [path, method] of [
      ['/api/payments/webhook', 'post'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
      ['/metrics', 'get'],
      ['/.well-known/jwks.json', 'get'],
      ['/ws/shows/{id}', 'get'],
    ] as const)
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    const feed = resolved.paths['/ws/shows/{id}'].get;
    expect(Object.keys(feed.responses)).toContain('101');
    const server = feed['x-websocket-messages'].server.oneOf.map((s: Json) => s.properties.type.enum[0]);
    expect(server).toEqual(['snapshot', 'delta', 'error']);
    expect(feed['x-websocket-messages'].client.oneOf[0].properties.type.enum[0]).toBe('resume');
  });

  it('lists 401 on every operation behind a token, 400 and 404 on every {id} route, 403 on admin routes', () => {
    const missing: string[] = [];
    for (const { path, method, op } of operations()) {
      const statuses = Object.keys(op.responses);
      const need = [
        ...(op.security?.length ? ['401'] : []),
        ...(path.includes('{id}') ? ['400', '404'] : []),
        ...(path.startsWith('/api/admin/') ? ['403'] : []),
        ...(op.requestBody?.content?.['application/json'] && path !== '/api/payments/webhook'
          ? ['400', '413', '415']
          : []),
      ];
      for (const status of need) if (!statuses.includes(status)) missing.push(`${method} ${path} ${status}`);
    }
    expect(missing).toEqual([]);
  });

  it('makes either/or bodies oneOf strict alternatives: exactly one matches, never both', () => {
    const schemas = resolved.components.schemas;
    for (const name of ['CreateBooking', 'HoldRequest', 'OfferCheck']) {
      expect(schemas[name].oneOf, name).toBeDefined();
      expect(schemas[name].anyOf, name).toBeUndefined();
    }
    const booking = ajvFor(schemas.CreateBooking);
    expect(booking({ holdId: 'h1', paymentMethod: 'card' })).toBe(true);
    expect(booking({ showId: 's1', seats: ['A1'], paymentMethod: 'upi' })).toBe(true);
    expect(booking({ holdId: 'h1', showId: 's1', seats: ['A1'], paymentMethod: 'card' })).toBe(false);
    expect(booking({ showId: 's1', seats: ['A1'], count: 2, paymentMethod: 'card' })).toBe(false);
    const hold = ajvFor(schemas.HoldRequest);
    expect(hold({ seats: ['A1'] })).toBe(true);
    expect(hold({ seats: ['A1'], count: 1 })).toBe(false);
  });

  it('gives email fields format email, and lets empty query filters through as the service does', () => {
    const emailOf = (schema: string) => resolved.components.schemas[schema].properties.email.format;
    expect(emailOf('Registration')).toBe('email');
    expect(emailOf('Login')).toBe('email');
    expect(emailOf('User')).toBe('email');
    const movies = resolved.paths['/api/movies'].get.parameters as Json[];
    for (const name of ['city', 'language', 'genre', 'q']) {
      const param = movies.find((p) => p.name === name)!;
      expect(ajvFor(param.schema)(''), name).toBe(true);
    }
    const history = resolved.paths['/api/me/bookings'].get.parameters as Json[];
    expect(ajvFor(history.find((p) => p.name === 'status')!.schema)('')).toBe(true);
  });

  it('says on amount fields that money is integer minor units', () => {
    const amount = resolved.components.schemas.Amount;
    for (const field of ['subtotal', 'discount', 'fees', 'total']) {
      expect(amount.properties[field].type).toBe('integer');
      expect(amount.properties[field].description).toMatch(/minor units.*paise/);
    }
  });
});

describe('the response checker the integration tests run', () => {
  it('refuses a status the operation does not list, and a body that breaks the schema', async () => {
    const contract = await compileContract(doc);
    const json = 'application/json';
    expect(contract.check('GET', '/api/movies/m1', 200, json, { movie: { id: 'm1' } })).toMatch(
      /does not match its OpenAPI schema/,
    );
    expect(contract.check('GET', '/api/movies/m1', 418, json, {})).toMatch(/do not list/);
    expect(contract.check('GET', '/api/undocumented', 200, json, {})).toMatch(/no operation/);
    const error = { error: { code: 'MOVIE_NOT_FOUND', message: 'no movie m1', details: {} } };
    expect(contract.check('GET', '/api/movies/m1?x=1', 404, json, error)).toBeUndefined();
    expect(contract.check('GET', '/api/nothing-here', 404, json, error)).toBeUndefined();
  });
});

describe('the /docs page', () => {
  it('groups operations by tag under a table of contents, with resolved bodies and examples', async () => {
    const page = await server.api('GET', '/docs');
    expect(page.status).toBe(200);
    const html = page.body as string;
    expect(html).not.toContain('$ref');
    for (const tag of ['Bookings', 'Holds', 'Operations', 'Live seat feed'])
      expect(html).toContain(`<a href="#${tag.toLowerCase().replace(/[^a-z0-9]+/g, '-')}">${tag}</a>`);
    const bookings = html.slice(html.indexOf('id="post-api-bookings"'));
    const section = bookings.slice(0, bookings.indexOf('</section>'));
    expect(section).toContain('Exactly one of these forms');
    expect(section).toMatch(
      /<code>paymentMethod<\/code><\/td><td>&quot;card&quot; \| &quot;upi&quot; \| &quot;wallet&quot;<\/td><td>yes/,
    );
    expect(section).toContain('Example request');
    expect(section).toContain('Example response (201)');
    expect(html).toMatch(/minor units/);
  });
});
