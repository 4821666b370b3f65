/**
 * @module bench/http/scenarios/hold-release
 * Scenario 2: every connection holds a seat (`POST /api/shows/:id/holds {seats: [one]}`) and releases
 * it (`DELETE /api/holds/:id`), each cycle as the next user and on the next free seat slot, over many
 * shows. Target: 0.7 of the ceiling's requests/s with at most 1% non-2xx. The ceiling answers the
 * same request chains (the same code builds them, on its own seat slots) with a body of their mean
 * size; the durable floors (bench/peers/durable-floor.ts) answer them doing only a group-committed
 * flush, with the seats in a worker thread (as the service) or on the HTTP thread. All four are measured
 * in turns. The seed-design peers run the same cycle
 * (scenario 6) and are compared with the same ceiling.
 */
import type autocannon from 'autocannon';
import { type BenchContext, loadRow, type Row, usersFor, withCeiling, withService } from '../context.js';
import { GrantTracker, holdReleaseRequests, SERVICE_HOLDS, SlotPool } from '../cycles.js';
import { type BenchUser, createShows, SEAT_LABELS } from '../fixtures.js';
import { journalFigures } from '../journal.js';
import { type LoadOptions, runInTurns, runLoad } from '../load.js';
import { startFloor } from '../peers.js';

export const SCENARIO = '2 hold + release';
/** Users taking turns in the cycle: enough that no one nears the per-show seat limit. */
export const CYCLE_USERS = 1000;

/** The cycle against a peer that answers every hold (the ceiling, the floor): its own slots and tally. */
function peerCycle(users: readonly BenchUser[], showIds: readonly string[]): autocannon.Request[] {
  return holdReleaseRequests(SERVICE_HOLDS, new SlotPool(showIds, SEAT_LABELS), users, new GrantTracker());
}

/** Show ids for the peers' cycles: any ids do, the peers keep no catalog. */
function peerShowIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `shw_bench${i}`);
}

/** The ceiling of the hold-release shape on its own, for scenario 6 when scenario 2 did not run. */
export async function holdReleaseCeiling(
  ctx: BenchContext,
  bodyBytes: number,
  user: BenchUser,
): Promise<Row> {
  const cached = ctx.ceilings.get('hold-release');
  if (cached) return cached;
  const load = await withCeiling(ctx, bodyBytes, (peer) =>
    runLoad({
      url: peer.url,
      pids: [peer.managed.child.pid],
      connections: ctx.options.connections,
      seconds: ctx.options.seconds,
      warmupSeconds: ctx.options.warmupSeconds,
      requests: peerCycle([user], peerShowIds(ctx.options.shows)),
    }),
  );
  const row = loadRow(SCENARIO, 'ceiling', load, undefined, { bodyBytes });
  ctx.ceilings.set('hold-release', row);
  return row;
}

export async function holdRelease(ctx: BenchContext): Promise<Row[]> {
  const { options } = ctx;
  const users = usersFor(ctx, CYCLE_USERS);
  const tracker = new GrantTracker();
  return withService(ctx, 'hold-release', async ({ service, client, adminToken, cpu }) => {
    const showIds = await createShows(client, adminToken, options.shows);
    // One cycle by hand: the mean body size the ceiling will answer with.
    const held = await client.request('POST', `/api/shows/${showIds[0]}/holds`, {
      body: { seats: ['A1'] },
      token: users[0]!.token,
    });
    const released = await client.request('DELETE', `/api/holds/${held.body.hold.id}`, {
      token: users[0]!.token,
    });
    if (held.status !== 201 || released.status !== 204)
      throw new Error(`hold/release probe: ${held.status} ${released.status}`);
    const bodyBytes = (held.bytes + released.bytes) / 2;
    const common: Omit<LoadOptions, 'url' | 'requests'> = {
      connections: options.connections,
      seconds: options.seconds,
      warmupSeconds: options.warmupSeconds,
    };
    const pool = new SlotPool(showIds, SEAT_LABELS);
    const floors = [
      await startFloor(ctx.procs, held.bytes, 'thread'),
      await startFloor(ctx.procs, held.bytes, 'inline'),
    ];
    const [load, ceilingLoad, ...floorLoads] = await withCeiling(ctx, bodyBytes, (peer) =>
      runInTurns([
        {
          ...common,
          url: service.url,
          ...cpu,
          requests: holdReleaseRequests(SERVICE_HOLDS, pool, users, tracker),
          onMeasureStart: () => tracker.reset(),
        },
        {
          ...common,
          url: peer.url,
          pids: [peer.managed.child.pid],
          requests: peerCycle(users, peerShowIds(options.shows)),
        },
        ...floors.map((floor) => ({
          ...common,
          url: floor.url,
          pids: [floor.managed.child.pid],
          requests: peerCycle(users, peerShowIds(options.shows)),
        })),
      ]),
    ).finally(() => Promise.all(floors.map((floor) => floor.stop())));
    const journal = await journalFigures(client);
    const ceiling = loadRow(SCENARIO, 'ceiling', ceilingLoad!, undefined, { bodyBytes });
    ctx.ceilings.set('hold-release', ceiling);
    const non2xxPercent = Math.round((load!.non2xx / Math.max(1, load!.requests)) * 10000) / 100;
    return [
      loadRow(SCENARIO, 'service', load!, ceiling, {
        non2xxPercent,
        grants: tracker.grants,
        doubleGrants: tracker.doubleGrants,
        shows: options.shows,
        connections: options.connections,
        journal,
      }),
      ceiling,
      loadRow(SCENARIO, 'floor, thread', floorLoads[0]!, ceiling, {
        what: 'bare Hono; seats in a worker thread; group-committed WAL append + fdatasync',
      }),
      loadRow(SCENARIO, 'floor, inline', floorLoads[1]!, ceiling, {
        what: 'the same with the seats on the HTTP thread',
      }),
    ];
  });
}
