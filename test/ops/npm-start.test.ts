/**
 * `npm start` as a newcomer or a process supervisor runs it: the web app served at `/` with no other
 * step, and a SIGTERM to the npm process stops the service (npm passes the signal to its script's
 * process, which must be node itself, not a shell that ignores it and leaves node serving).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/process.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-npm-start-'));
let servicePid: number | undefined;
afterAll(() => {
  if (servicePid !== undefined && isAlive(servicePid)) process.kill(servicePid, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it('serves the web app at /, and stops the service when the npm process gets SIGTERM', async () => {
    const npm = spawn('npm', ['start'], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        HOST: '127.0.0.1',
        PORT: '0',
        DATA_DIR: dataDir,
        SEED_DEMO: 'false',
        WORKERS: '1',
        PARTITIONS: '4',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const npmExited = new Promise<void>((resolve) => npm.on('exit', () => resolve()));
    const port = await new Promise<number>((resolve, reject) => {
      void npmExited.then(() => reject(new Error('npm start exited before serving')));
      readline.createInterface({ input: npm.stdout! }).on('line', (line) => {
        if (!line.startsWith('{')) return; // npm's own banner
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'BoxOffice is serving') resolve(entry.port!);
      });
    });
    // The process holding the data directory is the one serving.
    servicePid = Number.parseInt(fs.readFileSync(path.join(dataDir, 'lock.pid'), 'utf8'), 10);
    expect(isAlive(servicePid)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    // The web app is there with no step of its own: `npm start` builds it when missing or stale.
    const page = await fetch(`http://127.0.0.1:${port}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app"></div>');

    npm.kill('SIGTERM');
    await npmExited;
    for (let attempt = 0; attempt < 200 && isAlive(servicePid); attempt++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(isAlive(servicePid)).toBe(false);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
