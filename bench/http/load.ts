/**
 * @module bench/http/load
 * autocannon, the load generator, run in this process: a warm-up that is thrown away, then the
 * measured run. Latency is taken from autocannon's per-response event (sub-millisecond), not its
 * whole-millisecond histogram, so loopback p50s stay readable.
 */
import autocannon from 'autocannon';
import { Latencies, round } from './latency.js';
import { cpuByPid, cpuByThread, cpuDelta } from './postgres.js';
import { cpuSeconds } from './processes.js';

export interface LoadOptions {
  url: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  requests: autocannon.Request[];
  /** Called between the warm-up and the measured run (e.g. to reset counters). */
  onMeasureStart?: () => void;
  /** The server's processes (its own, and e.g. its Redis), for their CPU time per request. */
  pids?: (number | undefined)[];
  /**
   * Processes that come and go with the server's work (PostgreSQL's backends), read when each slice
   * starts and ends; their CPU counts in `cpuMsPerRequest` and on its own in `extraCpuMsPerRequest`.
   */
  extraPids?: () => number[];
  /** A process whose CPU to break down by thread name (`threadCpuMsPerRequest`). */
  threadsOf?: number;
}

export interface LoadResult {
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors and timeouts. */
  errors: number;
  non2xx: number;
  statuses: Record<string, number>;
  /** The server process's CPU time per response (all its threads), when /proc has it. */
  cpuMsPerRequest?: number;
  /** Of which the `extraPids` (e.g. the PostgreSQL server). */
  extraCpuMsPerRequest?: number;
  /** The `threadsOf` process's CPU per response, by thread name. */
  threadCpuMsPerRequest?: Record<string, number>;
}

function runOnce(options: LoadOptions, seconds: number, latencies?: Latencies): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: seconds,
        timeout: 10,
        requests: options.requests,
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    if (latencies)
      instance.on('response', (_client, _status, _bytes, ms) => {
        latencies.record(ms);
      });
  });
}

/** What one target accumulates over its measured slices. */
class Tally {
  readonly latencies = new Latencies();
  seconds = 0;
  errors = 0;
  non2xx = 0;
  cpuSeconds: number | undefined = 0;
  extraCpuSeconds?: number;
  readonly threadCpuSeconds = new Map<string, number>();
  readonly statuses: Record<string, number> = {};

  async measure(options: LoadOptions, seconds: number): Promise<void> {
    const cpuBefore = cpuSeconds(options.pids);
    const extraBefore = options.extraPids ? cpuByPid(options.extraPids()) : undefined;
    const threadsBefore = options.threadsOf ? cpuByThread(options.threadsOf) : undefined;
    const result = await runOnce(options, seconds, this.latencies);
    const cpuAfter = cpuSeconds(options.pids);
    if (extraBefore && options.extraPids) {
      const pids = new Set([...extraBefore.keys(), ...options.extraPids()]);
      const delta = cpuDelta(extraBefore, cpuByPid([...pids]));
      this.extraCpuSeconds = (this.extraCpuSeconds ?? 0) + [...delta.values()].reduce((a, b) => a + b, 0);
    }
    if (threadsBefore && options.threadsOf)
      for (const [name, value] of cpuDelta(threadsBefore, cpuByThread(options.threadsOf)))
        this.threadCpuSeconds.set(name, (this.threadCpuSeconds.get(name) ?? 0) + value);
    this.seconds += result.duration;
    this.errors += result.errors;
    this.non2xx += result.non2xx;
    for (const [code, stat] of Object.entries(result.statusCodeStats ?? {}))
      this.statuses[code] = (this.statuses[code] ?? 0) + (stat.count ?? 0);
    this.cpuSeconds =
      cpuBefore === undefined || cpuAfter === undefined || this.cpuSeconds === undefined
        ? undefined
        : this.cpuSeconds + cpuAfter - cpuBefore;
  }

  result(): LoadResult {
    const requests = this.latencies.count;
    const perRequest = (cpu: number) => round((cpu * 1000) / Math.max(1, requests), 3);
    const extra = this.extraCpuSeconds ?? 0;
    return {
      seconds: round(this.seconds, 2),
      requests,
      requestsPerSecond: Math.round(requests / Math.max(0.001, this.seconds)),
      p50Ms: round(this.latencies.percentile(50), 2),
      p99Ms: round(this.latencies.percentile(99), 2),
      errors: this.errors,
      non2xx: this.non2xx,
      statuses: this.statuses,
      cpuMsPerRequest:
        this.cpuSeconds === undefined || requests === 0 ? undefined : perRequest(this.cpuSeconds + extra),
      extraCpuMsPerRequest: this.extraCpuSeconds === undefined ? undefined : perRequest(extra),
      threadCpuMsPerRequest:
        this.threadCpuSeconds.size === 0
          ? undefined
          : Object.fromEntries(
              [...this.threadCpuSeconds]
                .filter(([, cpu]) => cpu > 0)
                .sort((a, b) => b[1] - a[1])
                .map(([name, cpu]) => [name, perRequest(cpu)]),
            ),
    };
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (options.warmupSeconds > 0) await runOnce(options, options.warmupSeconds);
  options.onMeasureStart?.();
  const tally = new Tally();
  await tally.measure(options, options.seconds);
  return tally.result();
}

/** Seconds per slice when the service and its ceiling take turns. */
export const PAIRED_SLICE_SECONDS = 2;

/**
 * The service and its ceiling (and any other target), all running, measured in turns: slices of the
 * same total length, one target after the other. Whatever else the machine is doing meanwhile weighs on
 * each alike, so their ratios hold up on a busy machine better than runs one after the other.
 */
export async function runInTurns(targets: LoadOptions[]): Promise<LoadResult[]> {
  for (const options of targets) if (options.warmupSeconds > 0) await runOnce(options, options.warmupSeconds);
  for (const options of targets) options.onMeasureStart?.();
  const slices = Math.max(1, Math.round(targets[0]!.seconds / PAIRED_SLICE_SECONDS));
  const tallies = targets.map(() => new Tally());
  for (let i = 0; i < slices; i++)
    for (const [n, options] of targets.entries())
      await tallies[n]!.measure(options, options.seconds / slices);
  return tallies.map((tally) => tally.result());
}

/** The service and its ceiling in turns. */
export async function runPaired(
  service: LoadOptions,
  ceiling: LoadOptions,
): Promise<[LoadResult, LoadResult]> {
  const [a, b] = await runInTurns([service, ceiling]);
  return [a!, b!];
}
