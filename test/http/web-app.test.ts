/**
 * The service serves the web app: index.html at `/` and at every client-side route a browser asks for,
 * hashed assets cached for good, while the API, the docs and unknown API paths keep their own answers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppEnv } from '../../src/http/context.js';
import { loadWebFiles, MAX_WEB_FILES, registerWebApp } from '../../src/http/web-app.js';
import { ensureWebBuild } from '../e2e/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PAGE = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
let server: TestServer;

beforeAll(async () => {
  ensureWebBuild();
  server = await startTestServer();
});
afterAll(() => server?.destroy());

async function get(urlPath: string, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + urlPath, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('web app serving', () => {
  it('serves the app at / and at client-side routes to a browser', async () => {
    for (const route of [
      '/',
      '/shows/sh_123',
      '/movies/m1',
      '/checkout/h1',
      '/bookings',
      '/tickets/b1',
      '/login',
    ]) {
      const res = await get(route, PAGE);
      expect(res.status, route).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.text).toContain('<div id="app"></div>');
    }
  });

  it('serves the app at / to any client, not only a browser, and keeps it out of frames', async () => {
    const clients: Record<string, string>[] = [{}, { accept: '*/*' }, { accept: 'application/json' }];
    for (const headers of clients) {
      const res = await get('/', headers);
      expect(res.status, JSON.stringify(headers)).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.text).toContain('<div id="app"></div>');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    }
  });

  it('serves hashed assets, gzipped on request and cached for good, and no external URL', async () => {
    const html = (await get('/', PAGE)).text;
    const scripts = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.some((s) => s.endsWith('.js'))).toBe(true);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const asset of scripts) {
      const res = await fetch(server.url + asset, { headers: { 'accept-encoding': 'gzip' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-encoding')).toBe('gzip');
      expect(await res.text()).not.toMatch(/fonts\.googleapis|cdn\.jsdelivr|unpkg\.com/);
    }
  });

  it('leaves the API, the docs and operations routes their own answers', async () => {
    const unknownApi = await get('/api/no-such-route', PAGE);
    expect(unknownApi.status).toBe(404);
    expect(JSON.parse(unknownApi.text).error.code).toBe('ROUTE_NOT_FOUND');
    expect((await get('/api/cities', PAGE)).headers.get('content-type')).toContain('application/json');
    expect((await get('/docs', PAGE)).text).toContain('BoxOffice API');
    expect((await get('/healthz', PAGE)).text).toBe('{"status":"ok"}');
    expect((await get('/.well-known/nothing', PAGE)).status).toBe(404);
    expect((await get('/ws/shows/x', PAGE)).status).toBe(404);
  });

  it('answers JSON, not the page, to a client that does not ask for HTML, and to other methods', async () => {
    const json = await get('/shows/sh_123', { accept: 'application/json' });
    expect(json.status).toBe(404);
    expect(JSON.parse(json.text).error.code).toBe('ROUTE_NOT_FOUND');
    const post = await fetch(`${server.url}/login`, { method: 'POST', headers: PAGE });
    expect(post.status).toBe(404);
    expect((await post.json()).error.code).toBe('ROUTE_NOT_FOUND');
  });
});

describe('without a build', () => {
  it('tells a browser how to build the app instead of answering JSON', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-noweb-'));
    try {
      expect(loadWebFiles(empty)).toBeUndefined();
      const app = new OpenAPIHono<AppEnv>();
      registerWebApp(app, empty);
      const res = await app.request('/shows/x', { headers: PAGE });
      expect(res.status).toBe(404);
      expect(await res.text()).toContain('npm run build:web');
      // The root says it too, whatever the client accepts.
      expect(await (await app.request('/')).text()).toContain('npm run build:web');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it(`refuses a build directory of more than ${MAX_WEB_FILES} files`, () => {
    const big = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-bigweb-'));
    try {
      fs.writeFileSync(path.join(big, 'index.html'), '<!doctype html>');
      for (let i = 0; i < MAX_WEB_FILES; i++) fs.writeFileSync(path.join(big, `f${i}.txt`), 'x');
      expect(() => loadWebFiles(big)).toThrow(`more than ${MAX_WEB_FILES} files`);
    } finally {
      fs.rmSync(big, { recursive: true, force: true });
    }
  });
});
