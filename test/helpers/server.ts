/**
 * Starts the real service on a loopback port with a temporary data directory, and a tiny client for it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { type RunningServer, type StartOptions, startServer } from '../../src/server.js';
import { contractOf } from './openapi-contract.js';
import { testDatabaseEnv } from './postgres.js';

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
    // Likewise their holds; tests/integration/hold-limits.test.ts tests the budget itself.
    HOLDS_PER_ADDRESS_PER_MINUTE: '100000',
    ...env,
    ...(await testDatabaseEnv(env, dataDir)),
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

/**
 * A JSON client for the service. Every response is checked against the server's own /openapi.json
 * (status listed for the operation, JSON body matching its schema); a response that breaks the document
 * fails the call, and with it the test that made it.
 */
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
    const contentType = res.headers.get('content-type') ?? '';
    if (contentType.includes('json') && text) parsed = JSON.parse(text);
    if (method !== 'HEAD' && method !== 'OPTIONS') {
      const broken = (await contractOf(baseUrl)).check(method, urlPath, res.status, contentType, parsed);
      if (broken) throw new Error(`the response breaks the OpenAPI document: ${broken}`);
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
}
