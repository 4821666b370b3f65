/**
 * @module seat-feed
 * The live seat feed: `GET /ws/shows/:id` upgrades to a WebSocket that gets a snapshot, then every delta
 * with versions rising by one. `{"type":"resume","version":N}` (or `?version=N` on connect) replays the
 * missed deltas when they are still kept, else sends a fresh snapshot. A client whose send buffer passes
 * the limit is dropped (close code 1013) instead of growing our memory. Compression is off: deltas are
 * small and serialized once for every subscriber.
 */
import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { ErrorCode } from '../domain/failure.js';
import { readOpenFilesSoftLimit } from '../process-limits.js';
import { clientAddressOfRequest } from './client-address.js';
import type { AppDeps } from './context.js';
import { errorBody, statusOf } from './errors.js';

/** The most feeds one process serves, whatever its file-descriptor limit allows. */
export const MAX_FEED_SUBSCRIBERS = 50_000;
/**
 * Descriptors kept out of the feeds' reach: the app database and shard journals (with their WAL files),
 * worker threads, outgoing HTTP/SMTP/Redis clients and plain HTTP requests still need theirs.
 */
export const RESERVED_FILE_DESCRIPTORS = 256;
/** What a client refused for having too many feeds open is told to wait before trying again. */
export const FEED_RETRY_AFTER_SECONDS = 5;
/** The longest path a refusal echoes back; the rest of a huge path only costs bytes. */
const MAX_ECHOED_PATH = 200;
export const MAX_CLIENT_MESSAGE_BYTES = 1024;
export const FEED_PING_INTERVAL_MS = 30_000;

/**
 * A WebSocket server for one feed route, attached to the HTTP server's upgrades by the caller: no
 * compression, client messages bounded, and its own failures (a handshake on a socket that already
 * died) logged, never fatal. With the heartbeat that ends vanished peers.
 */
export function createFeedServer(
  logger: AppDeps['logger'],
  name: string,
): { wss: WebSocketServer; heartbeat: ReturnType<typeof startHeartbeat> } {
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
  });
  wss.on('error', (err) => logger.debug({ err: err.message }, `${name} server error`));
  return { wss, heartbeat: startHeartbeat(wss) };
}

/**
 * Pings every client of `wss` each FEED_PING_INTERVAL_MS and ends the ones that did not answer the last
 * ping (a peer that vanished without closing). Both feeds, seats and on-sale queues, use it.
 */
export function startHeartbeat(wss: WebSocketServer): { watch(ws: WebSocket): void; stop(): void } {
  const alive = new WeakSet<WebSocket>();
  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, FEED_PING_INTERVAL_MS);
  pinger.unref();
  return {
    watch(ws) {
      alive.add(ws);
      ws.on('pong', () => alive.add(ws));
    },
    stop: () => clearInterval(pinger),
  };
}
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TRY_AGAIN_LATER = 1013;

