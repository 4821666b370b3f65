/**
 * @module test/helpers/postgres
 * A real, throwaway PostgreSQL 15 server for tests: `initdb` into a temp dir, a free loopback port,
 * `fsync=on` (the durability the service will rely on), stopped by its pid. PostgreSQL refuses to run
 * as root, so as root the server runs as the `postgres` user (Debian's package creates it) and owns
 * the temp dir. One server serves the whole run (`postgres-global-setup.ts` starts it and publishes
 * its URL in `BOXOFFICE_TEST_POSTGRES_URL`); each test file takes a fresh database of its own with
 * `freshPostgresDatabase()`.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../bench/http/processes.js';

/** Where Debian puts the server's programs; `pg_ctl`/`initdb` are not on PATH there. */
export const DEBIAN_POSTGRES_BIN = '/usr/lib/postgresql/15/bin';
/** The env var that carries the shared server's admin URL to test files (and lets a local server stand in). */
export const TEST_POSTGRES_URL_ENV = 'BOXOFFICE_TEST_POSTGRES_URL';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

export interface TestPostgres {
  /** The admin URL (superuser `postgres`, database `postgres`). */
  url: string;
  port: number;
  /** The directory of the server's Unix-domain socket (`?host=` of a URL that connects through it). */
  socketDir: string;
  /** The postmaster's pid (it changes with `restart`). */
  pid: number;
  /** Fast shutdown (SIGINT to the postmaster's pid), then removes the temp dir. */
  stop(): Promise<void>;
  /** Fast shutdown, keeping the data; `restart` starts the server again on the same port and data. */
  halt(): Promise<void>;
  restart(): Promise<void>;
  /**
   * SIGSTOP to the postmaster and every backend: connections stay open but nothing answers, as with
   * a server that hangs. Returns what sends SIGCONT to the same processes.
   */
  freeze(): () => void;
}

function binDir(): string {
  if (fs.existsSync(path.join(DEBIAN_POSTGRES_BIN, 'initdb'))) return DEBIAN_POSTGRES_BIN;
  const found = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  if (found.status === 0 && found.stdout.trim()) return path.dirname(found.stdout.trim());
  throw new Error(
    `PostgreSQL is not installed (no initdb in ${DEBIAN_POSTGRES_BIN} or on PATH); install it (apt-get install postgresql) to run these tests`,
  );
}

/** As root, the uid/gid of `postgres`; otherwise run as ourselves. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function exited(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
}

/** The pids of a process's children, read from /proc (PostgreSQL's backends are the postmaster's). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command may hold spaces and parentheses: the fields after the last ')' are fixed.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  const user = serverUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-pg-'));
  if (user) fs.chownSync(dir, user.uid, user.gid);
  const dataDir = path.join(dir, 'data');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: dir };
  // --no-sync only skips flushing initdb's own files (a crash during setup just fails the run); the
  // server itself runs with fsync on.
  const init = spawnSync(
    path.join(bin, 'initdb'),
    ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'],
    { encoding: 'utf8', env, cwd: dir, ...user },
  );
  if (init.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.error}`);
  }
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;

  const launch = async (): Promise<ChildProcess> => {
    const proc = spawn(
      path.join(bin, 'postgres'),
      [
        '-D',
        dataDir,
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'fsync=on',
        '-c',
        'max_connections=200',
        '-c',
        'shared_buffers=32MB',
      ],
      { env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], ...user },
    );
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 16_384) stderr += chunk.toString();
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline && proc.exitCode === null) {
      if (await canConnect(url)) return proc;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (proc.exitCode === null) proc.kill('SIGKILL');
    await exited(proc);
    throw new Error(`postgres did not accept connections on port ${port}: ${stderr}`);
  };
  const halt = async (proc: ChildProcess, signal: 'SIGINT' | 'SIGQUIT' = 'SIGINT') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    // SIGINT is PostgreSQL's fast shutdown: sessions are ended, a checkpoint is written. SIGQUIT is its
    // immediate shutdown: no checkpoint (the next start would replay the WAL).
    process.kill(proc.pid as number, signal);
    const killed = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited(proc);
    clearTimeout(killed);
  };

  let proc: ChildProcess;
  try {
    proc = await launch();
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    port,
    socketDir: dir,
    get pid() {
      return proc.pid as number;
    },
    async stop() {
      // The data directory is deleted next, so nothing is worth a checkpoint: after a whole run (hundreds
      // of databases) a fast shutdown's checkpoint took over a minute on a busy disk, added to every run.
      await halt(proc, 'SIGQUIT');
      fs.rmSync(dir, { recursive: true, force: true });
    },
    halt: () => halt(proc),
    async restart() {
      await halt(proc);
      proc = await launch();
    },
    freeze() {
      const pids = [proc.pid as number, ...childrenOf(proc.pid as number)];
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      return () => {
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGCONT');
          } catch {
            // Gone already.
          }
        }
      };
    },
  };
}

/** The URL of the run's shared server (started by the global setup, or a local one named in the env). */
export function sharedPostgresUrl(): string {
  const url = process.env[TEST_POSTGRES_URL_ENV];
  if (!url)
    throw new Error(
      `${TEST_POSTGRES_URL_ENV} is not set: run tests through vitest (its global setup starts PostgreSQL) or point it at a server`,
    );
  return url;
}

let counter = 0;

/** Creates an empty database on the shared server for this test file and returns its URL. */
export async function freshPostgresDatabase(label = 'test'): Promise<string> {
  const name = `${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${process.pid}_${Date.now()}_${counter++}`;
  return createDatabase(sharedPostgresUrl(), name);
}

/**
 * Creates database `name` on `adminUrl`'s server with byte-order collation, whatever the server's
 * default (a local server may default to en_US), and returns its URL.
 */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER libc LC_COLLATE 'C'`);
  } finally {
    await admin.end();
  }
  return databaseUrlOf(adminUrl, name);
}

/** The URL of database `name` on `adminUrl`'s server. */
export function databaseUrlOf(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** `url` reached through the server's Unix-domain socket: pg's `host` parameter names its directory. */
export function throughSocket(url: string, socketDir: string): string {
  const through = new URL(url);
  through.searchParams.set('host', socketDir);
  return through.toString();
}

/**
 * Set to `postgres` for the suite's PostgreSQL pass (the `postgres` project in vitest.config.ts): the
 * services that tests start then keep everything in PostgreSQL instead of SQLite files.
 */
export const TEST_STORE_ENV = 'BOXOFFICE_TEST_STORE';

const databasesByDataDir = new Map<string, Promise<string>>();

/**
 * In the PostgreSQL pass, `DATABASE_URL` for a service started on `dataDir`: one fresh database per data
 * directory, made on first use, so a service restarted on the same directory (crash and restart tests)
 * finds its data again. Outside that pass, or when the test sets `DATABASE_URL` itself, nothing.
 */
export async function testDatabaseEnv(
  env: Record<string, string>,
  dataDir: string,
): Promise<Record<string, string>> {
  if (process.env[TEST_STORE_ENV] !== 'postgres' || env.DATABASE_URL !== undefined) return {};
  let url = databasesByDataDir.get(dataDir);
  if (!url) {
    url = freshPostgresDatabase('service');
    databasesByDataDir.set(dataDir, url);
  }
  return { DATABASE_URL: await url };
}
