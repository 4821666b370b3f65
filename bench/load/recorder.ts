/**
 * @module bench/load/recorder
 * What a run measures while it runs: every response's latency (overall, per second for the timeline,
 * and per step kind such as `hold` or `pay`), status counts, and error kinds (`409 SEATS_UNAVAILABLE`
 * from the error body, `timeout` or `ECONNRESET` from the socket). The progress bar reads it too.
 */
import { Latencies, round } from '../http/latency.js';

/** Seconds kept in the timeline; a run is shorter (its deadline is bounded by LIMITS.seconds). */
const MAX_TIMELINE_SECONDS = 3_600;
/** Distinct error kinds kept; more are counted under `other`. */
const MAX_ERROR_KINDS = 50;

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface TimelinePoint extends LatencySummary {
  second: number;
  errors: number;
}

interface Second {
  latencies: Latencies;
  errors: number;
}

export function summarise(latencies: Latencies): LatencySummary {
  return {
    count: latencies.count,
    p50Ms: round(latencies.percentile(50), 2),
    p90Ms: round(latencies.percentile(90), 2),
    p99Ms: round(latencies.percentile(99), 2),
    maxMs: round(latencies.percentile(100), 2),
  };
}

/** The error code of a contract error body, without parsing bodies that cannot hold one. */
function errorCodeOf(body: string): string | undefined {
  if (!body.startsWith('{"error"')) return undefined;
  try {
    return (JSON.parse(body) as { error: { code?: string } }).error.code;
  } catch {
    return undefined;
  }
}

export class Recorder {
  readonly latencies = new Latencies();
  readonly statuses: Record<string, number> = {};
  readonly errorKinds: Record<string, number> = {};
  readonly steps = new Map<string, { latencies: Latencies; statuses: Record<string, number> }>();
  readonly #seconds: Second[] = [];
  #startedAt = performance.now();
  responses = 0;
  /** Transport failures (connection errors, timeouts): no response at all. */
  transportErrors = 0;
  /** Responses that were not 2xx. */
  non2xx = 0;

  /** Starts the clock of the timeline (after the warm-up). */
  start(): void {
    this.#startedAt = performance.now();
  }

  get elapsedSeconds(): number {
    return (performance.now() - this.#startedAt) / 1000;
  }

  #second(): Second {
    const i = Math.min(MAX_TIMELINE_SECONDS - 1, Math.floor(this.elapsedSeconds));
    for (let k = this.#seconds.length; k <= i; k++)
      this.#seconds.push({ latencies: new Latencies(), errors: 0 });
    return this.#seconds[i]!;
  }

  /** One response, from autocannon's response event (its latency is taken at the socket). */
  response(status: number, ms: number): void {
    this.responses++;
    this.latencies.record(ms);
    const second = this.#second();
    second.latencies.record(ms);
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    if (status < 200 || status >= 300) {
      this.non2xx++;
      second.errors++;
    }
  }

  /** One response to a step of a journey: its kind, latency from when it was built, and error code. */
  step(kind: string, status: number, ms: number, body: string): void {
    let step = this.steps.get(kind);
    if (!step) {
      step = { latencies: new Latencies(), statuses: {} };
      this.steps.set(kind, step);
    }
    step.latencies.record(ms);
    step.statuses[status] = (step.statuses[status] ?? 0) + 1;
    if (status >= 300) this.#errorKind(`${status} ${errorCodeOf(body) ?? ''}`.trim());
  }

  transportError(err: Error & { code?: string }): void {
    this.transportErrors++;
    this.#second().errors++;
    this.#errorKind(err.code ?? (err.message.includes('timed out') ? 'timeout' : err.message.slice(0, 60)));
  }

  #errorKind(kind: string): void {
    const key =
      kind in this.errorKinds || Object.keys(this.errorKinds).length < MAX_ERROR_KINDS ? kind : 'other';
    this.errorKinds[key] = (this.errorKinds[key] ?? 0) + 1;
  }

  /** Responses per second over the last whole second, for the progress bar. */
  currentRate(): number {
    const i = Math.floor(this.elapsedSeconds);
    return i >= 1 ? (this.#seconds[i - 1]?.latencies.count ?? 0) : this.responses;
  }

  timeline(): TimelinePoint[] {
    return this.#seconds.map((s, second) => ({ second, errors: s.errors, ...summarise(s.latencies) }));
  }
}
