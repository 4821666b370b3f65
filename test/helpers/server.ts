/**
 * Starts the real service on a loopback port with a temporary data directory, and a tiny client for it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { type RunningServer, type StartOptions, startServer } from '../../src/server.js';

export interface TestServer extends RunningServer {
  dataDir: string;
  api: Api;
  /** Stops the server and deletes its data directory. */
  destroy(): Promise<void>;
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export type Api = <T = any>(
  method: string,
  path: string,
  options?: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string },
) => Promise<ApiResponse<T>>;

export async function startTestServer(
  env: Record<string, string> = {},
  options: StartOptions = {},
): Promise<TestServer> {
  const dataDir = env.DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-'));
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    WORKERS: '1',
    PARTITIONS: '8',
    SEED_DEMO: 'false',
    LOG_LEVEL: 'silent',
    JOURNAL_SYNC: 'normal',
    JWT_SECRET: 'test-secret-test-secret-test-secret-0123',
    // Every test registers its users from 127.0.0.1; the per-address limit has tests of its own.
    REGISTER_MAX_PER_ADDRESS: '100000',
    ...env,
  });
  const running = await startServer(config, options);
  const api = client(running.url);
  return {
    ...running,
    dataDir,
    api,
    async destroy() {
      await running.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function client(baseUrl: string): Api {
  return async (method, urlPath, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    } else if (body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(baseUrl + urlPath, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
}
