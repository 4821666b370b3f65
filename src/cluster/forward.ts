/**
 * @module forward
 * Any node answers any request: a command or read for a partition served elsewhere is sent to its
 * owner over keep-alive HTTP (`POST /internal/shard`, authenticated by CLUSTER_SECRET), one hop at most:
 * the owner serves it from its own shard or answers NOT_OWNER, never forwards it again. The sender then
 * re-reads the lease table and tries the owner it finds, for at most `maxWaitMs` (a hand-off or a
 * failover in progress), and otherwise answers NOT_READY (503 with Retry-After).
 *
 * What a client sees when an owner dies: a request the dead node never received (connection refused)
 * is retried at the next owner; one it may have received (reset, timeout) is answered WORKER_FAILED,
 * "outcome unknown, check and retry", exactly as when a shard thread dies on a single node.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { ShardOp, ShardResult } from '../actors/shard-protocol.js';
import type { RemoteShard } from '../actors/shard-router.js';
import type { Logger } from '../logger.js';
import type { LeaseKeeper } from './leases.js';

export const FORWARD_PATH = '/internal/shard';
export const CLUSTER_SECRET_HEADER = 'x-boxoffice-cluster-secret';
/** How long a request waits for its partition to have a reachable owner. */
export const FORWARD_MAX_WAIT_MS = 4000;
/** How long one forwarded request may take before its outcome counts as unknown. */
export const FORWARD_TIMEOUT_MS = 5000;

export interface ForwardedRequest {
  partition: number;
  showId: string;
  op: ShardOp;
}

/** A batch's shard results as JSON: a seat map's bytes travel as base64. */
export function encodeResults(results: ShardResult[]): string {
  return JSON.stringify({
    results: results.map((result) =>
      'seatMap' in result && result.seatMap
        ? {
            ...result,
            seatMap: { ...result.seatMap, seats: Buffer.from(result.seatMap.seats).toString('base64') },
          }
        : result,
    ),
  });
}

export function decodeResults(json: string): ShardResult[] {
  const { results } = JSON.parse(json) as { results: ShardResult[] };
  for (const result of results)
    if ('seatMap' in result && result.seatMap)
      result.seatMap.seats = new Uint8Array(Buffer.from(result.seatMap.seats as unknown as string, 'base64'));
  return results;
}

/** Compares a presented secret with the configured one in constant time. */
export function isClusterSecret(presented: string | undefined, secret: string | undefined): boolean {
  if (!secret || presented === undefined) return false;
  const a = crypto.createHash('sha256').update(presented).digest();
  const b = crypto.createHash('sha256').update(secret).digest();
  return crypto.timingSafeEqual(a, b);
}

/** What a forwarded request may ask of a shard (`ShardOp`'s kinds). */
const SHARD_OPS = new Set(['command', 'create', 'getHold', 'findHoldOf', 'seatMap', 'check']);

/** At most this many requests ride in one forward (one HTTP request to the owner). */
export const MAX_FORWARD_BATCH = 256;
/** A forward's body at most: a full batch of the largest requests (a hold names at most 100 seats). */
export const MAX_FORWARD_BODY_BYTES = 4 * 1024 * 1024;

/** A forward's body: the requests for one owner made during one turn of the event loop. */
export function parseForwardedBatch(body: unknown): ForwardedRequest[] | undefined {
  const requests = (body as { requests?: unknown } | null)?.requests;
  if (!Array.isArray(requests) || requests.length === 0 || requests.length > MAX_FORWARD_BATCH)
    return undefined;
  const parsed = requests.map(parseForwarded);
  return parsed.every((r) => r !== undefined) ? (parsed as ForwardedRequest[]) : undefined;
}

/** The shape check of one forwarded request (a peer's, authenticated; still never trusted blindly). */
export function parseForwarded(body: unknown): ForwardedRequest | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { partition, showId, op } = body as Record<string, unknown>;
  if (!Number.isInteger(partition) || typeof showId !== 'string' || showId.length > 200) return undefined;
  if (typeof op !== 'object' || op === null) return undefined;
  const { kind, command } = op as { kind?: unknown; command?: unknown };
  if (typeof kind !== 'string' || !SHARD_OPS.has(kind)) return undefined;
  if (kind === 'command' && (typeof command !== 'object' || command === null)) return undefined;
  return { partition: partition as number, showId, op: op as ShardOp };
}

export interface ForwarderOptions {
  leases: LeaseKeeper;
  secret: string | undefined;
  logger?: Logger;
  maxWaitMs?: number;
  timeoutMs?: number;
  /** Forwarded requests by outcome (metrics). */
  onForward?: (outcome: 'ok' | 'retried' | 'failed') => void;
}

