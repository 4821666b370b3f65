/**
 * @module seat-feed
 * The live seat feed: `GET /ws/shows/:id` upgrades to a WebSocket that gets a snapshot, then every delta
 * with versions rising by one. `{"type":"resume","version":N}` (or `?version=N` on connect) replays the
 * missed deltas when they are still kept, else sends a fresh snapshot. A client whose send buffer passes
 * the limit is dropped (close code 1013) instead of growing our memory. Compression is off: deltas are
 * small and serialized once for every subscriber.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { AppDeps } from './context.js';

export const MAX_FEED_SUBSCRIBERS = 50_000;
export const MAX_CLIENT_MESSAGE_BYTES = 1024;
export const FEED_PING_INTERVAL_MS = 30_000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TRY_AGAIN_LATER = 1013;

const FEED_PATH = /^\/ws\/shows\/([^/?#]{1,200})$/;

export interface SeatFeed {
  subscriberCount(): number;
  /** Closes every feed with 1001 so clients know to reconnect elsewhere. */
  close(): void;
}

export function attachSeatFeed(server: Server, deps: AppDeps): SeatFeed {
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
  });
  const alive = new WeakSet<WebSocket>();
  const { metrics, seatMaps } = deps;

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = FEED_PATH.exec(url.pathname);
    const reject = (status: number, code: string, message: string) => {
      const body = JSON.stringify({ error: { code, message, details: {} } });
      socket.end(
        `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    if (!match) return reject(404, 'ROUTE_NOT_FOUND', `no WebSocket route ${url.pathname}`);
    if (deps.lifecycle.isDraining) return reject(503, 'NOT_READY', 'shutting down');
    if (wss.clients.size >= MAX_FEED_SUBSCRIBERS)
      return reject(503, 'OVERLOADED', 'too many feed subscribers');
    const showId = decodeURIComponent(match[1]!);
    if (!deps.shows.get(showId)) return reject(404, 'SHOW_NOT_FOUND', `no show ${showId}`);
    const resumeFrom = url.searchParams.has('version') ? Number(url.searchParams.get('version')) : undefined;
    wss.handleUpgrade(req, socket, head, (ws) => {
      void follow(ws, showId, Number.isInteger(resumeFrom) ? resumeFrom : undefined);
    });
  });

  async function follow(ws: WebSocket, showId: string, resumeFrom: number | undefined): Promise<void> {
    alive.add(ws);
    metrics.wsSubscribers.inc();
    ws.on('pong', () => alive.add(ws));
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
    subscriberCount: () => wss.clients.size,
    close() {
      clearInterval(pinger);
      for (const ws of wss.clients) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      wss.close();
    },
  };
}
