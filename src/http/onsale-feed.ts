/**
 * @module onsale-feed
 * `GET /ws/onsales/:id` upgrades to a WebSocket that pushes the caller's queue answer (the object
 * `GET /api/onsales/:id/queue` answers) first and then whenever it may have changed. Sign in with
 * `Authorization: Bearer <token>` or, where a browser cannot set headers, `?access_token=<token>`.
 * Hardened like the seat feed: an error listener on every socket, feeds bounded per client address
 * and in total, a malformed path or token a clean HTTP refusal, a slow client dropped.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { QueueView } from '../domain/onsale-queue.js';
import { clientAddressOfRequest } from './client-address.js';
import type { AppDeps } from './context.js';
import {
  CLOSE_GOING_AWAY,
  CLOSE_TRY_AGAIN_LATER,
  createFeedServer,
  FEED_RETRY_AFTER_SECONDS,
  rejectUpgrade,
  type UpgradeRoute,
} from './seat-feed.js';

/** Most queue feeds one process serves; each is a socket. */
export const MAX_QUEUE_FEEDS = 50_000;
const QUEUE_FEED_PATH = /^\/ws\/onsales\/([^/?#]{1,200})$/;
/** Access tokens are a few hundred characters; anything far longer is not one. */
const MAX_ACCESS_TOKEN_CHARS = 4096;

export interface QueueFeed extends UpgradeRoute {
  close(): void;
}

type Target = { ok: true; onsaleId: string; token: string | undefined } | { ok: false; message: string };

function parseTarget(rawUrl: string | undefined): Target {
  let url: URL;
  try {
    url = new URL(rawUrl ?? '/', 'http://localhost');
  } catch {
    return { ok: false, message: 'the request target is not a valid URL path' };
  }
  const match = QUEUE_FEED_PATH.exec(url.pathname);
  if (!match) return { ok: false, message: 'not an on-sale feed path' };
  let onsaleId: string;
  try {
    onsaleId = decodeURIComponent(match[1]!);
  } catch {
    return { ok: false, message: 'the on-sale id is not valid percent-encoding' };
  }
  return { ok: true, onsaleId, token: url.searchParams.get('access_token') ?? undefined };
}

export function createQueueFeed(deps: AppDeps): QueueFeed {
  const { wss, heartbeat } = createFeedServer(deps.logger, 'queue feed');
  let openFeeds = 0;
  const feedsByAddress = new Map<string, number>();

  async function accept(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const target = parseTarget(req.url);
    if (!target.ok) return rejectUpgrade(socket, 'VALIDATION_FAILED', target.message);
    if (deps.lifecycle.isDraining) return rejectUpgrade(socket, 'NOT_READY', 'shutting down');
    if (openFeeds >= MAX_QUEUE_FEEDS) return rejectUpgrade(socket, 'OVERLOADED', 'too many queue feeds');
    const address = clientAddressOfRequest(req, deps.config.trustedProxies);
    const limit = deps.config.WS_MAX_FEEDS_PER_ADDRESS;
    if ((feedsByAddress.get(address) ?? 0) >= limit)
      return rejectUpgrade(
        socket,
        'RATE_LIMITED',
        'too many feeds from one address: close one first',
        { limit, retryAfterSeconds: FEED_RETRY_AFTER_SECONDS },
        { 'retry-after': String(FEED_RETRY_AFTER_SECONDS) },
      );
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : target.token;
    if (!token || token.length > MAX_ACCESS_TOKEN_CHARS)
      return rejectUpgrade(socket, 'UNAUTHENTICATED', 'send Authorization: Bearer <token> or ?access_token=');
    // Counted before the token check's await, so a flood of handshakes cannot pass the bounds meanwhile.
    openFeeds++;
    feedsByAddress.set(address, (feedsByAddress.get(address) ?? 0) + 1);
    let isCounted = true;
    const uncount = () => {
      if (!isCounted) return;
      isCounted = false;
      openFeeds--;
      const left = (feedsByAddress.get(address) ?? 1) - 1;
      if (left > 0) feedsByAddress.set(address, left);
      else feedsByAddress.delete(address);
    };
    socket.once('close', uncount);
    const user = await deps.tokens.verify(token);
    if (socket.destroyed) return uncount();
    if (!user) return rejectUpgrade(socket, 'UNAUTHENTICATED', 'the token is invalid, expired or revoked');
    const first = deps.onsales.poll(user.id, target.onsaleId);
    if (!first.ok) return rejectUpgrade(socket, first.code, first.message);
    wss.handleUpgrade(req, socket, head, (ws) => follow(ws, user.id, target.onsaleId));
  }

  function follow(ws: WebSocket, userId: string, onsaleId: string): void {
    // A malformed frame ends this client's feed (ws closes it); never the process.
    ws.on('error', (err) => deps.logger.debug({ err: err.message, onsaleId }, 'queue feed client error'));
    heartbeat.watch(ws);
    // Clients have nothing to say; a message is ignored (its size is bounded by maxPayload).
    ws.on('message', () => {});
    let last = '';
    const send = (view: QueueView) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const message = JSON.stringify(view);
      // Ticks re-announce everyone; only a change is worth a frame.
      if (message === last) return;
      if (ws.bufferedAmount > deps.config.WS_MAX_BUFFERED_BYTES) {
        ws.close(CLOSE_TRY_AGAIN_LATER, 'too slow: reconnect');
        ws.terminate();
        return;
      }
      last = message;
      ws.send(message, { binary: false });
    };
    const listening = deps.onsales.listen(userId, onsaleId, send);
    if (!listening.ok) {
      ws.close(4404, listening.message.slice(0, 120));
      return;
    }
    ws.on('close', listening.unlisten);
    const now = deps.onsales.poll(userId, onsaleId);
    if (now.ok) send(now.view);
  }

  return {
    matches: (pathname) => pathname.startsWith('/ws/onsales/'),
    handle(req, socket, head) {
      accept(req, socket, head).catch((err: unknown) => {
        deps.logger.error({ err, url: req.url }, 'queue feed upgrade failed');
        rejectUpgrade(socket, 'INTERNAL', 'internal error');
      });
    },
    close() {
      heartbeat.stop();
      for (const ws of wss.clients) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      wss.close();
    },
  };
}
