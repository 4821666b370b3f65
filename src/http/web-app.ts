/**
 * @module http/web-app
 * Serves the booking web app built from `web/` (by Vite, into `dist/web`): its hashed assets, and its
 * index.html for any client-side route (`/shows/:id`, `/tickets/:id`, …) a browser asks for. The API,
 * the feed and the operations routes keep their own answers; this is mounted after them as a fallback.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';

/** Paths that never fall back to the app: they answer JSON (or text) of their own, 404 included. */
const SERVER_PREFIXES = [
  '/api',
  '/ws',
  '/docs',
  '/openapi.json',
  '/metrics',
  '/healthz',
  '/readyz',
  '/.well-known',
];
/** The build is a handful of files; more means the directory is not the build, so stop reading. */
export const MAX_WEB_FILES = 200;
export const MAX_WEB_BYTES = 20 * 1024 * 1024;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
};

interface WebFile {
  body: Uint8Array<ArrayBuffer>;
  gzipped?: Uint8Array<ArrayBuffer>;
  contentType: string;
  cacheControl: string;
}

/**
 * Where the build lives: `dist/web` beside `src/` when run from source (tsx), and `web` beside the
 * compiled `src/` when run from `dist/src` (the production image).
 */
export function defaultWebDir(): string {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  return path.basename(root) === 'dist' ? path.join(root, 'web') : path.join(root, 'dist', 'web');
}

/** Reads the whole build into memory once: a few hundred KB, served without touching the disk again. */
export function loadWebFiles(dir: string): Map<string, WebFile> | undefined {
  if (!fs.existsSync(path.join(dir, 'index.html'))) return undefined;
  const files = new Map<string, WebFile>();
  let total = 0;
  const walk = (relative: string) => {
    for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const rel = path.posix.join(relative, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.isFile()) {
        if (files.size >= MAX_WEB_FILES) throw new Error(`${dir} holds more than ${MAX_WEB_FILES} files`);
        const body = new Uint8Array(fs.readFileSync(path.join(dir, rel)));
        total += body.byteLength;
        if (total > MAX_WEB_BYTES) throw new Error(`${dir} holds more than ${MAX_WEB_BYTES} bytes`);
        const ext = path.extname(rel);
        const contentType = CONTENT_TYPES[ext] ?? 'application/octet-stream';
        const isText = /^(text|application\/json|image\/svg)/.test(contentType);
        files.set(`/${rel}`, {
          body,
          gzipped: isText && body.byteLength > 1024 ? new Uint8Array(gzipSync(body)) : undefined,
          contentType,
          // Vite names assets by their content hash: a changed file is a new name.
          cacheControl: rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        });
      }
    }
  };
  walk('');
  return files;
}

function isServerPath(pathname: string): boolean {
  return SERVER_PREFIXES.some((p) => pathname === p || pathname.startsWith(`${p}/`));
}

/**
 * Mounts the web app as the last handler for GET (and so HEAD). Without a build (tests that never built
 * it), a page request says how to build it instead of answering JSON.
 */
export function registerWebApp(app: OpenAPIHono<AppEnv>, dir = defaultWebDir()): void {
  const files = loadWebFiles(dir);
  const serve: MiddlewareHandler<AppEnv> = async (c, next) => {
    // Hono answers HEAD by running GET and dropping the body, so GET is the one method to serve.
    if (c.req.method !== 'GET' || isServerPath(c.req.path)) return next();
    // The root is never an API route: it is the page for anyone who asks, `curl http://HOST:PORT/` included
    // (a newcomer's first request; it used to be a JSON 404).
    const isPage = c.req.path === '/' || (c.req.header('accept') ?? '').includes('text/html');
    if (!files) {
      if (!isPage) return next();
      return c.text('The web app is not built: run `npm run build:web` (npm install does it).', 404, {
        'cache-control': 'no-store',
      });
    }
    const file = files.get(c.req.path) ?? (isPage ? files.get('/index.html') : undefined);
    if (!file) return next();
    const headers: Record<string, string> = {
      'content-type': file.contentType,
      'cache-control': file.cacheControl,
      vary: 'accept-encoding',
      'x-content-type-options': 'nosniff',
    };
    if (file.gzipped && (c.req.header('accept-encoding') ?? '').includes('gzip')) {
      headers['content-encoding'] = 'gzip';
      return c.body(file.gzipped, 200, headers);
    }
    return c.body(file.body, 200, headers);
  };
  app.use('*', serve);
}
