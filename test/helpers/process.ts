/**
 * Runs the real service as a child process (`node --import tsx src/main.ts`, or the compiled build) and
 * reads its JSON log lines, so tests can signal it, kill it and restart it on the same data directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { testDatabaseEnv } from './postgres.js';

export const REPO = path.resolve(import.meta.dirname, '../..');

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  env: Record<string, string>;
  /** Defaults to the TypeScript source through tsx. */
  command?: string[];
  cwd?: string;
  /** How long to wait for "BoxOffice is serving". */
  timeoutMs?: number;
  /** A program that runs node with the given arguments, e.g. `['prlimit', '--nofile=300:300', '--']`. */
  wrapper?: string[];
}

export async function spawnService(options: SpawnOptions): Promise<ServiceProcess> {
  const command = options.command ?? ['--import', 'tsx', path.join(REPO, 'src/main.ts')];
  const [program, ...args] = [...(options.wrapper ?? []), process.execPath, ...command];
  const child = spawn(program!, args, {
    cwd: options.cwd ?? REPO,
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      // Every test client dials from 127.0.0.1: per-address limits are for people and have their own tests.
      REGISTER_MAX_PER_ADDRESS: '100000',
      HOLDS_PER_ADDRESS_PER_MINUTE: '100000',
      ...options.env,
      ...(await testDatabaseEnv(
        options.env,
        path.resolve(options.cwd ?? REPO, options.env.DATA_DIR ?? 'data'),
      )),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': it comes after the child's stdout is read to its end, so the last log lines
    // (such as "BoxOffice stopped") are in `logs` by then.
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`service did not start: ${stderr}`)),
      options.timeoutMs ?? 30_000,
    );
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === 'BoxOffice is serving') {
        clearTimeout(timer);
        resolve(entry.port as number);
      }
    });
    void exited.then(({ code }) =>
      reject(new Error(`service exited with ${code} before serving: ${stderr}`)),
    );
  });
  return { child, url: `http://127.0.0.1:${port}`, logs, exited };
}
