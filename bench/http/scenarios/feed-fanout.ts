/**
 * @module bench/http/scenarios/feed-fanout
 * Scenario 5: 5,000 WebSocket subscribers (in child processes, ../feed-subscriber.ts) on one show while
 * four loops hold and release seats on it, each as fast as it is answered (or at `--feed-rate`). Each
 * hold or release is stamped when it is sent; each subscriber notes when the matching delta arrived.
 * Reported: deliveries/s and p50/p99 from change (request sent) to delivery. The ceiling is the bare app
 * broadcasting a delta per request to the same subscribers (bench/peers/ceiling.ts with FEED=1). With a
 * paced rate both deliver what is offered, so the ratio is left out and the latencies compare.
 */
import path from 'node:path';
import { JsonClient } from '../client.js';
import { type BenchContext, type Row, ratio, usersFor, withCeiling, withService } from '../context.js';
import { type Stamps, wallNow } from '../feed-protocol.js';
import type { BenchUser } from '../fixtures.js';
import { createShows, SEAT_LABELS } from '../fixtures.js';
import { type HistogramEntries, Latencies, round } from '../latency.js';
import { type Managed, sleep } from '../processes.js';

export const SCENARIO = '5 feed fan-out';
/** Holder loops; each owns every FEED_LANES-th seat, so a seat's changes come from one loop in order. */
const FEED_LANES = 4;
/** Subscribers connecting at once per child (the listen backlog is 511). */
const CONNECT_WAVE = 200;
const CONNECT_TIMEOUT_MS = 180_000;
const DRAIN_TIMEOUT_MS = 10_000;
const SUBSCRIBER = path.resolve(new URL('../feed-subscriber.ts', import.meta.url).pathname);

interface FeedTarget {
  httpUrl: string;
  wsUrl: string;
  showId: string;
}

interface FeedResult {
  connected: number;
  failedConnects: number;
  changes: number;
  failedChanges: number;
  seconds: number;
  deliveries: number;
  unmatched: number;
  drops: number;
  resyncs: number;
  latency: Latencies;
  holdLatency: Latencies;
}

type ChildMessage = { type: string; [k: string]: any };

