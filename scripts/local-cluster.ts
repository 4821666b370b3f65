/**
 * A BoxOffice cluster on this machine: N nodes on loopback ports sharing one PostgreSQL database (the
 * one DATABASE_URL names, or a throwaway PostgreSQL 15 started here like the tests'), the secrets every
 * node must share (generated once into `<data>/secrets.env`, mode 0600), and optionally nginx in front
 * with deploy/nginx.conf rendered for these ports. `npm run cluster` (scripts/cluster.ts) and the
 * cluster bench use it. Everything it starts it stops by process id.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import pg from 'pg';
import { balancerWeights } from '../src/cluster/placement.js';
import {
  createDatabase,
  databaseUrlOf,
  startTestPostgres,
  type TestPostgres,
} from '../test/helpers/postgres.js';

export const REPO = path.resolve(import.meta.dirname, '..');
const NODE_START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export interface LocalClusterOptions {
  nodes: number;
  /** nginx listens here; node i (from 1) on basePort + i unless `nodePorts` names them. */
  basePort: number;
  nodePorts?: number[];
  dataRoot: string;
  databaseUrl?: string;
  nginx: boolean;
  /** Extra environment for every node. */
  env?: Record<string, string>;
  /** Where each node's log lines go (default: `<dataRoot>/<node>.log`). */
  logTo?: 'files' | 'ignore';
}

export interface LocalNode {
  id: string;
  port: number;
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

export interface LocalCluster {
  nodes: LocalNode[];
  /** nginx's URL, when it runs; else the first node's. */
  url: string;
  databaseUrl: string;
  nginxPid?: number;
  /** Starts node `index` again after it stopped (same id, port and data directory). */
  restart(index: number): Promise<LocalNode>;
  stop(): Promise<void>;
}

/** nginx's program: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH). */
export function nginxBinary(): string | undefined {
  for (const candidate of ['nginx', '/usr/sbin/nginx'])
    try {
      execFileSync(candidate, ['-v'], { stdio: 'ignore' });
      return candidate;
    } catch {}
  return undefined;
}

/** The secrets a cluster's nodes share, as environment variables. */
export function generateSecrets(): Record<string, string> {
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    JWT_SECRET: crypto.randomBytes(32).toString('base64url'),
    CLUSTER_SECRET: crypto.randomBytes(32).toString('base64url'),
    TICKET_SIGNING_KEY: JSON.stringify({ ...jwk, kid: `k-${crypto.randomBytes(4).toString('hex')}` }),
  };
}

/** `KEY='value'` lines, as a .env file (and docker compose) reads them. */
export function secretsEnvText(secrets: Record<string, string>): string {
  return `${Object.entries(secrets)
    .map(([key, value]) => `${key}='${value}'`)
    .join('\n')}\n`;
}

function loadSecrets(dataRoot: string): Record<string, string> {
  const file = path.join(dataRoot, 'secrets.env');
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, secretsEnvText(generateSecrets()), { mode: 0o600 });
  }
  const secrets: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z_]+)='(.*)'$/.exec(line);
    if (match) secrets[match[1]!] = match[2]!;
  }
  return secrets;
}

/** The database `name` on `adminUrl`'s server, created when missing. */
async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const { rowCount } = await admin
    .query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    .finally(() => admin.end());
  return rowCount ? databaseUrlOf(adminUrl, name) : createDatabase(adminUrl, name);
}

/** deploy/nginx.conf with these nodes' loopback ports, this port, and files under `dir`. */
/**
 * deploy/nginx.conf for nodes on loopback ports: the servers in NODE_ID order, each weighted by its home
 * range of the cluster's `partitions`, so nginx sends a show's requests to the node that owns it.
 */
export function renderNginxConf(
  nodes: { id: string; port: number }[],
  partitions: number,
  listenPort: number,
  dir: string,
): string {
  let conf = fs.readFileSync(path.join(REPO, 'deploy/nginx.conf'), 'utf8');
  const portOf = new Map(nodes.map((n) => [n.id, n.port]));
  const servers = balancerWeights(
    nodes.map((n) => n.id),
    partitions,
  )
    .map(
      ({ node, weight }) =>
        `    server 127.0.0.1:${portOf.get(node)} weight=${weight} max_fails=1 fail_timeout=2s;`,
    )
    .join('\n');
  conf = conf.replace(/( {4}server node\d+:3000[^\n]*\n)+/, `${servers}\n`);
  conf = conf.replace('listen 3000;', `listen 127.0.0.1:${listenPort};`);
  conf = conf.replaceAll('/tmp/boxoffice-nginx', path.join(dir, 'nginx'));
  // Run by root, nginx's workers would otherwise be `nobody`, who cannot enter the data directory.
  if (process.getuid?.() === 0) conf = `user root;\n${conf}`;
  return conf;
}

