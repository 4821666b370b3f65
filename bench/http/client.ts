/**
 * @module bench/http/client
 * A small keep-alive JSON client on node:http for what autocannon cannot express (setup through the
 * admin API, the hot-show race, paced holds under the feed). Each call resolves with the status, the
 * parsed body and its latency from the moment the request was handed to its socket.
 */
import http from 'node:http';
import { TEST_CARD } from './cycles.js';

/** Bound on one request; the bench must stop by itself even if the server hangs. */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface Reply<T = any> {
  status: number;
  body: T;
  bytes: number;
  ms: number;
}

export interface RequestOptions {
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
}

export class JsonClient {
  readonly #agent: http.Agent;
  readonly #host: string;
  readonly #port: number;

  constructor(baseUrl: string, maxSockets = 64) {
    const url = new URL(baseUrl);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise<Reply<T>>((resolve, reject) => {
      let started = performance.now();
      const req = http.request(
        { host: this.#host, port: this.#port, method, path, headers, agent: this.#agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const ms = performance.now() - started;
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json') && text) {
              try {
                body = JSON.parse(text);
              } catch {
                // Left as text: the caller sees the status.
              }
            }
            resolve({ status: res.statusCode ?? 0, body: body as T, bytes: Buffer.byteLength(text), ms });
          });
          res.on('error', reject);
        },
      );
      // Latency counts from the socket, not from the agent's queue.
      req.once('socket', () => {
        started = performance.now();
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Opens `count` sockets ahead of a measurement, so connection set-up is not in it. */
  async warm(count: number, path = '/healthz'): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.request('GET', path).catch(() => undefined)));
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** Runs `task` over `items` with at most `concurrency` at once; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}

/**
 * One whole booking by hand: hold `seat`, book it, pay by the test card. Throws, naming `what` and each
 * step's status, unless every step succeeded; returns the three replies.
 */
export async function bookOnce(
  client: JsonClient,
  showId: string,
  seat: string,
  token: string,
  what: string,
): Promise<[Reply, Reply, Reply]> {
  const held = await client.request('POST', `/api/shows/${showId}/holds`, { body: { seats: [seat] }, token });
  const booked = await client.request('POST', '/api/bookings', {
    body: { holdId: held.body?.hold?.id, paymentMethod: 'card' },
    token,
  });
  const paid = await client.request('POST', '/api/payments', {
    body: { bookingId: booked.body?.booking?.id, method: 'card', card: TEST_CARD },
    token,
  });
  if (held.status !== 201 || booked.status !== 201 || paid.status !== 200)
    throw new Error(
      `${what}: hold ${held.status}, book ${booked.status} ${JSON.stringify(booked.body)}, pay ${paid.status} ${JSON.stringify(paid.body)}`,
    );
  return [held, booked, paid];
}
