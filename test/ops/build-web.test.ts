/**
 * `npm install` and `npm start` build the web app only when it is missing or its sources changed
 * (scripts/build-web.mjs --if-stale), and the build output is never committed. Run on a copy of the
 * sources in a temporary directory, so the repository's own dist/web is left alone.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/process.js';

const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-build-web-'));
afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

const builtIndex = path.join(copy, 'dist', 'web', 'index.html');
function buildIfStale(env: Record<string, string> = {}): string {
  return execFileSync(process.execPath, [path.join(copy, 'scripts', 'build-web.mjs'), '--if-stale'], {
    cwd: copy,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
}
function builtScripts(): string {
  const assets = path.join(copy, 'dist', 'web', 'assets');
  return fs
    .readdirSync(assets)
    .filter((name) => name.endsWith('.js'))
    .map((name) => fs.readFileSync(path.join(assets, name), 'utf8'))
    .join('\n');
}

describe('web app build', () => {
  it('runs from npm install (prepare) and npm start, before the service starts', () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts;
    expect(scripts.prepare).toBe('node scripts/build-web.mjs --if-stale');
    expect(scripts.start).toMatch(/^node scripts\/build-web\.mjs --if-stale && /);
  });

  it('builds when missing, not again while the sources are unchanged, and again once one changes', {
    timeout: 180_000,
  }, () => {
    fs.cpSync(path.join(REPO, 'web'), path.join(copy, 'web'), { recursive: true });
    fs.cpSync(path.join(REPO, 'scripts', 'build-web.mjs'), path.join(copy, 'scripts', 'build-web.mjs'));
    for (const file of ['package.json', 'package-lock.json'])
      fs.cpSync(path.join(REPO, file), path.join(copy, file));
    fs.symlinkSync(fs.realpathSync(path.join(REPO, 'node_modules')), path.join(copy, 'node_modules'), 'dir');

    expect(buildIfStale()).toContain('built into dist/web');
    expect(fs.readFileSync(builtIndex, 'utf8')).toContain('<div id="app"></div>');
    const firstBuild = fs.statSync(builtIndex).mtimeMs;

    expect(buildIfStale()).not.toContain('built into');
    expect(fs.statSync(builtIndex).mtimeMs).toBe(firstBuild);

    fs.appendFileSync(
      path.join(copy, 'web', 'src', 'styles.css'),
      '\n.changed-by-the-test { color: inherit; }\n',
    );
    expect(buildIfStale()).toContain('built into dist/web');
    expect(fs.statSync(builtIndex).mtimeMs).toBeGreaterThan(firstBuild);
  });

  it('ships a production bundle even when NODE_ENV says development or test', () => {
    // Vite compiles JSX for development whenever NODE_ENV is not "production": every element then carries
    // its source file's absolute path and line, which npm start would go on serving from the cached build.
    fs.appendFileSync(path.join(copy, 'web', 'src', 'styles.css'), '\n.changed-again { color: inherit; }\n');
    for (const NODE_ENV of ['development', 'test']) {
      fs.appendFileSync(
        path.join(copy, 'web', 'src', 'styles.css'),
        `\n.for-${NODE_ENV} { color: inherit; }\n`,
      );
      expect(buildIfStale({ NODE_ENV })).toContain('built into dist/web');
      const bundle = builtScripts();
      expect(bundle.includes('lineNumber'), `development JSX with NODE_ENV=${NODE_ENV}`).toBe(false);
      expect(bundle.includes(copy), `source paths in the bundle with NODE_ENV=${NODE_ENV}`).toBe(false);
    }
  });

  it('keeps the build output out of git', () => {
    const ignored = execFileSync('git', ['check-ignore', 'dist/web/index.html', 'dist/web/assets/app.js'], {
      cwd: REPO,
      encoding: 'utf8',
    });
    expect(ignored.trim().split('\n')).toEqual(['dist/web/index.html', 'dist/web/assets/app.js']);
    expect(execFileSync('git', ['ls-files', 'dist'], { cwd: REPO, encoding: 'utf8' })).toBe('');
  });
});
