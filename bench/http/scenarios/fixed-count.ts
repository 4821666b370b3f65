/**
 * @module bench/http/scenarios/fixed-count
 * A fixed number of identical requests over a fixed number of keep-alive lanes: the ceiling's side of
 * the hot-show race, which has a count rather than a duration.
 */
import { JsonClient } from '../client.js';
import { Latencies } from '../latency.js';

export interface FixedCountResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export async function fixedCount(
  url: string,
  lanes: number,
  count: number,
  shape: { method: string; path: string; body?: unknown; token?: string },
): Promise<FixedCountResult> {
  const client = new JsonClient(url, lanes);
  const latencies = new Latencies();
  let errors = 0;
  let non2xx = 0;
  try {
    await client.warm(lanes);
    let next = 0;
    const started = performance.now();
    const lane = async () => {
      while (next++ < count) {
        const reply = await client.request(shape.method, shape.path, shape).catch(() => undefined);
        if (!reply) errors++;
        else {
          latencies.record(reply.ms);
          if (reply.status < 200 || reply.status >= 300) non2xx++;
        }
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
    const seconds = (performance.now() - started) / 1000;
    const { p50Ms, p99Ms } = latencies.summary();
    return { requestsPerSecond: Math.round(count / seconds), p50Ms, p99Ms, errors, non2xx };
  } finally {
    client.close();
  }
}
