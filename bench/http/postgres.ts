/**
 * @module bench/http/postgres
 * The PostgreSQL the benches run the service on: the tests' throwaway server (`startTestPostgres`:
 * initdb in a temp dir, loopback, fsync on), registered with the bench's process registry so it is
 * stopped by its pid with everything else. Fixtures are prepared once in a template database and each
 * scenario's service gets a clone (`CREATE DATABASE … TEMPLATE`), as SQLite's get a copy of the
 * template data directory. Also: the CPU time of the server's processes, for CPU per request.
 */
import fs from 'node:fs';
import pg from 'pg';
import {
  databaseUrlOf,
  startTestPostgres,
  type TestPostgres,
  throughSocket,
} from '../../test/helpers/postgres.js';
import type { Processes } from './processes.js';

export type StoreKind = 'sqlite' | 'postgres';
export type PostgresTransport = 'tcp' | 'socket';

export class BenchPostgres {
  #clones = 0;

  private constructor(
    readonly server: TestPostgres,
    readonly via: PostgresTransport,
  ) {}

  /**
   * Starts the server; the registry stops it at the end of the run, on Ctrl-C and on a crash. `via`: how
   * the services reach it (`urlOf`): TCP on loopback, as another machine would, or the server's
   * Unix-domain socket, as a service on the database's own machine would.
   */
  static async start(procs: Processes, via: PostgresTransport = 'tcp'): Promise<BenchPostgres> {
    const server = await startTestPostgres();
    const bench = new BenchPostgres(server, via);
    procs.onCleanup({
      stop: () => server.stop(),
      // On a synchronous exit only signals are possible: SIGQUIT is the postmaster's immediate
      // shutdown, which ends its backends too. Its temp dir stays (under /tmp/boxoffice-pg-*).
      killNow: () => {
        try {
          process.kill(server.pid, 'SIGQUIT');
        } catch {
          // Already gone.
        }
      },
    });
    return bench;
  }

  /** The URL a service is given, over TCP or through the socket (`via`). */
  urlOf(database: string): string {
    const url = databaseUrlOf(this.server.url, database);
    return this.via === 'socket' ? throughSocket(url, this.server.socketDir) : url;
  }

  async #admin(sql: string): Promise<void> {
    const client = new pg.Client({ connectionString: this.server.url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  /** An empty byte-order database, as the tests make (the service migrates it when it starts). */
  async createEmpty(name: string): Promise<string> {
    await this.#admin(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER libc LC_COLLATE 'C'`);
    return name;
  }

  /**
   * A copy of `template` (a file-level copy inside the server: fast, and nothing is re-registered).
   * The template must have no open connections: the service that filled it has been stopped.
   */
  async clone(template: string | undefined): Promise<string> {
    const name = `bench_run_${++this.#clones}`;
    if (template) await this.#admin(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    else await this.createEmpty(name);
    return name;
  }

  async drop(name: string): Promise<void> {
    await this.#admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }

  /** The postmaster and every process it started (backends, WAL writer, checkpointer, …). */
  pids(): number[] {
    return [this.server.pid, ...childrenOf(this.server.pid)];
  }
}

/** The pids of a process's children, from /proc. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command may hold spaces and parentheses: the fields after the last ')' are fixed.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

/** CPU seconds (user + system) by pid, for the pids that still exist. */
export function cpuByPid(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const seconds = statCpu(`/proc/${pid}/stat`);
    if (seconds !== undefined) out.set(pid, seconds);
  }
  return out;
}

/**
 * CPU seconds by thread of one process (`/proc/PID/task/*`): `main` for the main thread, `name:tid` for
 * the others (Node's shard workers, libuv's pool and V8's helpers are all named `node` by Linux).
 */
export function cpuByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    const file = `/proc/${pid}/task/${tid}/stat`;
    let name = '?';
    try {
      const stat = fs.readFileSync(file, 'utf8');
      name =
        tid === String(pid) ? 'main' : `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}:${tid}`;
    } catch {
      continue;
    }
    const seconds = statCpu(file);
    if (seconds !== undefined) out.set(name, (out.get(name) ?? 0) + seconds);
  }
  return out;
}

function statCpu(file: string): number | undefined {
  try {
    const stat = fs.readFileSync(file, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** What went up between two readings of the same keys (keys new in `after` count from 0). */
export function cpuDelta<K>(before: Map<K, number>, after: Map<K, number>): Map<K, number> {
  const out = new Map<K, number>();
  for (const [key, value] of after) out.set(key, value - (before.get(key) ?? 0));
  return out;
}
