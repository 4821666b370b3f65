/**
 * @module bench/http/service
 * Starts the real service the way production runs it: the compiled build (`node dist/src/main.js`),
 * `npm start`'s defaults (workers, partitions, snapshot interval), with JOURNAL_SYNC=full, a temporary
 * data directory, loopback and a free port, no demo catalog, warn-level logs, and an admin account so
 * the bench can build its catalog through the admin API. Ready means `GET /readyz` answered 200.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { JsonClient } from './client.js';
import { freePort, type Managed, type Processes, waitUntil } from './processes.js';

export const ADMIN = { email: 'bench-admin@boxoffice.test', password: 'bench-admin-password-1' };
const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);
const ENTRY = path.join(ROOT, 'dist/src/main.js');

export interface ServiceOptions {
  dataDir: string;
  jwtSecret: string;
  /** Write a V8 CPU profile of the service (main thread and workers) into this directory. */
  cpuProfDir?: string;
  env?: Record<string, string>;
}

export interface Service {
  url: string;
  managed: Managed;
  /** SIGTERM: the service drains, snapshots its journals and exits (which writes any CPU profile). */
  stop(): Promise<void>;
}

/**
 * `npm run build`, once per bench run, so the measured code is the code in the tree. tsc emits even
 * when it reports type errors; the run goes on with a warning then, since the figures are still those
 * of the tree's code.
 */
export function buildService(warn: (line: string) => void): void {
  try {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const out = String((err as { stdout?: Buffer }).stdout ?? '').trim();
    warn(`warning: npm run build reported errors; measuring what it emitted:\n${out.slice(0, 2000)}`);
  }
  if (!fs.existsSync(ENTRY)) throw new Error(`the build did not produce ${ENTRY}`);
}

/** The environment the service sees: only what it needs, so the caller's shell cannot skew a run. */
function serviceEnv(port: number, options: ServiceOptions): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: options.dataDir,
    JOURNAL_SYNC: 'full',
    SEED_DEMO: 'false',
    LOG_LEVEL: 'warn',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    JWT_SECRET: options.jwtSecret,
    // Tokens are registered once per bench run and reused by every scenario's service.
    JWT_TTL_SECONDS: String(6 * 3600),
    // The fan-out scenario's thousands of subscribers all dial from loopback: one client address.
    WS_MAX_FEEDS_PER_ADDRESS: '100000',
    // Thousands of users are registered from one loopback address: the per-address limit is for people.
    REGISTER_MAX_PER_ADDRESS: '1000000',
    // Likewise every hold of a run comes from loopback: at the default 60 a minute, no booking completes.
    HOLDS_PER_ADDRESS_PER_MINUTE: '1000000',
    ...options.env,
  };
}

export async function startService(procs: Processes, options: ServiceOptions): Promise<Service> {
  const port = await freePort();
  // As `npm run start:prod` and the Dockerfile run it (64 MB semi-spaces: see docs/ARCHITECTURE.md).
  const nodeArgs = ['--max-semi-space-size=64'];
  if (options.cpuProfDir) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', options.cpuProfDir);
  nodeArgs.push(ENTRY);
  const managed = procs.spawn('service', process.execPath, nodeArgs, {
    cwd: ROOT,
    env: serviceEnv(port, options),
  });
  const url = `http://127.0.0.1:${port}`;
  const probe = new JsonClient(url, 1);
  try {
    await waitUntil('readiness', managed, async () => (await probe.request('GET', '/readyz')).status === 200);
  } catch (err) {
    await procs.stop(managed, 'SIGKILL');
    throw err;
  } finally {
    probe.close();
  }
  return { url, managed, stop: () => procs.stop(managed) };
}

/** A copy of a data directory (the registered users), so each scenario starts from the same state. */
export function cloneDataDir(procs: Processes, template: string): string {
  const dir = procs.tempDir('boxoffice-bench-');
  fs.cpSync(template, dir, { recursive: true });
  return dir;
}
