/**
 * The live seat feed over a real WebSocket: snapshot first, then deltas with versions rising by one,
 * resume from a version, and unknown shows refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(ADMIN_ENV);
});
afterAll(() => server?.destroy());

interface Feed {
  ws: WebSocket;
  messages: any[];
  next(): Promise<any>;
}

function connect(path: string): Promise<Feed> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.url.replace('http', 'ws') + path);
    const messages: any[] = [];
    const waiters: ((m: any) => void)[] = [];
    let read = 0;
    ws.on('message', (data) => {
      messages.push(JSON.parse(String(data)));
      waiters.shift()?.(undefined);
    });
    const next = async () => {
      while (messages.length <= read) await new Promise((r) => waiters.push(r));
      return messages[read++];
    };
    ws.on('open', () => resolve({ ws, messages, next }));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

describe('live seat feed', () => {
  it('sends a snapshot, then a delta per change with versions rising by one', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const feed = await connect(`/ws/shows/${showId}`);
    const snapshot = await feed.next();
    expect(snapshot).toMatchObject({ type: 'snapshot', showId });
    expect(snapshot.seats).toHaveLength(30);
    expect(snapshot.seats[0]).toEqual({ id: 'A1', status: 'available' });
    const hold = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A1', 'A2'] },
      token: alice.token,
    });
    const held = await feed.next();
    expect(held).toMatchObject({ type: 'delta', showId, version: snapshot.version + 1 });
    expect(held.changes).toEqual(
      expect.arrayContaining([
        { id: 'A1', status: 'held' },
        { id: 'A2', status: 'held' },
      ]),
    );
    await server.api('DELETE', `/api/holds/${hold.body.hold.id}`, { token: alice.token });
    const released = await feed.next();
    expect(released.version).toBe(snapshot.version + 2);
    expect(released.changes).toEqual(expect.arrayContaining([{ id: 'A1', status: 'available' }]));
    feed.ws.close();
  });

  it('replays missed deltas to a client that resumes from a version', async () => {
    const { showId } = await createShow(server.api);
    const alice = await newUser(server.api);
    const first = await connect(`/ws/shows/${showId}`);
    const snapshot = await first.next();
    first.ws.close();
    await server.api('POST', `/api/shows/${showId}/holds`, { body: { seats: ['B1'] }, token: alice.token });
    await server.api('POST', `/api/shows/${showId}/holds`, { body: { seats: ['B2'] }, token: alice.token });
    const again = await connect(`/ws/shows/${showId}?version=${snapshot.version}`);
    const missed = [await again.next(), await again.next()];
    expect(missed.map((m) => [m.type, m.version])).toEqual([
      ['delta', snapshot.version + 1],
      ['delta', snapshot.version + 2],
    ]);
    again.ws.send(JSON.stringify({ type: 'resume', version: snapshot.version + 1 }));
    const replay = await again.next();
    expect(replay).toMatchObject({ type: 'delta', version: snapshot.version + 2 });
    again.ws.close();
  });

  it('refuses a feed for an unknown show with 404', async () => {
    await expect(connect('/ws/shows/shw_missing')).rejects.toThrow('status 404');
  });
});