const FEED_PATH = /^\/ws\/shows\/([^/?#]{1,200})$/;

/**
 * How many feeds may be open at once: each holds a socket, so the bound stays below the process's
 * file-descriptor soft limit (minus the reserve) to leave plain requests theirs when feeds pile up.
 */
export function globalFeedBound(openFilesSoftLimit: number | undefined): number {
  if (openFilesSoftLimit === undefined) return MAX_FEED_SUBSCRIBERS;
  return Math.max(1, Math.min(MAX_FEED_SUBSCRIBERS, openFilesSoftLimit - RESERVED_FILE_DESCRIPTORS));
}

interface Refusal {
  ok: false;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
}

export type FeedTarget = { ok: true; showId: string; resumeFrom: number | undefined } | Refusal;
type Admission = { ok: true; showId: string; resumeFrom: number | undefined; address: string } | Refusal;

/** Reads `/ws/shows/:id[?version=N]` from a raw request target; anything a client can send is an answer. */
export function parseFeedTarget(rawUrl: string | undefined): FeedTarget {
  let url: URL;
  try {
    url = new URL(rawUrl ?? '/', 'http://localhost');
  } catch {
    return { ok: false, code: 'VALIDATION_FAILED', message: 'the request target is not a valid URL path' };
  }
  const match = FEED_PATH.exec(url.pathname);
  if (!match)
    return {
      ok: false,
      code: 'ROUTE_NOT_FOUND',
      message: `no WebSocket route ${url.pathname.slice(0, MAX_ECHOED_PATH)}`,
    };
  let showId: string;
  try {
    showId = decodeURIComponent(match[1]!);
  } catch {
    return { ok: false, code: 'VALIDATION_FAILED', message: 'the show id is not valid percent-encoding' };
  }
  const version = url.searchParams.has('version') ? Number(url.searchParams.get('version')) : undefined;
  return { ok: true, showId, resumeFrom: Number.isInteger(version) ? version : undefined };
}

/**
 * Answers an upgrade we will not take with a plain HTTP reply in the contract's error shape, then closes.
 * A socket the client already reset is only destroyed; its 'error' listener (set first) absorbs the rest.
 */
export function rejectUpgrade(
  socket: Duplex,
  code: ErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const status = statusOf(code);
  const body = JSON.stringify(errorBody(code, message, details));
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  // Upgrade sockets allow half-open: without this a client that never closes its side keeps the socket.
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? code}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}

/**
 * Another WebSocket route on the same server (the on-sale queue feed): one upgrade listener serves them
 * all, so a path is refused only once nobody claims it.
 */
export interface UpgradeRoute {
  matches(pathname: string): boolean;
  /** Takes the socket (its 'error' listener is already set) and answers it, however it goes. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface SeatFeed {
  subscriberCount(): number;
  /** Closes every feed with 1001 so clients know to reconnect elsewhere. */
  close(): void;
}

export function attachSeatFeed(
  server: Server,
  deps: AppDeps,
  routes: readonly UpgradeRoute[] = [],
): SeatFeed {
  const { wss, heartbeat } = createFeedServer(deps.logger, 'seat feed');
  const { metrics, seatMaps } = deps;

  const feedBound = globalFeedBound(readOpenFilesSoftLimit());
  deps.logger.info(
    { maxFeeds: feedBound, maxFeedsPerAddress: deps.config.WS_MAX_FEEDS_PER_ADDRESS },
    'seat feed bounds',
  );
  // Counted from the accepted upgrade to the socket's close, so a handshake in flight holds its place too.
  let openFeeds = 0;
  // Every upgrade socket of every WebSocket route (the on-sale queue feed too), from its arrival to its
  // close: all feeds together must stay below the open-files limit, not each route on its own.
  let openUpgrades = 0;
  const feedsByAddress = new Map<string, number>();

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // The HTTP server takes its own error listener off a socket it hands over: without ours, a client's
    // reset (ECONNRESET, EPIPE on our reply) would be an unhandled 'error' event and end the process.
    socket.on('error', (err) => {
      deps.logger.debug({ err: (err as Error).message }, 'seat feed socket error');
      socket.destroy();
    });
    // Already reset by the client: its 'close' may have passed, so it must not take a place in the count.
    if (socket.destroyed) return;
    if (openUpgrades >= feedBound) {
      rejectUpgrade(socket, 'OVERLOADED', 'too many feed subscribers');
      return;
    }
    openUpgrades++;
    socket.once('close', () => {
      openUpgrades--;
    });
    try {
      const pathname = (req.url ?? '').split('?', 1)[0]!;
      const other = routes.find((route) => route.matches(pathname));
      if (other) other.handle(req, socket, head);
      else routeUpgrade(req, socket, head);
    } catch (err) {
      // Like the app's onError for plain requests: one connection fails, loudly, and the rest carry on.
      deps.logger.error({ err, url: req.url }, 'seat feed upgrade failed');
      rejectUpgrade(socket, 'INTERNAL', 'internal error');
    }
  });

  /** Whether to take this upgrade: the show and version to follow and who asks, or why not. */
  function admit(req: IncomingMessage): Admission {
    const target = parseFeedTarget(req.url);
    if (!target.ok) return target;
    if (deps.lifecycle.isDraining) return { ok: false, code: 'NOT_READY', message: 'shutting down' };
    if (openFeeds >= feedBound)
      return { ok: false, code: 'OVERLOADED', message: 'too many feed subscribers' };
    const address = clientAddressOfRequest(req, deps.config.trustedProxies);
    const limit = deps.config.WS_MAX_FEEDS_PER_ADDRESS;
    if ((feedsByAddress.get(address) ?? 0) >= limit)
      return {
        ok: false,
        code: 'RATE_LIMITED',
        message: 'too many feeds from one address: close one first',
        details: { limit, retryAfterSeconds: FEED_RETRY_AFTER_SECONDS },
        headers: { 'retry-after': String(FEED_RETRY_AFTER_SECONDS) },
      };
    if (!deps.shows.get(target.showId))
      return { ok: false, code: 'SHOW_NOT_FOUND', message: `no show ${target.showId}` };
    return { ...target, address };
  }

  function routeUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Already reset by the client: its 'close' may have passed, so it must not take a place in the counts.
    if (socket.destroyed) return;
    const admission = admit(req);
    if (!admission.ok) {
      rejectUpgrade(socket, admission.code, admission.message, admission.details, admission.headers);
      return;
    }
    const { showId, resumeFrom, address } = admission;
    openFeeds++;
    feedsByAddress.set(address, (feedsByAddress.get(address) ?? 0) + 1);
    socket.once('close', () => {
      openFeeds--;
      const left = (feedsByAddress.get(address) ?? 1) - 1;
      if (left > 0) feedsByAddress.set(address, left);
      else feedsByAddress.delete(address);
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      void follow(ws, showId, resumeFrom);
    });
  }

  async function follow(ws: WebSocket, showId: string, resumeFrom: number | undefined): Promise<void> {
    // A malformed frame (over maxPayload, a reserved opcode, an unmasked frame, invalid UTF-8) arrives
    // here as an 'error' and ws closes the connection itself (1002/1007/1009): one client's mistake ends
    // that client's feed, never the process.
    ws.on('error', (err) => {
      deps.logger.debug({ err: err.message, showId }, 'seat feed client sent a malformed frame');
    });
    heartbeat.watch(ws);
    metrics.wsSubscribers.inc();
    const send = (message: string | Buffer) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (ws.bufferedAmount > deps.config.WS_MAX_BUFFERED_BYTES) {
        metrics.wsDropped.inc();
        ws.close(CLOSE_TRY_AGAIN_LATER, 'too slow: resubscribe and resume');
        ws.terminate();
        return;
      }
      // Deltas come encoded once for every subscriber; `binary: false` keeps them text frames.
      ws.send(message, { binary: false });
    };
    let unsubscribe = () => {};
    const subscribeFrom = async (version: number | undefined) => {
      unsubscribe();
      const sub = await seatMaps.subscribe(
        showId,
        (delta) => {
          // A gap in the actor's versions: start over from a fresh snapshot.
          if (delta.message.startsWith('{"type":"resync"')) void subscribeFrom(undefined);
          else send(delta.bytes);
        },
        version,
      );
      if (!sub) {
        ws.close(4404, 'show not found');
        return;
      }
      unsubscribe = sub.unsubscribe;
      for (const message of sub.first) send(message);
    };
    ws.on('close', () => {
      unsubscribe();
      metrics.wsSubscribers.dec();
    });
    ws.on('message', (data) => {
      let message: { type?: unknown; version?: unknown };
      try {
        message = JSON.parse(String(data));
      } catch {
        return send(JSON.stringify({ type: 'error', code: 'INVALID_JSON', message: 'messages are JSON' }));
      }
      if (message?.type === 'resume' && Number.isInteger(message.version)) {
        const missed = seatMaps.resume(showId, message.version as number);
        if (missed) for (const m of missed) send(m);
        else {
          const snapshot = seatMaps.snapshotMessage(showId);
          if (snapshot) send(snapshot);
          else void subscribeFrom(undefined);
        }
        return;
      }
      send(
        JSON.stringify({
          type: 'error',
          code: 'UNKNOWN_MESSAGE',
          message: 'send {"type":"resume","version":N}',
        }),
      );
    });
    try {
      await subscribeFrom(resumeFrom);
    } catch (err) {
      deps.logger.warn({ err, showId }, 'seat feed could not subscribe');
      ws.close(1011, 'try again');
    }
  }

  return {
    subscriberCount: () => wss.clients.size,
    close() {
      heartbeat.stop();
      for (const ws of wss.clients) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      wss.close();
    },
  };
}
