/**
 * @module bench/http/scenarios/seed-peers
 * Scenario 6: the seed design as a peer, in the same run. Express with Redis GET-then-SETEX seat locks
 * (as the design document wrote it) and, separately, Hono with Redis SET NX, each under scenario 2's
 * hold-and-release cycle and under scenario 3's race. The bench starts its own redis-server on a free
 * loopback port and flushes it before each run. Reported: throughput, latency, and how many seats each
 * locked twice (in the cycle: a grant while an earlier grant of that seat was surely still held; in the
 * race, where nothing is released: any seat granted to two users).
 */
import { JsonClient } from '../client.js';
import { type BenchContext, loadRow, type Row, ratio, usersFor } from '../context.js';
import { GrantTracker, holdReleaseRequests, SEED_LOCKS, SlotPool } from '../cycles.js';
import { SEAT_LABELS } from '../fixtures.js';
import { runLoad } from '../load.js';
import { type BenchRedis, type PeerName, startRedis, startSeedPeer } from '../peers.js';
import { raceUsers, runRace, seatsGrantedTwice, seedRaceTarget } from '../race.js';
import { CYCLE_USERS, holdReleaseCeiling } from './hold-release.js';
import { raceCeiling, raceNotes } from './hot-show.js';

export const SCENARIO_CYCLE = '6 peers: hold + release';
export const SCENARIO_RACE = '6 peers: hot-show race';
const PEERS: PeerName[] = ['express-getsetex', 'hono-setnx'];
/** The peers' reply to a one-seat lock, close enough to size the ceiling when scenario 2 did not run. */
const PEER_LOCK_BYTES = 220;

async function cycle(ctx: BenchContext, redis: BenchRedis, name: PeerName): Promise<Row> {
  const { options } = ctx;
  const users = usersFor(ctx, CYCLE_USERS);
  await redis.flush();
  const peer = await startSeedPeer(ctx.procs, name, redis.url, ctx.jwtSecret);
  const tracker = new GrantTracker();
  try {
    const showIds = Array.from({ length: options.shows }, (_, i) => `shw_peer${i}`);
    const load = await runLoad({
      url: peer.url,
      pids: [peer.managed.child.pid, redis.pid],
      connections: options.connections,
      seconds: options.seconds,
      warmupSeconds: options.warmupSeconds,
      requests: holdReleaseRequests(SEED_LOCKS, new SlotPool(showIds, SEAT_LABELS), users, tracker),
      onMeasureStart: () => tracker.reset(),
    });
    const ceiling =
      ctx.ceilings.get('hold-release') ?? (await holdReleaseCeiling(ctx, PEER_LOCK_BYTES, users[0]!));
    return loadRow(SCENARIO_CYCLE, name, load, ceiling, {
      grants: tracker.grants,
      seatsLockedTwice: tracker.doubleGrants,
    });
  } finally {
    await peer.stop();
  }
}

async function race(ctx: BenchContext, redis: BenchRedis, name: PeerName): Promise<Row> {
  const { options } = ctx;
  const users = raceUsers(usersFor(ctx, options.users), options.seed);
  await redis.flush();
  const peer = await startSeedPeer(ctx.procs, name, redis.url, ctx.jwtSecret);
  const lanes = new JsonClient(peer.url, options.raceLanes);
  try {
    await lanes.warm(options.raceLanes);
    const stats = await runRace(
      seedRaceTarget(lanes, 'shw_race'),
      users,
      options.raceLanes,
      options.raceTimeoutSeconds * 1000,
    );
    const holdSeconds = Math.max(0.001, stats.lastHoldMs / 1000);
    const requestsPerSecond = Math.round(stats.holdRequests / holdSeconds);
    const ceiling = await raceCeiling(
      ctx,
      stats.holdBytes / Math.max(1, stats.holdRequests),
      stats.holdRequests,
    );
    const hold = stats.holdLatencies.summary();
    let extraGrants = 0;
    for (const n of stats.grants.values()) extraGrants += n - 1;
    return {
      scenario: SCENARIO_RACE,
      target: name,
      requestsPerSecond,
      p50Ms: hold.p50Ms,
      p99Ms: hold.p99Ms,
      errors: stats.errors,
      non2xx: stats.refused,
      ratio: ratio(requestsPerSecond, ceiling.requestsPerSecond),
      notes: {
        ...raceNotes(stats, users.length, options.raceLanes),
        seatsLockedTwice: seatsGrantedTwice(stats.grants),
        extraGrants,
        mode: 'locks only (the seed design has no bookings here); explicit seats, "best" users pick centre seats',
      },
    };
  } finally {
    lanes.close();
    await peer.stop();
  }
}

export async function seedPeers(ctx: BenchContext): Promise<Row[]> {
  const redis = await startRedis(ctx.procs);
  const rows: Row[] = [];
  try {
    for (const name of PEERS) rows.push(await cycle(ctx, redis, name));
    for (const name of PEERS) rows.push(await race(ctx, redis, name));
  } finally {
    await redis.stop();
  }
  return rows;
}
