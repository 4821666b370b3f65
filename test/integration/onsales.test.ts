/**
 * The on-sale waiting room over the real server: admin routes, nobody holds a seat on an on-sale's show
 * without an admission (explicit holds, lock-seat, hold-and-book), an admitted buyer holds and books
 * with the token and its place does not return, the queue feed pushes the answer as it changes, and a
 * sell-out closes the on-sale and tells everyone. The service's clock is injected and the admission
 * clock stepped by hand (`deps.onsales.tick()`), so nothing waits on wall time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN, ADMIN_ENV, createShow, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let nowMs = Date.now();
let adminToken: string;
beforeAll(async () => {
  // Tokens outlive the hours the tests move the clock by.
  server = await startTestServer({ ...ADMIN_ENV, JWT_TTL_SECONDS: '604800' }, { now: () => nowMs });
  adminToken = await login(server.api, ADMIN.email, ADMIN.password);
});
afterAll(() => server?.destroy());

const HOUR_MS = 3_600_000;

async function createOnsale(showIds: string[], admitPerMinute: number | null = 60) {
  const res = await server.api('POST', '/api/admin/onsales', {
    token: adminToken,
    body: { showIds, opensAt: new Date(nowMs + HOUR_MS).toISOString(), admitPerMinute },
  });
  expect(res.status).toBe(201);
  return res.body.onsale as { id: string; state: string };
}

/** Moves the service's clock past the opening and steps the admission clock. */
async function openAndStep(stepMs: number) {
  nowMs += HOUR_MS;
  await server.deps.onsales.tick();
  nowMs += stepMs;
  await server.deps.onsales.tick();
}

interface QueueFeed {
  ws: WebSocket;
  next(): Promise<any>;
}

function follow(path: string): Promise<QueueFeed> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.url.replace('http', 'ws') + path);
    const messages: any[] = [];
    const waiters: (() => void)[] = [];
    let read = 0;
    ws.on('message', (data) => {
      messages.push(JSON.parse(String(data)));
      waiters.shift()?.();
    });
    const next = async () => {
      while (messages.length <= read) await new Promise<void>((r) => waiters.push(r));
      return messages[read++];
    };
    ws.on('open', () => resolve({ ws, next }));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

