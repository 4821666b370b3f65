/**
 * @module bench/http/processes
 * Every process and temporary directory the HTTP bench creates goes through one registry, so each is
 * stopped and removed at the end, on Ctrl-C and on a crash of the bench itself. Children are spawned
 * in their own process group and killed by group, by pid: nothing is killed by name.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** How much of a child's stderr is kept for the error message when it dies. */
const STDERR_TAIL_BYTES = 8192;
/** Bound on a graceful stop before SIGKILL. */
export const STOP_TIMEOUT_MS = 15_000;

export interface Managed {
  name: string;
  child: ChildProcess;
  /** The last bytes the child wrote to stderr. */
  stderrTail(): string;
  exited: Promise<void>;
}

/** Something started outside `spawn` (e.g. the PostgreSQL server, which starts itself). */
export interface Cleanup {
  stop(): Promise<void>;
  /** Synchronous, for `process.on('exit')`: signals only. */
  killNow(): void;
}

export class Processes {
  readonly #children = new Set<Managed>();
  readonly #dirs = new Set<string>();
  readonly #cleanups = new Set<Cleanup>();

  /** Registers what `stopAll` stops (after the children, which may be its clients) and `killAllNow` kills. */
  onCleanup(cleanup: Cleanup): void {
    this.#cleanups.add(cleanup);
  }

  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): Managed {
    const child = spawn(command, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...options,
      detached: true,
    });
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-STDERR_TAIL_BYTES);
    });
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    const managed: Managed = { name, child, stderrTail: () => tail, exited };
    this.#children.add(managed);
    void exited.then(() => this.#children.delete(managed));
    return managed;
  }

  /** SIGTERM (or `signal`), then SIGKILL to the whole group after the timeout. */
  async stop(
    managed: Managed,
    signal: NodeJS.Signals = 'SIGTERM',
    timeoutMs = STOP_TIMEOUT_MS,
  ): Promise<void> {
    if (managed.child.exitCode !== null || managed.child.signalCode !== null) return;
    killGroup(managed.child, signal);
    const timer = setTimeout(() => killGroup(managed.child, 'SIGKILL'), timeoutMs);
    await managed.exited;
    clearTimeout(timer);
    // Anything the child left in its group (it should be nothing) goes too.
    killGroup(managed.child, 'SIGKILL');
  }

  tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.#dirs.add(dir);
    return dir;
  }

  removeDir(dir: string): void {
    fs.rmSync(dir, { recursive: true, force: true });
    this.#dirs.delete(dir);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#children].map((m) => this.stop(m, 'SIGTERM', 5000)));
    for (const cleanup of [...this.#cleanups]) {
      this.#cleanups.delete(cleanup);
      await cleanup.stop().catch(() => cleanup.killNow());
    }
    for (const dir of [...this.#dirs]) this.removeDir(dir);
  }

  /** For `process.on('exit')`: synchronous, so only signals and rm. */
  killAllNow(): void {
    for (const managed of this.#children) killGroup(managed.child, 'SIGKILL');
    for (const cleanup of this.#cleanups) cleanup.killNow();
    for (const dir of this.#dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it is true, the child exits, or the deadline passes. */
export async function waitUntil(
  what: string,
  managed: Managed,
  probe: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (managed.child.exitCode !== null || managed.child.signalCode !== null)
      throw new Error(`${managed.name} exited before ${what}:\n${managed.stderrTail()}`);
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${managed.name}: no ${what} within ${timeoutMs} ms:\n${managed.stderrTail()}`);
}

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc; undefined where
 * there is no /proc. The bench reports CPU per request, which other load on the machine skews far less
 * than requests per second.
 */
export function cpuSeconds(pids: (number | undefined)[] | undefined): number | undefined {
  if (!pids || pids.length === 0) return undefined;
  let ticks = 0;
  for (const pid of pids) {
    if (pid === undefined) return undefined;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Fields 14 and 15 of stat(5) (utime, stime), counted from after the command name.
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return undefined;
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux the bench is meant for (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Runs a bench's `main` with a process registry of its own and exits: whatever happens (an error,
 * Ctrl-C or SIGTERM), nothing the bench started outlives it, and stray handles (a socket in a
 * keep-alive pool) do not keep a finished bench alive. `isInterrupted` tells a long `main` to stop
 * starting new work.
 */
export async function runBench(
  main: (procs: Processes, isInterrupted: () => boolean) => Promise<void>,
): Promise<never> {
  const procs = new Processes();
  let isInterrupted = false;
  process.on('exit', () => procs.killAllNow());
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      isInterrupted = true;
      console.error(`\n${signal}: stopping everything the bench started…`);
      void procs.stopAll().finally(() => process.exit(130));
    });
  try {
    await main(procs, () => isInterrupted);
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  } finally {
    await procs.stopAll();
  }
  process.exit();
}
