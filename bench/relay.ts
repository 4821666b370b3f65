/**
 * `npm run bench -- relay [--seconds N] [--events N] [--rate N] [--subscribers 1,50] [--json]`: the
 * live seat feed's relay between cluster nodes (issue 15 item 3), measured for the three candidates:
 *
 * - notify: PostgreSQL NOTIFY/LISTEN as SeatRelay does it: `notify()` from the store, chained one after
 *   another on a PostgresStore, `store.subscribe()` on the receiving node (a throwaway server, fsync on);
 * - redis: PUBLISH per message with ioredis, SUBSCRIBE on the receiving node (a throwaway redis-server);
 * - proxy: the receiving node holds one WebSocket per subscriber to the owner node and passes frames on.
 *   The owner side here is a minimal feed server (the service's `createFeedServer`, its options) that
 *   sends every subscriber the same message, not the service's per-subscriber deltas: what is measured
 *   is the transport's cost per connection, which is what grows with subscribers.
 *
 * Traffic as the owner node makes it: real ShowEvents (holds and releases of two seats applied to show
 * actors, turned into events as ShardCore does; made before the clock starts and sent round and round),
 * `--events` (default 10) per shard turn, packed as SeatRelay#flush packs them (`{n, e: [...]}`, ≤7500
 * bytes), one message per turn, plus the send time `t` in front for the latency. The publisher and the
 * receiver are child processes; the receiver parses each message and counts its events as SeatRelay's
 * listener does (the proxy parses one subscriber's frames and only reads `t` from the others'). Per relay:
 * 1. saturation for --seconds: a message per turn as fast as the relay takes it (at most
 *    MAX_IN_FLIGHT messages not yet taken, per subscriber for the proxy): events/s delivered;
 * 2. paced at --rate messages/s (default 500) for --seconds: latency publish → receive, p50/p99;
 * and for both, CPU ms per 1,000 events of the publisher, the receiver and the server (postgres: the
 * postmaster and its backends; redis-server), from process.cpuUsage() and /proc. "Events" are distinct
 * events reaching the receiving node; for the proxy each reaches it once per subscriber.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { simpleLayout } from '../src/actors/seat-layout.js';
import type { ShowEvent } from '../src/actors/shard-protocol.js';
import { apply, createShowState } from '../src/actors/show-actor.js';
import { layoutKeyOf, layoutResolver } from '../src/actors/show-codec.js';
import { packRelayMessages, SEATS_CHANNEL } from '../src/cluster/seat-relay.js';
import { createFeedServer } from '../src/http/seat-feed.js';
import { newId } from '../src/ids.js';
import { createLogger } from '../src/logger.js';
import { notify, PostgresStore } from '../src/persistence/store.js';
import { startTestRedis } from '../test/helpers/redis.js';
import { wallNow } from './http/feed-protocol.js';
import { type HistogramEntries, Latencies } from './http/latency.js';
import { BenchPostgres, childrenOf, cpuByPid, cpuDelta } from './http/postgres.js';
import { type Managed, type Processes, runBench, sleep } from './http/processes.js';

type Kind = 'notify' | 'redis' | 'proxy';
type Message = { type: string; [key: string]: unknown };

const ROLE_ENV = 'BOXOFFICE_RELAY_BENCH_ROLE';
/** Messages handed to the relay and not yet taken (sent, or written to the socket) before the publisher waits. */
const MAX_IN_FLIGHT = 32;
/** Real events made before the clock starts, sent round and round. */
const EVENT_POOL = 20_000;
const SETUP_TIMEOUT_MS = 30_000;
/** How long the receiver may take to catch up after the publisher stopped. */
const DRAIN_TIMEOUT_MS = 10_000;
const WARMUP_SECONDS = 0.5;
const OWNER = 'node-a:8080';
const RECEIVER = 'node-b:8080';

if (process.env[ROLE_ENV] === 'publisher') publisher();
else if (process.env[ROLE_ENV] === 'receiver') receiver();
else await main();

// ------------------------------------------------------------------------------------------------
// The owner node's side

