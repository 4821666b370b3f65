/**
 * Follows a show's live seat feed (WebSocket /ws/shows/:id): a snapshot, then deltas whose versions rise
 * by one. A gap asks the server to resume from our version; a dropped socket reconnects with
 * `?version=` after a growing, capped pause.
 */
import type { SeatStatus } from './api';

export interface FeedChange {
  id: string;
  status: SeatStatus;
}
export interface FeedHandlers {
  snapshot(version: number, seats: FeedChange[]): void;
  delta(version: number, changes: FeedChange[]): void;
  connection(isLive: boolean): void;
}

const MAX_RETRY_DELAY_MS = 10_000;

export function followSeatFeed(showId: string, handlers: FeedHandlers): () => void {
  let version: number | undefined;
  let socket: WebSocket | undefined;
  let retryDelay = 500;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let isStopped = false;

  const connect = () => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const resume = version === undefined ? '' : `?version=${version}`;
    socket = new WebSocket(`${scheme}//${location.host}/ws/shows/${encodeURIComponent(showId)}${resume}`);
    socket.onopen = () => {
      retryDelay = 500;
      handlers.connection(true);
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as {
        type: string;
        version: number;
        seats?: FeedChange[];
        changes?: FeedChange[];
      };
      if (message.type === 'snapshot' && message.seats) {
        version = message.version;
        handlers.snapshot(message.version, message.seats);
      } else if (message.type === 'delta' && message.changes) {
        if (version !== undefined && message.version <= version) return;
        if (version !== undefined && message.version !== version + 1) {
          socket?.send(JSON.stringify({ type: 'resume', version }));
          return;
        }
        version = message.version;
        handlers.delta(message.version, message.changes);
      }
    };
    socket.onclose = () => {
      handlers.connection(false);
      if (isStopped) return;
      timer = setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, MAX_RETRY_DELAY_MS);
    };
  };
  connect();
  return () => {
    isStopped = true;
    clearTimeout(timer);
    socket?.close();
  };
}
