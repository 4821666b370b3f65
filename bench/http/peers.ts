/**
 * @module bench/http/peers
 * Starts the processes the service is compared with, each in its own process on a free loopback port:
 * the ceiling (bench/peers/ceiling.ts), the durable floor (bench/peers/durable-floor.ts), the two
 * seed-design peers and the redis-server they lock in
 * (started by the bench itself, no persistence, as test/helpers/redis.ts does for the tests).
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { JsonClient } from './client.js';
import { freePort, type Managed, type Processes, waitUntil } from './processes.js';

const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);

export type PeerName = 'express-getsetex' | 'hono-setnx';

export interface Peer {
  url: string;
  managed: Managed;
  stop(): Promise<void>;
}

async function startScript(
  procs: Processes,
  name: string,
  script: string,
  env: Record<string, string>,
): Promise<Peer> {
  const port = await freePort();
  const managed = procs.spawn(name, process.execPath, ['--import', 'tsx', path.join(ROOT, script)], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      PORT: String(port),
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const probe = new JsonClient(url, 1);
  try {
    await waitUntil(
      'readiness',
      managed,
      async () => (await probe.request('GET', '/healthz')).status === 200,
    );
  } catch (err) {
    await procs.stop(managed, 'SIGKILL');
    throw err;
  } finally {
    probe.close();
  }
  return { url, managed, stop: () => procs.stop(managed) };
}

/** The bare Hono app answering `bodyBytes` of JSON; with `isFeed`, also the fan-out ceiling. */
export function startCeiling(procs: Processes, bodyBytes: number, isFeed = false): Promise<Peer> {
  return startScript(procs, 'ceiling', 'bench/peers/ceiling.ts', {
    BODY_BYTES: String(Math.round(bodyBytes)),
    FEED: isFeed ? '1' : '0',
  });
}

/**
 * The floor of a durable hold (bench/peers/durable-floor.ts), its seats owned by a worker thread or by
 * the HTTP thread itself; its data in a temporary directory.
 */
export function startFloor(procs: Processes, holdBytes: number, owner: 'thread' | 'inline'): Promise<Peer> {
  return startScript(procs, `durable-floor-${owner}`, 'bench/peers/durable-floor.ts', {
    DATA_DIR: procs.tempDir('boxoffice-bench-floor-'),
    HOLD_BYTES: String(Math.round(holdBytes)),
    OWNER: owner,
  });
}

export function startSeedPeer(
  procs: Processes,
  name: PeerName,
  redisUrl: string,
  jwtSecret: string,
): Promise<Peer> {
  return startScript(procs, name, `bench/peers/${name}.ts`, { REDIS_URL: redisUrl, JWT_SECRET: jwtSecret });
}

export interface BenchRedis {
  url: string;
  pid: number | undefined;
  /** FLUSHALL, so each peer starts with no locks. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('redis: no reply')));
    socket.once('error', reject);
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.trim());
      }
    });
    socket.once('connect', () => socket.write(`${command}\r\n`));
  });
}

export async function startRedis(procs: Processes): Promise<BenchRedis> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    throw new Error('redis-server is not installed or not on PATH (apt-get install redis-server)');
  const dir = procs.tempDir('boxoffice-bench-redis-');
  const port = await freePort();
  const managed = procs.spawn('redis-server', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
  await waitUntil('PONG', managed, async () => (await redisCommand(port, 'PING')) === '+PONG', 10_000);
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: managed.child.pid,
    async flush() {
      const reply = await redisCommand(port, 'FLUSHALL');
      if (reply !== '+OK') throw new Error(`redis FLUSHALL: ${reply}`);
    },
    stop: () => procs.stop(managed),
  };
}
