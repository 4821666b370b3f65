/**
 * @module test/helpers/redis
 * A real, throwaway redis-server for tests: a free loopback port, a temp dir, no persistence. `kill()`
 * SIGKILLs it (data gone, as after a crash without persistence); `restart()` brings it back on the same
 * port so clients reconnect to the same URL.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../bench/http/processes.js';

export interface TestRedis {
  url: string;
  port: number;
  /** SIGKILL, like a crash. The port stays reserved for restart(). */
  kill(): Promise<void>;
  /** Starts again on the same port (killing the running one first) and waits for PING. */
  restart(): Promise<void>;
  /** Stops for good and removes the temp dir. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

export async function startTestRedis(): Promise<TestRedis> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    throw new Error(
      'redis-server is not installed or not on PATH; install it (apt-get install redis-server) to run these tests',
    );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const exited = (proc: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });

  async function start(): Promise<void> {
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    child = proc;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null)
        throw new Error(`redis-server exited with ${proc.exitCode} on port ${port}`);
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill('SIGKILL');
    throw new Error(`redis-server did not answer PING on port ${port} within ${READY_TIMEOUT_MS} ms`);
  }

  async function kill(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc) return;
    proc.kill('SIGKILL');
    await exited(proc);
  }

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
