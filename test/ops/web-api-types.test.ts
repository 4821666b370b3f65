/**
 * The web app is typed against the API: web/src/api-types.ts is generated from the service's OpenAPI
 * document, and this fails when a route or schema changed without regenerating it.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_TYPES_FILE, renderApiTypes } from '../../scripts/web-api-types.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server?.destroy());

describe('web app API types', () => {
  it('match the OpenAPI document the service serves (else run `npm run web:types`)', async () => {
    const document = (await server.api('GET', '/openapi.json')).body;
    const expected = await renderApiTypes(document);
    const committed = fs.readFileSync(API_TYPES_FILE, 'utf8');
    expect(committed === expected, 'web/src/api-types.ts is stale: run `npm run web:types`').toBe(true);
  });
});