/** Holds and releases of two adjacent seats over 100 shows of 300 seats, as events the way ShardCore makes them. */
function realEvents(count: number): ShowEvent[] {
  const layoutKey = layoutKeyOf(simpleLayout(15, 20, ['PREMIUM', 'GOLD', 'SILVER']));
  const layout = layoutResolver()(layoutKey);
  const labels = [...layout.labels];
  const shows = Array.from({ length: 100 }, () => createShowState(newId('shw'), layout, layoutKey, false));
  const events: ShowEvent[] = [];
  for (let n = 0; events.length < count; n++) {
    const state = shows[n % shows.length]!;
    const seat = (n * 7) % (labels.length - 1);
    const holdId = `hld_${n}`;
    const nowMs = Date.now();
    for (const command of [
      {
        type: 'hold' as const,
        holdId,
        ownerId: 'usr_bench',
        seats: [labels[seat]!, labels[seat + 1]!],
        nowMs,
        expiresAtMs: nowMs + 300_000,
        maxSeatsPerOwner: 10,
      },
      { type: 'release' as const, holdId, ownerId: 'usr_bench', nowMs },
    ]) {
      const result = apply(state, command);
      if (!result.isChanged) continue;
      const changes: [number, number][] = result.changed.map((i) => [i, state.seats[i]!]);
      events.push({ showId: state.showId, version: state.version, changes });
    }
  }
  return events;
}

/** SeatRelay's own packing, with the send time in front: one or more messages of ≤7500 bytes. */
function pack(events: ShowEvent[]): string[] {
  return packRelayMessages(`{"t":${wallNow().toFixed(3)},"n":${JSON.stringify(OWNER)},"e":[`, events);
}

interface Sender {
  send(payload: string): void;
  /** Messages (frames, for the proxy) handed over and not yet taken. */
  inFlight(): number;
  close(): Promise<void>;
}

