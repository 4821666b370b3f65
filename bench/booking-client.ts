/**
 * @module bench/booking-client
 * What the per-booking benches (`fsyncs`, `booking-cpu`, `commits`) share: a plain JSON client for a
 * running service (no contract checking: it would load the client, not the service), test users, the
 * demo catalog's show ids, and the service started as its own process through the tests'
 * `spawnService` (optionally under a wrapper such as strace), with the process id of node itself.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO, type ServiceProcess, spawnService } from '../test/helpers/process.js';

export interface JsonReply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: bench code reads a few fields of replies it just asked for
  body: any;
}

export type Call = (method: string, route: string, body?: unknown, token?: string) => Promise<JsonReply>;

export function jsonClient(baseUrl: string): Call {
  return async (method, route, body, token) => {
    const res = await fetch(baseUrl + route, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => ({})) };
  };
}

/** Registers `count` users named after `label`, each with a phone (so bookings also send SMS). */
export async function registerUsers(call: Call, count: number, label: string): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const reg = await call('POST', '/api/register', {
      name: `${label} ${i}`,
      email: `${label.toLowerCase().replace(/\W+/g, '-')}-${i}@example.com`,
      password: 'a long enough passphrase',
      phone: `+9198765432${String(i % 100).padStart(2, '0')}`,
    });
    if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
    tokens.push(reg.body.token as string);
  }
  return tokens;
}

/** Every upcoming show of the catalog (the demo seed's, when the service seeded it). */
export async function upcomingShowIds(call: Call): Promise<string[]> {
  const movies = (await call('GET', '/api/movies')).body.movies as { id: string }[];
  const showIds: string[] = [];
  for (const movie of movies) {
    const { shows } = (await call('GET', `/api/movies/${movie.id}/shows`)).body as {
      shows: { id: string }[];
    };
    showIds.push(...shows.map((s) => s.id));
  }
  return showIds;
}

export interface BenchService {
  process: ServiceProcess;
  call: Call;
  /** node's own process id (with a wrapper, not the wrapper's), whose main thread has the same id. */
  nodePid: number;
  /** SIGTERM to node, then waits for the whole process tree to end. */
  stop(): Promise<void>;
}

/**
 * Starts the service from source as its own process, with the tests' defaults (loopback, per-address
 * limits raised: every bench client dials from 127.0.0.1) plus `env`.
 */
export async function startBenchService(options: {
  env: Record<string, string>;
  nodeArgs?: string[];
  wrapper?: string[];
}): Promise<BenchService> {
  const service = await spawnService({
    env: options.env,
    command: [...(options.nodeArgs ?? []), '--import', 'tsx', path.join(REPO, 'src/main.ts')],
    wrapper: options.wrapper,
    timeoutMs: 120_000,
  });
  const wrapperPid = service.child.pid!;
  const nodePid = options.wrapper
    ? Number(execFileSync('pgrep', ['-P', String(wrapperPid)], { encoding: 'utf8' }).trim())
    : wrapperPid;
  return {
    process: service,
    call: jsonClient(service.url),
    nodePid,
    async stop() {
      process.kill(nodePid, 'SIGTERM');
      await service.exited;
    },
  };
}