function ask(child: Managed, message: ChildMessage, reply: string, timeoutMs: number): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.child.off('message', onMessage);
      reject(new Error(`feed subscriber: no ${reply} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: ChildMessage) => {
      if (m.type !== reply) return;
      clearTimeout(timer);
      child.child.off('message', onMessage);
      resolve(m);
    };
    child.child.on('message', onMessage);
    child.child.send(message);
  });
}

/** Paced hold → release cycles over this lane's seats until the deadline. */
async function holderLane(
  client: JsonClient,
  target: FeedTarget,
  user: BenchUser,
  seats: string[],
  intervalMs: number,
  deadline: number,
  out: { stamps: Stamps; changes: number; failed: number; holdLatency: Latencies },
): Promise<void> {
  let due = performance.now();
  for (let n = 0; performance.now() < deadline; n++) {
    const seat = seats[n % seats.length]!;
    out.stamps[seat] ??= { held: [], available: [] };
    const stamp = out.stamps[seat];
    due += intervalMs;
    let sentAt = wallNow();
    const held = await client.request('POST', `/api/shows/${target.showId}/holds`, {
      body: { seats: [seat] },
      token: user.token,
    });
    out.holdLatency.record(held.ms);
    if (held.status !== 201) {
      out.failed++;
      continue;
    }
    stamp.held.push(sentAt);
    out.changes++;
    if (intervalMs > 0) await sleep(Math.max(0, due - performance.now()));
    due += intervalMs;
    sentAt = wallNow();
    const released = await client.request('DELETE', `/api/holds/${held.body.hold.id}`, { token: user.token });
    if (released.status !== 204) out.failed++;
    else {
      stamp.available.push(sentAt);
      out.changes++;
    }
    if (intervalMs > 0) await sleep(Math.max(0, due - performance.now()));
  }
}

async function connectSubscribers(
  ctx: BenchContext,
  wsUrl: string,
): Promise<{ children: Managed[]; ok: number; version: number }> {
  const { subscribers, feedProcesses } = ctx.options;
  const children = Array.from({ length: feedProcesses }, (_, i) =>
    ctx.procs.spawn(`feed-subscriber-${i}`, process.execPath, ['--import', 'tsx', SUBSCRIBER], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    }),
  );
  const replies = await Promise.all(
    children.map((child, i) => {
      const count = Math.floor(subscribers / feedProcesses) + (i < subscribers % feedProcesses ? 1 : 0);
      return ask(
        child,
        { type: 'connect', url: wsUrl, count, concurrency: CONNECT_WAVE },
        'connected',
        CONNECT_TIMEOUT_MS,
      );
    }),
  );
  const ok = replies.reduce((sum, r) => sum + (r.ok as number), 0);
  return { children, ok, version: Math.max(...replies.map((r) => r.version as number)) };
}

async function runFeed(ctx: BenchContext, target: FeedTarget, users: BenchUser[]): Promise<FeedResult> {
  const { options } = ctx;
  const { children, ok, version } = await connectSubscribers(ctx, target.wsUrl);
  const client = new JsonClient(target.httpUrl, FEED_LANES);
  try {
    const out = { stamps: {} as Stamps, changes: 0, failed: 0, holdLatency: new Latencies() };
    const intervalMs = options.feedRate > 0 ? (1000 * FEED_LANES) / options.feedRate : 0;
    const started = performance.now();
    const deadline = started + options.seconds * 1000;
    await Promise.all(
      Array.from({ length: FEED_LANES }, (_, lane) => {
        const seats = SEAT_LABELS.filter((_, i) => i % FEED_LANES === lane);
        return holderLane(client, target, users[lane % users.length]!, seats, intervalMs, deadline, out);
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (Date.now() < drainDeadline) {
      const status = await Promise.all(children.map((c) => ask(c, { type: 'status' }, 'status', 5000)));
      if (status.every((s) => s.minVersion >= version + out.changes || s.open === 0)) break;
      await sleep(100);
    }
    const results = await Promise.all(
      children.map((c) => ask(c, { type: 'stamps', stamps: out.stamps }, 'result', 60_000)),
    );
    const latency = new Latencies();
    for (const r of results) latency.merge(r.entries as HistogramEntries);
    const sum = (k: string) => results.reduce((s, r) => s + (r[k] as number), 0);
    return {
      connected: ok,
      failedConnects: options.subscribers - ok,
      changes: out.changes,
      failedChanges: out.failed,
      seconds,
      deliveries: sum('deliveries'),
      unmatched: sum('unmatched'),
      drops: sum('drops'),
      resyncs: sum('resyncs'),
      latency,
      holdLatency: out.holdLatency,
    };
  } finally {
    client.close();
    for (const child of children) if (child.child.connected) child.child.send({ type: 'close' });
    await Promise.all(children.map((c) => ctx.procs.stop(c, 'SIGTERM', 5000)));
  }
}

function feedRow(target: string, result: FeedResult, feedRate: number, ceiling?: Row): Row {
  const deliveriesPerSecond = Math.round(result.deliveries / result.seconds);
  const { p50Ms, p99Ms } = result.latency.summary();
  return {
    scenario: SCENARIO,
    target,
    requestsPerSecond: deliveriesPerSecond,
    p50Ms,
    p99Ms,
    errors: result.failedConnects + result.drops,
    non2xx: result.failedChanges,
    ratio: ceiling && feedRate === 0 ? ratio(deliveriesPerSecond, ceiling.requestsPerSecond) : undefined,
    notes: {
      unit: 'deliveries/s; latency from the hold or release being sent to the delta arriving',
      subscribers: result.connected,
      offeredChangesPerSecond: feedRate === 0 ? 'max' : feedRate,
      changes: result.changes,
      changesPerSecond: round(result.changes / result.seconds, 1),
      deliveries: result.deliveries,
      expectedDeliveries: result.changes * result.connected,
      unmatched: result.unmatched,
      drops: result.drops,
      resyncs: result.resyncs,
      holdP99Ms: result.holdLatency.summary().p99Ms,
    },
  };
}

export async function feedFanout(ctx: BenchContext): Promise<Row[]> {
  const users = usersFor(ctx, FEED_LANES);
  let holdBytes = 0;
  const service = await withService(ctx, 'feed-fanout', async ({ service, client, adminToken }) => {
    const [showId] = await createShows(client, adminToken, 1);
    const probe = await client.request('POST', `/api/shows/${showId}/holds`, {
      body: { seats: ['A1'] },
      token: users[0]!.token,
    });
    await client.request('DELETE', `/api/holds/${probe.body.hold.id}`, { token: users[0]!.token });
    holdBytes = probe.bytes;
    const wsUrl = `${service.url.replace('http:', 'ws:')}/ws/shows/${showId}`;
    return runFeed(ctx, { httpUrl: service.url, wsUrl, showId: showId! }, users);
  });
  const ceiling = await withCeiling(
    ctx,
    holdBytes,
    (peer) =>
      runFeed(
        ctx,
        { httpUrl: peer.url, wsUrl: `${peer.url.replace('http:', 'ws:')}/ws/shows/shw_x`, showId: 'shw_x' },
        users,
      ),
    true,
  );
  const ceilingRow = feedRow('ceiling', ceiling, ctx.options.feedRate);
  return [feedRow('service', service, ctx.options.feedRate, ceilingRow), ceilingRow];
}
