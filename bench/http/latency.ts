/**
 * @module bench/http/latency
 * A latency histogram at 10 µs resolution: a map from rounded value to count, so it is exact enough for
 * p99 on loopback, merges across processes (plain entries over IPC) and stays small however many
 * samples it holds.
 */

/** Resolution: values are kept in units of 10 µs. */
const UNITS_PER_MS = 100;

export type HistogramEntries = [number, number][];

export class Latencies {
  readonly #counts = new Map<number, number>();
  #total = 0;

  get count(): number {
    return this.#total;
  }

  record(ms: number): void {
    const key = Math.max(0, Math.round(ms * UNITS_PER_MS));
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#total++;
  }

  merge(entries: HistogramEntries): void {
    for (const [key, count] of entries) {
      this.#counts.set(key, (this.#counts.get(key) ?? 0) + count);
      this.#total += count;
    }
  }

  entries(): HistogramEntries {
    return [...this.#counts];
  }

  /** The value at percentile `p` (0..100) in ms, 0 when empty. */
  percentile(p: number): number {
    if (this.#total === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#total));
    const keys = [...this.#counts.keys()].sort((a, b) => a - b);
    let seen = 0;
    for (const key of keys) {
      seen += this.#counts.get(key)!;
      if (seen >= rank) return key / UNITS_PER_MS;
    }
    return keys[keys.length - 1]! / UNITS_PER_MS;
  }

  summary(): { count: number; p50Ms: number; p99Ms: number; maxMs: number } {
    return {
      count: this.#total,
      p50Ms: round(this.percentile(50), 2),
      p99Ms: round(this.percentile(99), 2),
      maxMs: round(this.percentile(100), 2),
    };
  }
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
