/**
 * Starting the real process: one process per data directory (a second one is turned away at once, and a
 * killed holder leaves no stale lock), a start that cannot listen or write says so in one line naming
 * the variable before it writes anything, the data directory is private, and the start log gives the
 * address of the docs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, type ServiceProcess, spawnService } from '../helpers/process.js';
import { client } from '../helpers/server.js';

const temporary: string[] = [];
const running: ServiceProcess[] = [];
const expectedToFail: ChildProcess[] = [];
afterAll(async () => {
  // A start that should have failed but serves must not outlive the suite.
  for (const child of expectedToFail) if (child.exitCode === null) child.kill('SIGKILL');
  for (const service of running) {
    service.child.kill('SIGKILL');
    await service.exited;
  }
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-startup-'));
  temporary.push(dir);
  return dir;
}

const ENV = { SEED_DEMO: 'false', WORKERS: '1', PARTITIONS: '4', JOURNAL_SYNC: 'normal' };

async function start(env: Record<string, string>): Promise<ServiceProcess> {
  const service = await spawnService({ env: { ...ENV, ...env } });
  running.push(service);
  return service;
}

/** Runs a start that is expected to fail: its exit code and what it wrote to stderr. */
function startExpectingFailure(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/main.ts')], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...ENV, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  expectedToFail.push(child);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr: stderr.trim() })));
}

function modesUnder(dir: string): Map<string, number> {
  const modes = new Map<string, number>([['.', fs.statSync(dir).mode & 0o777]]);
  for (const entry of fs.readdirSync(dir, { recursive: true }) as string[])
    modes.set(entry, fs.lstatSync(path.join(dir, entry)).mode & 0o777);
  return modes;
}

async function register(url: string): Promise<void> {
  const res = await client(url)('POST', '/api/register', {
    body: { name: 'Dana', email: `dana-${Date.now()}@example.com`, password: 'password-123' },
  });
  expect(res.status).toBe(201);
}

describe('one data directory, one process', () => {
  it('turns a second process away at once, naming the directory and the holder, while the first serves', async () => {
    const dataDir = tempDir();
    const first = await start({ DATA_DIR: dataDir });
    const second = await startExpectingFailure({ DATA_DIR: dataDir });
    expect(second.code).not.toBe(0);
    expect(second.stderr.split('\n')).toHaveLength(1);
    expect(second.stderr).toContain(`DATA_DIR=${dataDir}`);
    expect(second.stderr).toContain(`process ${first.child.pid}`);
    expect((await client(first.url)('GET', '/readyz')).status).toBe(200);
    await register(first.url);
  });

  it('lets a new process take the directory after the holder was killed with SIGKILL', async () => {
    const dataDir = tempDir();
    const first = await start({ DATA_DIR: dataDir });
    await register(first.url);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await start({ DATA_DIR: dataDir });
    expect((await client(second.url)('GET', '/readyz')).status).toBe(200);
    await register(second.url);
  });
});

describe('a start that cannot serve', () => {
  it('names PORT when the port is in use, and writes nothing to the data directory', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const dataDir = tempDir();
    try {
      const result = await startExpectingFailure({ DATA_DIR: dataDir, PORT: String(port) });
      expect(result.code).not.toBe(0);
      expect(result.stderr.split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(`PORT=${port}`);
      expect(fs.readdirSync(dataDir)).not.toContain('app.db');
      expect(fs.readdirSync(dataDir)).not.toContain('partitions');
    } finally {
      taken.close();
    }
  });

  it('names HOST when the address is not one of this machine', async () => {
    const dataDir = tempDir();
    // 192.0.2.0/24 is reserved for documentation: no machine has it.
    const result = await startExpectingFailure({ DATA_DIR: dataDir, HOST: '192.0.2.1' });
    expect(result.code).not.toBe(0);
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('HOST=192.0.2.1');
    expect(fs.readdirSync(dataDir)).not.toContain('app.db');
  });

  it('names DATA_DIR when the directory cannot be created', async () => {
    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const result = await startExpectingFailure({ DATA_DIR: path.join(file, 'data') });
    expect(result.code).not.toBe(0);
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`DATA_DIR=${path.join(file, 'data')}`);
  });
});

describe('a start whose PostgreSQL cannot be reached', () => {
  it('names DATABASE_URL without its password, in one line', async () => {
    // A loopback port nothing listens on: the connection is refused at once.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await startExpectingFailure({
      DATA_DIR: tempDir(),
      DATABASE_URL: `postgres://boxoffice:s3cret-word@127.0.0.1:${port}/boxoffice`,
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`DATABASE_URL=postgres://boxoffice:***@127.0.0.1:${port}/boxoffice`);
    expect(result.stderr).not.toContain('s3cret-word');
  });
});

describe('the data directory', () => {
  it('is created owner-only, with every file in it (WAL and shared memory included) 0600', async () => {
    const dataDir = path.join(tempDir(), 'nested', 'data');
    const service = await start({ DATA_DIR: dataDir });
    await register(service.url);
    const modes = modesUnder(dataDir);
    expect([...modes.keys()]).toEqual(expect.arrayContaining(['app.db', 'app.db-wal', 'app.db-shm']));
    expect([...modes.keys()].some((name) => name.startsWith(`partitions${path.sep}`))).toBe(true);
    expect([...modes.keys()].some((name) => name.startsWith(`log${path.sep}`))).toBe(true);
    for (const [name, mode] of modes) {
      const isDirectory = fs.statSync(path.join(dataDir, name)).isDirectory();
      expect({ name, mode: mode.toString(8) }).toEqual({ name, mode: isDirectory ? '700' : '600' });
    }
  });

  it('is tightened when an older version left it open to others', async () => {
    const dataDir = tempDir();
    const first = await start({ DATA_DIR: dataDir });
    await register(first.url);
    first.child.kill('SIGTERM');
    await first.exited;
    for (const name of ['.', ...modesUnder(dataDir).keys()]) {
      const file = path.join(dataDir, name);
      fs.chmodSync(file, fs.statSync(file).isDirectory() ? 0o755 : 0o644);
    }
    await start({ DATA_DIR: dataDir });
    for (const [name, mode] of modesUnder(dataDir))
      expect({ name, open: mode & 0o077 }).toEqual({ name, open: 0 });
  });
});

describe('the start log', () => {
  it('gives the address of the docs', async () => {
    const service = await start({ DATA_DIR: tempDir() });
    const serving = service.logs.find((l) => l.msg === 'BoxOffice is serving')!;
    expect(serving.docs).toBe(`${service.url}/docs`);
    expect((await fetch(serving.docs as string)).status).toBe(200);
  });
});
