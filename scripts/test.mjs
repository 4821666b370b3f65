#!/usr/bin/env node
// The whole test suite: makes sure redis-server (queue tests), chromium (web app tests) and PostgreSQL 15
// (the second store; its global setup starts a throwaway server) exist
// (installing them with apt-get where they are missing and we are root), runs vitest, and ends with "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Debian keeps PostgreSQL's server programs (initdb, pg_ctl, postgres) off PATH, here. */
const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';

function has(cmd) {
  if (cmd === 'pg_ctl' && existsSync(`${POSTGRES_BIN}/pg_ctl`)) return true;
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Installs a Debian package with apt-get when its command is missing and we are root. */
function ensure(command, debianPackage, purpose) {
  if (has(command)) return true;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && has('apt-get')) {
    console.log(`${command} is missing (${purpose}): installing ${debianPackage} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-qq', debianPackage], { stdio: 'inherit', env });
  }
  if (has(command)) return true;
  console.error(
    `${command} is not installed and could not be installed: install it (apt-get install ${debianPackage}) and run npm test again`,
  );
  return false;
}

const needs = [
  ['redis-server', 'redis-server', 'the queue tests'],
  ['chromium', 'chromium', 'the web app tests'],
  ['pg_ctl', 'postgresql', 'the PostgreSQL store tests'],
];
if (!needs.every(([command, pkg, purpose]) => ensure(command, pkg, purpose))) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'boxoffice-test-')), 'results.json');
const args = [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${out}`,
  ...process.argv.slice(2),
];
const run = spawnSync('npx', args, { stdio: 'inherit' });
let passed = 0;
let failed = 0;
try {
  const results = JSON.parse(readFileSync(out, 'utf8'));
  passed = results.numPassedTests;
  // A file that failed without any failing test (an import error, a failing hook) counts once.
  const brokenFiles = (results.testResults ?? []).filter(
    (file) => file.status === 'failed' && !(file.assertionResults ?? []).some((t) => t.status === 'failed'),
  ).length;
  failed = results.numFailedTests + brokenFiles;
} catch {
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
