/**
 * @module bench/peers/express-getsetex
 * The seed design, as its document wrote it: Express, and a seat lock taken by reading the seat's key
 * in Redis and, when it is empty, writing it with SETEX. Two requests for a free seat can both read
 * "empty" before either writes: that window is what the bench counts as seats locked twice. Kept
 * deliberately as designed (sequential awaits, one connection); it is a peer to measure, not to fix.
 * Env: PORT, REDIS_URL, JWT_SECRET.
 */
import express from 'express';
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

const redis = new Redis(REDIS_URL);
const app = express();
app.use(express.json());

app.get('/healthz', (_req, res) => {
  res.json({ ok: true });
});

app.post('/api/shows/:id/lock-seat', async (req, res) => {
  const userId = await userOf(req.headers.authorization);
  if (!userId) return void res.status(401).json(errorReply('UNAUTHENTICATED', 'send a bearer token'));
  const seats = seatsOf(req.body);
  if (!seats) return void res.status(400).json(errorReply('VALIDATION_FAILED', 'seatNumber or seatNumbers'));
  const showId = req.params.id;
  for (const seat of seats) {
    const holder = await redis.get(lockKey(showId, seat));
    if (holder) return void res.status(409).json(errorReply('SEATS_UNAVAILABLE', `seat ${seat} is locked`));
  }
  for (const seat of seats) await redis.setex(lockKey(showId, seat), LOCK_TTL_SECONDS, userId);
  res.status(200).json(lockedReply(showId, seats, userId));
});

app.delete('/api/shows/:id/lock-seat/:seat', async (req, res) => {
  const userId = await userOf(req.headers.authorization);
  if (!userId) return void res.status(401).json(errorReply('UNAUTHENTICATED', 'send a bearer token'));
  const key = lockKey(req.params.id, req.params.seat);
  const holder = await redis.get(key);
  if (!holder) return void res.status(404).json(errorReply('HOLD_NOT_FOUND', 'not locked'));
  if (holder !== userId) return void res.status(403).json(errorReply('HOLD_NOT_OWNED', 'not yours'));
  await redis.del(key);
  res.status(204).end();
});

const server = app.listen(PORT, '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  redis.disconnect();
  process.exit(0);
});
