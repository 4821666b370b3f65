/**
 * A feed client that stops reading is dropped once its unsent data passes WS_MAX_BUFFERED_BYTES,
 * instead of growing the server's memory; a client that reads keeps its feed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_ENV, createShow } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...ADMIN_ENV, WS_MAX_BUFFERED_BYTES: '65536' });
});
afterAll(() => server?.destroy());

const BIG = {
  rows: Array.from({ length: 40 }, (_, r) => ({
    label: String.fromCharCode(65 + (r % 26)) + (r >= 26 ? 'A' : ''),
    category: 'STD',
    seats: 50,
  })),
};

async function open(showId: string): Promise<WebSocket> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws/shows/${showId}`);
  await new Promise((resolve) => ws.once('message', resolve));
  return ws;
}

function dropped(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('boxoffice_ws_dropped_total'));
  return Number(line?.split(' ')[1]);
}

describe('slow feed consumers', () => {
  it('drops a client that stops reading, and keeps one that reads', async () => {
    const { showId } = await createShow(server.api, { layout: BIG, prices: { STD: 100 } });
    const slow = await open(showId);
    const reader = await open(showId);
    let readerMessages = 0;
    reader.on('message', () => readerMessages++);
    const closed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
    // The slow client stops reading, then asks for fresh snapshots (~60 KB each) far faster than it reads.
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();
    for (let i = 0; i < 600; i++) slow.send(JSON.stringify({ type: 'resume', version: -1 }));
    for (let i = 0; i < 3; i++) reader.send(JSON.stringify({ type: 'resume', version: -1 }));
    const deadline = Date.now() + 20_000;
    let metrics = '';
    while (Date.now() < deadline) {
      metrics = (await server.api('GET', '/metrics')).body as string;
      if (dropped(metrics) >= 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(dropped(metrics)).toBe(1);
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    await closed;
    while (readerMessages < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(readerMessages).toBe(3);
    expect(reader.readyState).toBe(WebSocket.OPEN);
    reader.close();
  });
});
