/**
 * @module bench/peers/hono-setnx
 * The seed design with its race closed the usual way: Hono on @hono/node-server, and each seat locked
 * with one atomic `SET key user EX ttl NX`. A hold of several seats takes them in turn and gives back
 * the ones it got when one is taken; a release deletes the key only if it is still the caller's
 * (compare-and-delete in a Lua script). Env: PORT, REDIS_URL, JWT_SECRET.
 */
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import {
  errorReply,
  LOCK_TTL_SECONDS,
  lockedReply,
  lockKey,
  PORT,
  REDIS_URL,
  seatsOf,
  userOf,
} from './seed-common.js';

const RELEASE_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return -1 end`;

const redis = new Redis(REDIS_URL);
const app = new Hono();

app.get('/healthz', (c) => c.json({ ok: true }));

app.post('/api/shows/:id/lock-seat', async (c) => {
  const userId = await userOf(c.req.header('authorization'));
  if (!userId) return c.json(errorReply('UNAUTHENTICATED', 'send a bearer token'), 401);
  const seats = seatsOf(await c.req.json().catch(() => undefined));
  if (!seats) return c.json(errorReply('VALIDATION_FAILED', 'seatNumber or seatNumbers'), 400);
  const showId = c.req.param('id');
  const taken: string[] = [];
  for (const seat of seats) {
    const isSet = await redis.set(lockKey(showId, seat), userId, 'EX', LOCK_TTL_SECONDS, 'NX');
    if (isSet === 'OK') {
      taken.push(seat);
      continue;
    }
    for (const mine of taken) await redis.eval(RELEASE_IF_OWNER, 1, lockKey(showId, mine), userId);
    return c.json(errorReply('SEATS_UNAVAILABLE', `seat ${seat} is locked`), 409);
  }
  return c.json(lockedReply(showId, seats, userId), 200);
});

app.delete('/api/shows/:id/lock-seat/:seat', async (c) => {
  const userId = await userOf(c.req.header('authorization'));
  if (!userId) return c.json(errorReply('UNAUTHENTICATED', 'send a bearer token'), 401);
  const released = await redis.eval(
    RELEASE_IF_OWNER,
    1,
    lockKey(c.req.param('id'), c.req.param('seat')),
    userId,
  );
  if (released === 1) return c.body(null, 204);
  return c.json(errorReply('HOLD_NOT_FOUND', 'not locked by you'), 404);
});

const server = serve({ fetch: app.fetch, port: PORT, hostname: '127.0.0.1' }) as Server;
process.on('SIGTERM', () => {
  server.closeAllConnections();
  redis.disconnect();
  process.exit(0);
});
