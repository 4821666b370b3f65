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

/** A shard result as JSON: a seat map's bytes travel as base64. */
export function encodeResult(result: ShardResult): string {
  if ('seatMap' in result && result.seatMap)
    return JSON.stringify({
      ...result,
      seatMap: { ...result.seatMap, seats: Buffer.from(result.seatMap.seats).toString('base64') },
    });
  return JSON.stringify(result);
}

export function decodeResult(json: string): ShardResult {
  const result = JSON.parse(json) as ShardResult;
  if ('seatMap' in result && result.seatMap)
    result.seatMap.seats = new Uint8Array(Buffer.from(result.seatMap.seats as unknown as string, 'base64'));
  return result;
}

/** Compares a presented secret with the configured one in constant time. */
export function isClusterSecret(presented: string | undefined, secret: string | undefined): boolean {
  if (!secret || presented === undefined) return false;
  const a = crypto.createHash('sha256').update(presented).digest();
  const b = crypto.createHash('sha256').update(secret).digest();
  return crypto.timingSafeEqual(a, b);
}

/** The shape check of a forwarded request's body (a peer's, authenticated; still never trusted blindly). */
export function parseForwarded(body: unknown): ForwardedRequest | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { partition, showId, op } = body as Record<string, unknown>;
  if (!Number.isInteger(partition) || typeof showId !== 'string' || showId.length > 200) return undefined;
  if (typeof op !== 'object' || op === null || typeof (op as { kind?: unknown }).kind !== 'string')
    return undefined;
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
  const timeoutMs = options.timeoutMs ?? FORWARD_TIMEOUT_MS;
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
    const body = JSON.stringify({ partition, showId, op });
    for (let attempt = 0; ; attempt++) {
      const owner = leases.ownerOf(partition);
      if (owner) {
        const sent = await send(owner.url, body, secret, timeoutMs);
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

async function send(url: string, body: string, secret: string | undefined, timeoutMs: number): Promise<Sent> {
  try {
    const response = await fetch(`${url}${FORWARD_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [CLUSTER_SECRET_HEADER]: secret ?? '' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (response.status !== 200)
      return { kind: 'maybeDelivered', error: `HTTP ${response.status}: ${text.slice(0, 200)}` };
    return { kind: 'result', result: decodeResult(text) };
  } catch (err) {
    const code = causeCode(err);
    // Refused: nothing listens there any more, so the request was never received.
    if (code === 'ECONNREFUSED') return { kind: 'notDelivered', error: code };
    return { kind: 'maybeDelivered', error: code ?? (err as Error).message };
  }
}

function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
  return cause?.code ?? cause?.errors?.[0]?.code;
}