function publisher(): void {
  process.on('disconnect', () => process.exit());
  const pool = realEvents(EVENT_POOL);
  let next = 0;
  const batch = (size: number) => {
    const events: ShowEvent[] = [];
    for (let i = 0; i < size; i++) events.push(pool[next++ % pool.length]!);
    return events;
  };
  let sender: Sender | undefined;
  let errors = 0;
  let wake: (() => void) | undefined;
  const settle = () => {
    wake?.();
    wake = undefined;
  };

  async function setup(kind: Kind, url: string): Promise<Message> {
    let inFlight = 0;
    const done = () => {
      inFlight--;
      settle();
    };
    if (kind === 'notify') {
      const store = new PostgresStore(url, { maxConnections: 4, statementTimeoutMs: 5000 });
      let sending: Promise<void> = Promise.resolve();
      sender = {
        // SeatRelay's order: each NOTIFY after the previous one's answer.
        send(payload) {
          inFlight++;
          sending = sending.then(() =>
            notify(store, SEATS_CHANNEL, payload).then(done, () => {
              errors++;
              done();
            }),
          );
        },
        inFlight: () => inFlight,
        close: async () => {
          await sending;
          await store.close();
        },
      };
      return { type: 'ready' };
    }
    if (kind === 'redis') {
      const client = new Redis(url, { maxRetriesPerRequest: 1 });
      await client.ping();
      sender = {
        send(payload) {
          inFlight++;
          client.publish(SEATS_CHANNEL, payload).then(done, () => {
            errors++;
            done();
          });
        },
        inFlight: () => inFlight,
        close: async () => {
          await client.quit();
        },
      };
      return { type: 'ready' };
    }
    const { wss, heartbeat } = createFeedServer(createLogger('silent'), 'relay bench feed');
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    server.on('upgrade', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        heartbeat.watch(ws);
        wss.emit('connection', ws, req);
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    sender = {
      send(payload) {
        for (const ws of wss.clients) {
          inFlight++;
          ws.send(payload, (err) => {
            if (err) errors++;
            done();
          });
        }
      },
      inFlight: () => inFlight,
      close: async () => {
        heartbeat.stop();
        for (const ws of wss.clients) ws.terminate();
        await new Promise((resolve) => server.close(resolve));
      },
    };
    return { type: 'ready', url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/` };
  }

  /** Saturation when `rate` is 0, else `rate` messages per second; stops at the deadline. */
  async function run(seconds: number, rate: number, eventsPerTurn: number, subscribers: number) {
    const relay = sender!;
    const bound = MAX_IN_FLIGHT * subscribers;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const deadline = started + seconds * 1000;
    let messages = 0;
    let events = 0;
    let due = started;
    while (performance.now() < deadline) {
      while (relay.inFlight() >= bound) await new Promise<void>((resolve) => (wake = resolve));
      if (rate > 0) {
        const now = performance.now();
        if (due > now) {
          await sleep(Math.min(due - now, 5));
          continue;
        }
        due += 1000 / rate;
      }
      for (const payload of pack(batch(eventsPerTurn))) {
        relay.send(payload);
        messages++;
      }
      events += eventsPerTurn;
      // The next shard turn: one message per turn, as SeatRelay flushes.
      if (rate === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const drainDeadline = performance.now() + DRAIN_TIMEOUT_MS;
    while (relay.inFlight() > 0 && performance.now() < drainDeadline) await sleep(5);
    const cpu = process.cpuUsage(cpuBefore);
    return {
      type: 'done',
      messages,
      events,
      errors,
      seconds: (performance.now() - started) / 1000,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
  }

  process.on('message', (m: Message) => {
    const reply = (promise: Promise<Message>) =>
      promise.then(
        (r) => process.send?.(r),
        (err: Error) => process.send?.({ type: 'failed', error: String(err?.stack ?? err) }),
      );
    if (m.type === 'setup') void reply(setup(m.kind as Kind, m.url as string));
    else if (m.type === 'run')
      void reply(run(m.seconds as number, m.rate as number, m.events as number, m.subscribers as number));
    else if (m.type === 'close')
      void reply((sender?.close() ?? Promise.resolve()).then(() => ({ type: 'closed' })));
  });
}

// ------------------------------------------------------------------------------------------------
// The receiving node's side

function receiver(): void {
  process.on('disconnect', () => process.exit());
  let latency = new Latencies();
  let framesBySubscriber: number[] = [0];
  let events = 0;
  let firstMs = 0;
  let lastMs = 0;
  let cpuBefore = process.cpuUsage();
  let close: () => Promise<void> = async () => undefined;

  /** `t` is the message's first field: read without parsing the rest. */
  const stamp = (head: string) => {
    const now = wallNow();
    if (firstMs === 0) firstMs = now;
    lastMs = now;
    latency.record(now - Number(head.slice(5, head.indexOf(','))));
  };
  /** As SeatRelay's listener: parse, skip our own, hand the events on (here: count them). */
  const take = (payload: string) => {
    let message: { n: string; e: ShowEvent[] };
    try {
      message = JSON.parse(payload) as { n: string; e: ShowEvent[] };
    } catch {
      return;
    }
    if (message.n !== RECEIVER && Array.isArray(message.e)) events += message.e.length;
  };

  async function setup(kind: Kind, url: string, subscribers: number): Promise<Message> {
    framesBySubscriber = new Array(kind === 'proxy' ? subscribers : 1).fill(0);
    if (kind === 'notify') {
      const store = new PostgresStore(url, { maxConnections: 1, statementTimeoutMs: 5000 });
      const subscription = await store.subscribe(SEATS_CHANNEL, {
        onMessage: (payload) => {
          stamp(payload);
          framesBySubscriber[0]!++;
          take(payload);
        },
        onResync: () => undefined,
      });
      close = async () => {
        await subscription.close();
        await store.close();
      };
    } else if (kind === 'redis') {
      const client = new Redis(url, { maxRetriesPerRequest: 1 });
      await client.subscribe(SEATS_CHANNEL);
      client.on('message', (_channel: string, payload: string) => {
        stamp(payload);
        framesBySubscriber[0]!++;
        take(payload);
      });
      close = async () => {
        await client.quit();
      };
    } else {
      const sockets = await Promise.all(
        Array.from(
          { length: subscribers },
          (_, i) =>
            new Promise<WebSocket>((resolve, reject) => {
              const ws = new WebSocket(url, { perMessageDeflate: false });
              ws.once('open', () => resolve(ws));
              ws.once('error', reject);
              ws.on('message', (data: Buffer) => {
                stamp(data.toString('latin1', 0, 32));
                framesBySubscriber[i]!++;
                // One subscriber's frames stand for the events; a proxy passes the others on unread.
                if (i === 0) take(data.toString());
              });
            }),
        ),
      );
      close = async () => {
        for (const ws of sockets) ws.terminate();
      };
    }
    return { type: 'ready' };
  }

  process.on('message', (m: Message) => {
    const reply = (promise: Promise<Message>) =>
      promise.then(
        (r) => process.send?.(r),
        (err: Error) => process.send?.({ type: 'failed', error: String(err?.stack ?? err) }),
      );
    if (m.type === 'setup') void reply(setup(m.kind as Kind, m.url as string, m.subscribers as number));
    else if (m.type === 'reset') {
      latency = new Latencies();
      framesBySubscriber.fill(0);
      events = 0;
      firstMs = 0;
      lastMs = 0;
      cpuBefore = process.cpuUsage();
      process.send?.({ type: 'reset' });
    } else if (m.type === 'status')
      process.send?.({ type: 'status', messages: Math.min(...framesBySubscriber) });
    else if (m.type === 'report') {
      const cpu = process.cpuUsage(cpuBefore);
      process.send?.({
        type: 'report',
        messages: Math.min(...framesBySubscriber),
        events,
        seconds: (lastMs - firstMs) / 1000,
        cpuMs: (cpu.user + cpu.system) / 1000,
        latency: latency.entries(),
      });
    } else if (m.type === 'close') void reply(close().then(() => ({ type: 'closed' })));
  });
}

// ------------------------------------------------------------------------------------------------
// The bench

interface Row {
  relay: string;
  mode: string;
  eventsPerSecond: number;
  messagesPerSecond: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU ms per 1,000 events delivered, by process. */
  publisherCpu: number;
  receiverCpu: number;
  serverCpu?: number;
}

function ask(child: Managed, message: Message, reply: string, timeoutMs: number): Promise<Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.child.off('message', onMessage);
      reject(new Error(`${child.name}: no ${reply} within ${timeoutMs} ms\n${child.stderrTail()}`));
    }, timeoutMs);
    const onMessage = (m: Message) => {
      if (m.type !== reply && m.type !== 'failed') return;
      clearTimeout(timer);
      child.child.off('message', onMessage);
      if (m.type === 'failed') reject(new Error(`${child.name}: ${m.error}`));
      else resolve(m);
    };
    child.child.on('message', onMessage);
    child.child.send(message);
  });
}

function spawnRole(procs: Processes, role: 'publisher' | 'receiver'): Managed {
  return procs.spawn(
    `relay-${role}`,
    process.execPath,
    ['--max-semi-space-size=64', '--import', 'tsx', fileURLToPath(import.meta.url)],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, [ROLE_ENV]: role } },
  );
}

function redisServerPid(): number | undefined {
  return childrenOf(process.pid).find((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'redis-server';
    } catch {
      return false;
    }
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      events: { type: 'string', default: '10' },
      rate: { type: 'string', default: '500' },
      subscribers: { type: 'string', default: '1,50' },
      json: { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  const eventsPerTurn = Number(values.events);
  const rate = Number(values.rate);
  const subscriberCounts = values.subscribers.split(',').map(Number);
  if (!(seconds > 0 && seconds <= 60 && eventsPerTurn >= 1 && eventsPerTurn <= 1000 && rate > 0))
    throw new Error('--seconds must be in (0, 60], --events in [1, 1000], --rate > 0');
  const rows: Row[] = [];

  await runBench(async (procs, isInterrupted) => {
    console.error('starting PostgreSQL and redis-server…');
    const postgres = await BenchPostgres.start(procs);
    const redis = await startTestRedis();
    const redisPid = redisServerPid();
    procs.onCleanup({
      stop: () => redis.stop(),
      killNow: () => {
        if (redisPid !== undefined) process.kill(redisPid, 'SIGKILL');
      },
    });
    const relays: { kind: Kind; label: string; url: string; subscribers: number; server?: () => number[] }[] =
      [
        {
          kind: 'notify',
          label: 'PostgreSQL NOTIFY',
          url: postgres.server.url,
          subscribers: 1,
          server: () => postgres.pids(),
        },
        {
          kind: 'redis',
          label: 'Redis pub/sub',
          url: redis.url,
          subscribers: 1,
          server: () => (redisPid === undefined ? [] : [redisPid]),
        },
        ...subscriberCounts.map((n) => ({
          kind: 'proxy' as const,
          label: `proxied WS ×${n}`,
          url: '',
          subscribers: n,
        })),
      ];
    for (const relay of relays) {
      if (isInterrupted()) break;
      const pub = spawnRole(procs, 'publisher');
      const rec = spawnRole(procs, 'receiver');
      const ready = await ask(
        pub,
        { type: 'setup', kind: relay.kind, url: relay.url },
        'ready',
        SETUP_TIMEOUT_MS,
      );
      const url = relay.kind === 'proxy' ? (ready.url as string) : relay.url;
      await ask(
        rec,
        { type: 'setup', kind: relay.kind, url, subscribers: relay.subscribers },
        'ready',
        SETUP_TIMEOUT_MS,
      );
      const measure = async (mode: string, runSeconds: number, runRate: number) => {
        await ask(rec, { type: 'reset' }, 'reset', 5000);
        const serverBefore = cpuByPid(relay.server?.() ?? []);
        const done = await ask(
          pub,
          {
            type: 'run',
            seconds: runSeconds,
            rate: runRate,
            events: eventsPerTurn,
            subscribers: relay.subscribers,
          },
          'done',
          (runSeconds + 30) * 1000,
        );
        const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
        while (Date.now() < drainDeadline) {
          const status = await ask(rec, { type: 'status' }, 'status', 5000);
          if ((status.messages as number) >= (done.messages as number)) break;
          await sleep(50);
        }
        const report = await ask(rec, { type: 'report' }, 'report', 10_000);
        const serverCpuMs = relay.server
          ? [...cpuDelta(serverBefore, cpuByPid(relay.server())).values()].reduce((a, b) => a + b, 0) * 1000
          : undefined;
        const delivered = report.events as number;
        const latency = new Latencies();
        latency.merge(report.latency as HistogramEntries);
        const perThousand = (ms: number) => Math.round((ms / Math.max(1, delivered / 1000)) * 100) / 100;
        const row: Row = {
          relay: relay.label,
          mode,
          eventsPerSecond: Math.round(delivered / Math.max(1e-3, report.seconds as number)),
          messagesPerSecond: Math.round(
            (report.messages as number) / Math.max(1e-3, report.seconds as number),
          ),
          lost: (done.messages as number) - (report.messages as number) + (done.errors as number),
          p50Ms: latency.summary().p50Ms,
          p99Ms: latency.summary().p99Ms,
          publisherCpu: perThousand(done.cpuMs as number),
          receiverCpu: perThousand(report.cpuMs as number),
          serverCpu: serverCpuMs === undefined ? undefined : perThousand(serverCpuMs),
        };
        return row;
      };
      console.error(`${relay.label}: warm-up, saturation, ${rate} messages/s…`);
      await measure('warm-up', WARMUP_SECONDS, 0);
      for (const [mode, runRate] of [
        ['saturation', 0],
        [`${rate} msg/s`, rate],
      ] as const) {
        if (isInterrupted()) break;
        const row = await measure(mode, seconds, runRate);
        rows.push(row);
        console.error(
          `  ${mode}: ${row.eventsPerSecond} events/s, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, CPU ms/1k events ${row.publisherCpu} / ${row.receiverCpu} / ${row.serverCpu ?? '-'}`,
        );
      }
      await ask(rec, { type: 'close' }, 'closed', 10_000).catch(() => undefined);
      await ask(pub, { type: 'close' }, 'closed', 10_000).catch(() => undefined);
      await procs.stop(rec);
      await procs.stop(pub);
    }

    const machine = {
      cores: os.availableParallelism(),
      load: os.loadavg().map((l) => Math.round(l * 100) / 100),
    };
    if (values.json) {
      console.log(JSON.stringify({ seconds, eventsPerTurn, rate, machine, rows }, null, 2));
      return;
    }
    console.log(
      `| relay | load | events/s delivered | messages/s | lost | p50 ms | p99 ms | CPU ms / 1k events: publisher | receiver | server |`,
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows)
      console.log(
        `| ${r.relay} | ${r.mode} | ${r.eventsPerSecond} | ${r.messagesPerSecond} | ${r.lost} | ${r.p50Ms} | ${r.p99Ms} | ${r.publisherCpu} | ${r.receiverCpu} | ${r.serverCpu ?? '-'} |`,
      );
    console.log(
      `${eventsPerTurn} events per message, ${seconds} s per run; ${machine.cores} cores, load average at the end ${machine.load.join(' ')}`,
    );
  });
}