function spawnNode(
  id: string,
  port: number,
  env: Record<string, string>,
  dataRoot: string,
  logTo: 'files' | 'ignore',
): Promise<LocalNode> {
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    ['--max-semi-space-size=64', '--import', 'tsx', path.join(REPO, 'src/main.ts')],
    {
      cwd: REPO,
      env: {
        PATH: process.env.PATH,
        HOST: '127.0.0.1',
        PORT: String(port),
        NODE_ID: id,
        ADVERTISE_URL: url,
        DATA_DIR: path.join(dataRoot, id),
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const log =
    logTo === 'files' ? fs.createWriteStream(path.join(dataRoot, `${id}.log`), { flags: 'a' }) : undefined;
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
    log?.write(d);
  });
  readline.createInterface({ input: child.stdout! }).on('line', (line) => log?.write(`${line}\n`));
  let isExited = false;
  void exited.then(() => {
    isExited = true;
  });
  // Serving once it answers: it listens only when recovered and in the cluster (any LOG_LEVEL).
  return waitForHttp(`${url}/healthz`, NODE_START_TIMEOUT_MS, () => isExited).then(
    () => ({ id, port, url, child, exited }),
    (err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${id} did not start (${err.message}): ${stderr}`);
    },
  );
}

async function stopChild(
  child: ChildProcess,
  exited: Promise<unknown>,
  signal: NodeJS.Signals,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  fs.mkdirSync(options.dataRoot, { recursive: true, mode: 0o700 });
  const logTo = options.logTo ?? 'files';
  let postgres: TestPostgres | undefined;
  let databaseUrl = options.databaseUrl;
  if (!databaseUrl) {
    postgres = await startTestPostgres();
    databaseUrl = await ensureDatabase(postgres.url, 'boxoffice');
  }
  const env = { ...loadSecrets(options.dataRoot), DATABASE_URL: databaseUrl, ...options.env };
  const nodes: LocalNode[] = [];
  let nginx: { child: ChildProcess; exited: Promise<unknown> } | undefined;
  const stop = async () => {
    // SIGTERM: nginx's fast stop (SIGQUIT would wait for every open WebSocket to close).
    if (nginx) await stopChild(nginx.child, nginx.exited, 'SIGTERM');
    // One at a time: each hands its partitions to the nodes still running.
    for (const node of nodes.slice().reverse()) await stopChild(node.child, node.exited, 'SIGTERM');
    await postgres?.stop();
  };
  try {
    const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    // The first node creates the schema and the demo catalog; the others join it.
    const portOf = (i: number) => options.nodePorts?.[i] ?? options.basePort + 1 + i;
    nodes.push(await spawnNode(ids[0]!, portOf(0), env, options.dataRoot, logTo));
    const others = await Promise.all(
      ids
        .slice(1)
        .map((id, i) =>
          spawnNode(id, portOf(i + 1), { ...env, SEED_DEMO: 'false' }, options.dataRoot, logTo),
        ),
    );
    nodes.push(...others);
    if (options.nginx) {
      const dir = path.join(options.dataRoot, 'nginx');
      fs.mkdirSync(dir, { recursive: true });
      const conf = path.join(dir, 'nginx.conf');
      fs.writeFileSync(
        conf,
        renderNginxConf(nodes, await storedPartitions(databaseUrl), options.basePort, options.dataRoot),
      );
      const nginxProgram = nginxBinary();
      if (!nginxProgram) throw new Error('nginx is not installed (apt-get install nginx)');
      execFileSync(nginxProgram, ['-t', '-q', '-p', dir, '-c', conf], { stdio: 'pipe' });
      const child = spawn(nginxProgram, ['-p', dir, '-c', conf, '-g', 'daemon off;'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const exited = new Promise((resolve) => child.on('close', resolve));
      nginx = { child, exited };
      await waitForHttp(`http://127.0.0.1:${options.basePort}/healthz`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes,
    url: nginx ? `http://127.0.0.1:${options.basePort}` : nodes[0]!.url,
    databaseUrl,
    nginxPid: nginx?.child.pid,
    async restart(index) {
      const old = nodes[index]!;
      const node = await spawnNode(old.id, old.port, { ...env, SEED_DEMO: 'false' }, options.dataRoot, logTo);
      nodes[index] = node;
      return node;
    },
    stop,
  };
}

/** The cluster's partition count, as its seat store fixed it (PARTITIONS may differ from it). */
async function storedPartitions(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ partitions: number }>(
      'SELECT partitions FROM seat_meta WHERE id = 1',
    );
    return rows[0]!.partitions;
  } finally {
    await client.end();
  }
}

async function waitForHttp(url: string, timeoutMs = 10_000, isGone = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (isGone()) throw new Error('it exited');
    try {
      const res = await fetch(url);
      await res.text();
      if (res.status < 500) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
