/**
 * Feeds per client: one address may hold WS_MAX_FEEDS_PER_ADDRESS feeds (one more is 429 RATE_LIMITED
 * with retry-after, and closing one frees its place), and all feeds together stay below the process's
 * open-files limit, so plain requests and other clients are still served when one client piles feeds up.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RESERVED_FILE_DESCRIPTORS } from '../../src/http/seat-feed.js';
import { ADMIN_ENV, createOnsale, createShow, newUser } from '../helpers/catalog.js';
import { spawnService } from '../helpers/process.js';
import {
  collect,
  connect,
  firstFeedMessage,
  isCompleteReply,
  jsonBodyOf,
  type RawReply,
  upgradeRequest,
} from '../helpers/raw-socket.js';
import { client, startTestServer, type TestServer } from '../helpers/server.js';

const PER_ADDRESS = 3;

/** Opens a feed and keeps it open once its snapshot arrived. */
function openFeed(url: string, feedPath: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http', 'ws') + feedPath, { headers });
    ws.once('message', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`feed refused with ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Sends an upgrade by hand and returns the server's whole answer (a 101, or a refusal with its body). */
async function upgrade(url: string, feedPath: string, headers: string[] = []): Promise<RawReply> {
  const socket = await connect(url);
  socket.write(upgradeRequest(feedPath, headers));
  const reply = await collect(socket, { until: isCompleteReply, waitMs: 5_000 });
  socket.destroy();
  return reply;
}

describe('feeds per client address', () => {
  let server: TestServer;
  let feedPath: string;
  beforeAll(async () => {
    server = await startTestServer({
      ...ADMIN_ENV,
      TRUSTED_PROXIES: '127.0.0.1',
      WS_MAX_FEEDS_PER_ADDRESS: String(PER_ADDRESS),
    });
    feedPath = `/ws/shows/${(await createShow(server.api)).showId}`;
  });
  afterAll(() => server?.destroy());

  it('refuses one feed past the limit with 429 and retry-after, and serves everyone else', async () => {
    const crowd = { 'x-forwarded-for': '203.0.113.7' };
    const feeds = [];
    for (let i = 0; i < PER_ADDRESS; i++) feeds.push(await openFeed(server.url, feedPath, crowd));

    const refused = await upgrade(server.url, feedPath, ['X-Forwarded-For: 203.0.113.7']);
    expect(refused.status).toBe(429);
    const text = refused.bytes.toString('utf8');
    expect(text).toMatch(/\r\nretry-after: \d+\r\n/i);
    expect(jsonBodyOf(refused)).toEqual({
      error: {
        code: 'RATE_LIMITED',
        message: expect.any(String),
        details: { limit: PER_ADDRESS, retryAfterSeconds: expect.any(Number) },
      },
    });

    const health = await server.api('GET', '/healthz');
    expect(health.status).toBe(200);
    const other = await firstFeedMessage(server.url, feedPath, { 'x-forwarded-for': '203.0.113.8' });
    expect(other.type).toBe('snapshot');

    // Closing one frees its place: the next feed from the same address is taken once the close lands.
    const closed = feeds.pop()!;
    await new Promise((resolve) => {
      closed.once('close', resolve);
      closed.close();
    });
    let status: number | undefined;
    for (let attempt = 0; attempt < 50 && status !== 101; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 20));
      status = (await upgrade(server.url, feedPath, ['X-Forwarded-For: 203.0.113.7'])).status;
    }
    expect(status).toBe(101);
    for (const ws of feeds) ws.close();
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const limited = await startTestServer({ ...ADMIN_ENV, WS_MAX_FEEDS_PER_ADDRESS: '1' });
    try {
      const path = `/ws/shows/${(await createShow(limited.api)).showId}`;
      const first = await openFeed(limited.url, path, { 'x-forwarded-for': '198.51.100.1' });
      const second = await upgrade(limited.url, path, ['X-Forwarded-For: 198.51.100.2']);
      expect(second.status).toBe(429);
      first.close();
    } finally {
      await limited.destroy();
    }
  });
});

describe('all feeds together', () => {
  const OPEN_FILES = 300;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-fdlimit-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  /** The service with OPEN_FILES file descriptors at most, and no per-address feed limit. */
  const spawnAtFileLimit = (dir: string) =>
    spawnService({
      wrapper: ['prlimit', `--nofile=${OPEN_FILES}:${OPEN_FILES}`, '--'],
      env: {
        ...ADMIN_ENV,
        DATA_DIR: dir,
        SEED_DEMO: 'false',
        WORKERS: '1',
        PARTITIONS: '8',
        JOURNAL_SYNC: 'normal',
        WS_MAX_FEEDS_PER_ADDRESS: '100000',
      },
    });

  it('stays below the open-files limit read at start, and plain requests still work at the bound', async () => {
    const service = await spawnAtFileLimit(dataDir);
    const feeds: WebSocket[] = [];
    try {
      const bound = OPEN_FILES - RESERVED_FILE_DESCRIPTORS;
      const logged = service.logs.find((l) => l.msg === 'seat feed bounds');
      expect(logged?.maxFeeds).toBe(bound);
      const api = client(service.url);
      const feedPath = `/ws/shows/${(await createShow(api)).showId}`;
      for (let i = 0; i < bound; i++) feeds.push(await openFeed(service.url, feedPath));

      const refused = await upgrade(service.url, feedPath);
      expect(refused.status).toBe(503);
      expect(jsonBodyOf(refused).error.code).toBe('OVERLOADED');
      expect((await api('GET', '/healthz')).status).toBe(200);
      expect((await api('GET', `/api/shows/${feedPath.split('/').pop()}`)).status).toBe(200);
    } finally {
      for (const ws of feeds) ws.terminate();
      service.child.kill('SIGTERM');
      await service.exited;
    }
  });

  it('counts the on-sale queue feeds in the same bound as the seat feeds', async () => {
    const sharedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-fdlimit-shared-'));
    const service = await spawnAtFileLimit(sharedDir);
    const feeds: WebSocket[] = [];
    try {
      const bound = OPEN_FILES - RESERVED_FILE_DESCRIPTORS;
      const api = client(service.url);
      const { showId, adminToken } = await createShow(api);
      const { showId: onsaleShowId } = await createShow(api, { adminToken });
      const onsaleId = await createOnsale(api, adminToken, [onsaleShowId]);
      const buyer = await newUser(api);
      expect(
        (await api('POST', `/api/onsales/${onsaleId}/queue`, { token: buyer.token })).status,
      ).toBeLessThan(300);
      const seatPath = `/ws/shows/${showId}`;
      const queuePath = `/ws/onsales/${onsaleId}?access_token=${encodeURIComponent(buyer.token)}`;
      // Half the bound as seat feeds, the rest as queue feeds: together they fill it.
      for (let i = 0; i < bound; i++) feeds.push(await openFeed(service.url, i % 2 ? queuePath : seatPath));

      for (const feedPath of [seatPath, queuePath]) {
        const refused = await upgrade(service.url, feedPath);
        expect(refused.status, feedPath).toBe(503);
        expect(jsonBodyOf(refused).error.code).toBe('OVERLOADED');
      }
      expect((await api('GET', '/healthz')).status).toBe(200);
      // A place freed by a queue feed is taken by a seat feed: one budget for both.
      const closed = feeds.pop()!;
      await new Promise<void>((resolve) => {
        closed.once('close', () => resolve());
        closed.close();
      });
      let reopened: WebSocket | undefined;
      for (let attempt = 0; attempt < 50 && !reopened; attempt++) {
        reopened = await openFeed(service.url, seatPath).catch(async () => {
          // The server may not have seen the close yet: ask again shortly (bounded).
          await new Promise((r) => setTimeout(r, 20));
          return undefined;
        });
      }
      expect(reopened).toBeDefined();
      feeds.push(reopened!);
    } finally {
      for (const ws of feeds) ws.terminate();
      service.child.kill('SIGTERM');
      await service.exited;
      fs.rmSync(sharedDir, { recursive: true, force: true });
    }
  });
});