describe('on-sale admin routes', () => {
  it('creates, reads, changes and deletes an on-sale; only admins may', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const user = await newUser(server.api);
    const body = { showIds: [showId], opensAt: new Date(nowMs + HOUR_MS).toISOString() };
    expect((await server.api('POST', '/api/admin/onsales', { token: user.token, body })).status).toBe(403);
    const created = await server.api('POST', '/api/admin/onsales', { token: adminToken, body });
    expect(created.status).toBe(201);
    expect(created.body.onsale).toMatchObject({
      showIds: [showId],
      state: 'scheduled',
      admitPerMinute: null,
    });
    const id = created.body.onsale.id;
    // A show on one open on-sale cannot be on another.
    const twice = await server.api('POST', '/api/admin/onsales', { token: adminToken, body });
    expect(twice.status).toBe(409);
    const patched = await server.api('PATCH', `/api/admin/onsales/${id}`, {
      token: adminToken,
      body: { admitPerMinute: 30 },
    });
    expect(patched.body.onsale).toMatchObject({ admitPerMinute: 30 });
    expect((await server.api('GET', `/api/admin/onsales/${id}`, { token: adminToken })).body.onsale.id).toBe(
      id,
    );
    expect((await server.api('DELETE', `/api/admin/onsales/${id}`, { token: adminToken })).status).toBe(204);
    const gone = await server.api('GET', `/api/admin/onsales/${id}`, { token: adminToken });
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('ONSALE_NOT_FOUND');
    // Holds need no admission once it is gone.
    const hold = await server.api('POST', `/api/shows/${showId}/holds`, {
      token: user.token,
      body: { seats: ['A1'] },
    });
    expect(hold.status).toBe(201);
  });

  it('answers bad input with 400 and unknown shows with 404, in the contract error shape', async () => {
    const bad = [
      { showIds: [], opensAt: new Date().toISOString() },
      { showIds: ['shw_x'], opensAt: 'tomorrow' },
      { showIds: ['shw_x'], opensAt: new Date().toISOString(), admitPerMinute: 0 },
      { showIds: ['shw_x'], opensAt: new Date().toISOString(), extra: true },
    ];
    for (const body of bad) {
      const res = await server.api('POST', '/api/admin/onsales', { token: adminToken, body });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const unknown = await server.api('POST', '/api/admin/onsales', {
      token: adminToken,
      body: { showIds: ['shw_nope'], opensAt: new Date().toISOString() },
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.details.showIds).toEqual(['shw_nope']);
    const user = await newUser(server.api);
    const noQueue = await server.api('POST', '/api/onsales/ons_nope/queue', { token: user.token });
    expect(noQueue.status).toBe(404);
    expect((await server.api('POST', '/api/onsales/ons_nope/queue')).status).toBe(401);
  });
});

describe('admission', () => {
  it('lets nobody hold without an admission, and an admitted buyer hold and book once', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const onsale = await createOnsale([showId], 60);
    const buyers = await Promise.all(Array.from({ length: 4 }, () => newUser(server.api)));
    for (const b of buyers) {
      const joined = await server.api('POST', `/api/onsales/${onsale.id}/queue`, { token: b.token });
      expect(joined.status).toBe(201);
      expect(joined.body).toMatchObject({ state: 'waiting', position: null });
    }
    const again = await server.api('POST', `/api/onsales/${onsale.id}/queue`, { token: buyers[0]!.token });
    expect(again.status).toBe(200);
    const tryAll = async (token: string, headers: Record<string, string> = {}) => [
      await server.api('POST', `/api/shows/${showId}/holds`, { token, headers, body: { seats: ['B1'] } }),
      await server.api('POST', `/api/shows/${showId}/lock-seat`, {
        token,
        headers,
        body: { seatNumber: 'B2' },
      }),
      await server.api('POST', '/api/bookings', {
        token,
        headers,
        body: { showId, seats: ['B3'], paymentMethod: 'card' },
      }),
    ];
    // Before opening: nobody, on any hold path.
    for (const res of await tryAll(buyers[0]!.token)) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('ADMISSION_REQUIRED');
    }
    await openAndStep(1_000);
    const answers = await Promise.all(
      buyers.map(
        async (b) => (await server.api('GET', `/api/onsales/${onsale.id}/queue`, { token: b.token })).body,
      ),
    );
    const admittedAt = answers.findIndex((a) => a.state === 'admitted');
    expect(answers.filter((a) => a.state === 'admitted')).toHaveLength(1);
    expect(answers.map((a) => a.position).sort()).toEqual([1, 2, 3, 4]);
    const admitted = buyers[admittedAt]!;
    const token = answers[admittedAt].admission.token as string;
    const waiting = buyers.find((_, i) => i !== admittedAt)!;
    // Someone else's token, a garbled one, none: refused on every path.
    const refusedHeaders: Record<string, string>[] = [
      { 'admission-token': token },
      { 'admission-token': 'x.y.z' },
      {},
    ];
    for (const headers of refusedHeaders)
      for (const res of await tryAll(waiting.token, headers)) {
        expect(res.status).toBe(403);
        expect(res.body.error.code).toBe('ADMISSION_REQUIRED');
      }
    expect(await server.deps.router.getHold(showId, 'hld_none')).toBeUndefined();
    const seats = await server.api('GET', `/api/shows/${showId}/seats`);
    expect(seats.body.counts.held).toBe(0);
    // The admitted buyer holds with the token, then books: the token ends there.
    const hold = await server.api('POST', `/api/shows/${showId}/holds`, {
      token: admitted.token,
      headers: { 'admission-token': token },
      body: { seats: ['C1', 'C2'] },
    });
    expect(hold.status).toBe(201);
    const booking = await server.api('POST', '/api/bookings', {
      token: admitted.token,
      body: { holdId: hold.body.hold.id, paymentMethod: 'card' },
    });
    expect(booking.status).toBe(201);
    const after = await server.api('POST', `/api/shows/${showId}/holds`, {
      token: admitted.token,
      headers: { 'admission-token': token },
      body: { seats: ['C3'] },
    });
    expect(after.status).toBe(403);
    expect(after.body.error.details.reason).toBe('the admission was used by a booking');
    const polled = await server.api('GET', `/api/onsales/${onsale.id}/queue`, { token: admitted.token });
    expect(polled.body.state).toBe('closed');
    // Shows outside any on-sale are untouched.
    const free = await createShow(server.api, { adminToken });
    const elsewhere = await server.api('POST', `/api/shows/${free.showId}/holds`, {
      token: waiting.token,
      body: { seats: ['A1'] },
    });
    expect(elsewhere.status).toBe(201);
  });

  it('pushes the queue answer over /ws/onsales/:id and tells everyone when the shows sell out', async () => {
    const small = { rows: [{ label: 'A', category: 'GOLD', seats: 4 }] };
    const { showId } = await createShow(server.api, { adminToken, layout: small, prices: { GOLD: 10000 } });
    const onsale = await createOnsale([showId], 1);
    const buyers = await Promise.all(Array.from({ length: 3 }, () => newUser(server.api)));
    for (const b of buyers) await server.api('POST', `/api/onsales/${onsale.id}/queue`, { token: b.token });
    const feeds = await Promise.all(
      buyers.map((b) => follow(`/ws/onsales/${onsale.id}?access_token=${encodeURIComponent(b.token)}`)),
    );
    for (const feed of feeds) expect(await feed.next()).toMatchObject({ state: 'waiting', position: null });
    nowMs += HOUR_MS;
    await server.deps.onsales.tick();
    const opened = await Promise.all(feeds.map((f) => f.next()));
    expect(opened.map((m) => m.position).sort()).toEqual([1, 2, 3]);
    await server.api('POST', `/api/admin/shows/${showId}/block`, {
      token: adminToken,
      body: { seats: ['A1', 'A2', 'A3', 'A4'] },
    });
    nowMs += 1_000;
    await server.deps.onsales.tick();
    for (const feed of feeds) {
      expect(await feed.next()).toMatchObject({ state: 'closed' });
      feed.ws.close();
    }
    const admin = await server.api('GET', `/api/admin/onsales/${onsale.id}`, { token: adminToken });
    expect(admin.body.onsale.state).toBe('closed');
  });

  it('refuses a queue feed without a token, for someone not in the queue, and on a malformed path', async () => {
    const { showId } = await createShow(server.api, { adminToken });
    const onsale = await createOnsale([showId]);
    const stranger = await newUser(server.api);
    await expect(follow(`/ws/onsales/${onsale.id}`)).rejects.toThrow('status 401');
    await expect(
      follow(`/ws/onsales/${onsale.id}?access_token=${encodeURIComponent(stranger.token)}`),
    ).rejects.toThrow('status 404');
    await expect(follow('/ws/onsales/%E0%A4%A')).rejects.toThrow('status 400');
    await expect(follow(`/ws/onsales/${onsale.id}?access_token=forged`)).rejects.toThrow('status 401');
  });
});