/** The router's `RemoteShard`: sends each request to its partition's owner, re-resolving on a miss. */
export function createForwarder(options: ForwarderOptions): RemoteShard {
  const { leases, secret, logger } = options;
  const maxWaitMs = options.maxWaitMs ?? FORWARD_MAX_WAIT_MS;
  const sender = new BatchSender(secret, options.timeoutMs ?? FORWARD_TIMEOUT_MS);
  let refreshing: Promise<void> | undefined;
  // Many requests miss at once during a failover: they share one read of the lease table.
  const refresh = () => {
    refreshing ??= leases
      .refresh()
      .catch(() => undefined)
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };
  return async (partition, showId, op) => {
    const deadline = performance.now() + maxWaitMs;
    const request: ForwardedRequest = { partition, showId, op };
    for (let attempt = 0; ; attempt++) {
      const owner = leases.ownerOf(partition);
      if (owner) {
        const sent = await sender.send(owner.url, request);
        if (sent.kind === 'result') {
          const { result } = sent;
          const isMoved = !result.ok && (result.code === 'NOT_OWNER' || result.code === 'NOT_READY');
          if (!isMoved) {
            options.onForward?.('ok');
            return result;
          }
        } else if (sent.kind === 'maybeDelivered' && op.kind === 'command') {
          // The owner may have applied it: never apply it twice by sending it again.
          logger?.warn({ partition, owner: owner.node, err: sent.error }, 'forwarded command lost');
          options.onForward?.('failed');
          return {
            ok: false,
            code: 'WORKER_FAILED',
            message: 'the node serving this show failed; the outcome is unknown, check and retry',
          };
        }
      }
      if (performance.now() >= deadline) {
        options.onForward?.('failed');
        return {
          ok: false,
          code: 'NOT_READY',
          message: `show ${showId} is moving to another node; try again in a moment`,
        };
      }
      options.onForward?.('retried');
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, 25 * 2 ** attempt)));
      await refresh();
    }
  };
}

type Sent =
  | { kind: 'result'; result: ShardResult }
  | { kind: 'notDelivered' | 'maybeDelivered'; error: string };

interface Queued {
  request: ForwardedRequest;
  resolve: (sent: Sent) => void;
}

/**
 * Requests for one owner made during one turn of the event loop go as one HTTP request (as the router
 * batches requests for a shard thread): the HTTP cost is paid per batch, not per request. Node's http
 * client with keep-alive, not fetch: measured here, fetch cost several times the CPU per request.
 */
class BatchSender {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  readonly #queues = new Map<string, Queued[]>();

  constructor(
    private readonly secret: string | undefined,
    private readonly timeoutMs: number,
  ) {}

  send(url: string, request: ForwardedRequest): Promise<Sent> {
    return new Promise<Sent>((resolve) => {
      let queue = this.#queues.get(url);
      if (!queue) {
        queue = [];
        this.#queues.set(url, queue);
        setImmediate(() => this.#flush(url));
      }
      queue.push({ request, resolve });
      if (queue.length >= MAX_FORWARD_BATCH) this.#flush(url);
    });
  }

  #flush(url: string): void {
    const queue = this.#queues.get(url);
    if (!queue || queue.length === 0) return;
    this.#queues.delete(url);
    const body = JSON.stringify({ requests: queue.map((q) => q.request) });
    this.#post(url, body).then(
      (text) => {
        let results: ShardResult[];
        try {
          results = decodeResults(text);
        } catch {
          for (const q of queue) q.resolve({ kind: 'maybeDelivered', error: 'unreadable answer' });
          return;
        }
        queue.forEach((q, i) => {
          const result = results[i];
          q.resolve(
            result ? { kind: 'result', result } : { kind: 'maybeDelivered', error: 'missing answer' },
          );
        });
      },
      (err: Error & { code?: string; isDelivered?: boolean }) => {
        // Refused: nothing listens there any more, so the requests were never received.
        const kind = err.code === 'ECONNREFUSED' ? 'notDelivered' : 'maybeDelivered';
        for (const q of queue) q.resolve({ kind, error: err.code ?? err.message });
      },
    );
  }

  #post(url: string, body: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const req = http.request(`${url}${FORWARD_PATH}`, {
        method: 'POST',
        agent: this.#agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          [CLUSTER_SECRET_HEADER]: this.secret ?? '',
        },
        timeout: this.timeoutMs,
      });
      req.on('timeout', () =>
        req.destroy(Object.assign(new Error('forward timed out'), { code: 'ETIMEDOUT' })),
      );
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200)
            reject(
              Object.assign(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`), {
                code: 'EBADANSWER',
              }),
            );
          else resolve(text);
        });
      });
      req.end(body);
    });
  }
}
