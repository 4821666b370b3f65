/**
 * Builds the web app into dist/web, where the service serves it (src/http/web-app.ts). `npm run web:dev`
 * serves it with hot reload and sends the API and the seat feed to a service on port 3000.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const service = process.env.BOXOFFICE_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  root: here,
  base: '/',
  publicDir: path.join(here, 'public'),
  build: {
    outDir: path.join(here, '..', 'dist', 'web'),
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  server: {
    proxy: {
      '/api': service,
      '/ws': { target: service.replace(/^http/, 'ws'), ws: true },
      '/.well-known': service,
    },
  },
});
