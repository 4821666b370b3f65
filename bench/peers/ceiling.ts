/**
 * @module bench/peers/ceiling
 * The ceiling: a bare Hono app on @hono/node-server that answers every request with a JSON body of
 * BODY_BYTES bytes, doing nothing else. Whatever it serves on this machine, with the same load
 * generator and connections, is the most the service's HTTP edge could serve.
 *
 * `POST /api/shows/:id/holds` answers `{"hold":{"id":…}}` of the same size, so the bench can drive the
 * ceiling with the same request chains as the service (a release reads the hold id from the reply).
 * With FEED=1 it is also the ceiling of the live feed: WebSocket clients on /ws/* get a tiny snapshot,
 * and each hold or release request broadcasts one delta of the service's shape to every client.
 * Env: PORT, BODY_BYTES, FEED.
 */
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT);
const bodyBytes = Math.max(16, Number(process.env.BODY_BYTES ?? '64'));
const isFeed = process.env.FEED === '1';

/** `{"data":"xxxx"}` padded to exactly `bytes`. */
export function paddedJson(bytes: number): string {
  return `{"data":"${'x'.repeat(Math.max(0, bytes - 11))}"}`;
}

const body = paddedJson(bodyBytes);
const app = new Hono();
let version = 0;
const clients = new Set<import('ws').WebSocket>();

function broadcast(showId: string, seat: string, status: string): void {
  const message = JSON.stringify({
    type: 'delta',
    showId,
    version: ++version,
    changes: [{ id: seat, status }],
  });
  for (const ws of clients) ws.send(message);
}

/** `{"hold":{"id":"<seat>.xxxx"}}` padded to exactly `bytes`. */
function paddedHold(seat: string, bytes: number): string {
  return `{"hold":{"id":"${seat}.${'x'.repeat(Math.max(0, bytes - 19 - seat.length))}"}}`;
}

// The hold route answers a hold's shape of the same size: the bench drives the ceiling with the very
// request chains it drives the service with, and a release reads the hold id from the reply. Only the
// feed reads the body (the id names the seat, so the release can broadcast it).
const holdReply = paddedHold('H10', bodyBytes);
app.post('/api/shows/:id/holds', async (c) => {
  if (!isFeed) return c.body(holdReply, 201, { 'content-type': 'application/json' });
  const { seats } = (await c.req.json()) as { seats: string[] };
  const seat = seats[0]!;
  broadcast(c.req.param('id'), seat, 'held');
  return c.body(paddedHold(seat, bodyBytes), 201, { 'content-type': 'application/json' });
});
if (isFeed)
  app.delete('/api/holds/:id', (c) => {
    broadcast('show', c.req.param('id').split('.')[0]!, 'available');
    return c.body(null, 204);
  });
app.all('*', (c) => c.body(body, 200, { 'content-type': 'application/json' }));

const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }) as Server;

if (isFeed) {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
      ws.send(JSON.stringify({ type: 'snapshot', version, seats: [] }));
    });
  });
}

// Nothing to drain: keep-alive sockets would only hold a graceful close up.
process.on('SIGTERM', () => process.exit(0));
