#!/usr/bin/env node
// Builds the web app (web/ → dist/web) with Vite. `--if-stale` builds only when the sources changed
// since the last build (a content hash kept beside the output), so `npm start` and `npm install` pay for
// a build once. Without web/ (Docker's dependency layer) or without Vite (production dependencies only)
// it says why and leaves whatever build exists.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(REPO, 'web');
const OUT = path.join(REPO, 'dist', 'web');
const STAMP = path.join(REPO, 'dist', 'web-build.json');
/** Held while building: test files that build beside each other take turns instead of interleaving. */
const LOCK = path.join(REPO, 'dist', 'web-build.lock');
const LOCK_WAIT_MS = 120_000;
/** The sources are a few dozen files; a bound keeps a stray symlink loop from hanging `npm start`. */
const MAX_SOURCE_FILES = 500;

function sourceHash() {
  const hash = createHash('sha256');
  const files = [];
  const walk = (dir) => {
    for (const entry of fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) files.push(full);
      if (files.length > MAX_SOURCE_FILES) throw new Error(`web/ holds more than ${MAX_SOURCE_FILES} files`);
    }
  };
  walk(WEB);
  // The script itself counts: a change to how the app is built must replace a build made the old way.
  for (const file of [...files, path.join(REPO, 'package-lock.json'), fileURLToPath(import.meta.url)]) {
    if (!fs.existsSync(file)) continue;
    hash.update(path.relative(REPO, file));
    hash.update(fs.readFileSync(file));
  }
  return hash.digest('hex');
}

async function main() {
  if (!fs.existsSync(path.join(WEB, 'index.html'))) {
    console.log('web app: no web/ sources here, nothing to build');
    return;
  }
  fs.mkdirSync(path.dirname(LOCK), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      // A lock left by a killed build is older than any real build takes.
      if (Date.now() - fs.statSync(LOCK).mtimeMs > LOCK_WAIT_MS)
        fs.rmSync(LOCK, { recursive: true, force: true });
      else if (Date.now() > deadline)
        throw new Error(`web app: ${LOCK} is held; remove it if no build is running`);
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    await buildOnce(process.argv.includes('--if-stale'));
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}

async function buildOnce(onlyIfStale) {
  const hash = sourceHash();
  if (onlyIfStale && fs.existsSync(path.join(OUT, 'index.html'))) {
    try {
      if (JSON.parse(fs.readFileSync(STAMP, 'utf8')).hash === hash) return;
    } catch {
      // No stamp or an unreadable one: build.
    }
  }
  let vite;
  try {
    vite = await import('vite');
  } catch {
    console.warn('web app: vite is not installed (production dependencies only); serving the existing build');
    return;
  }
  // Vite compiles JSX for development whenever NODE_ENV is not "production" (a .env's development, the
  // test runner's test): every element would then carry its source file's absolute path and line, and
  // the stamp would keep that build for `npm start`. What this script builds is always what is served.
  process.env.NODE_ENV = 'production';
  await vite.build({ configFile: path.join(WEB, 'vite.config.ts'), logLevel: 'warn', mode: 'production' });
  fs.writeFileSync(STAMP, JSON.stringify({ hash, builtAt: new Date().toISOString() }));
  console.log(`web app: built into ${path.relative(REPO, OUT)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
