/**
 * @module bench/http/scenarios/seat-maps
 * Scenario 1: `GET /api/shows/:id/seats` over many shows, each connection walking the shows in turn.
 * The maps are warm (each read once before the clock starts): the figure is the read path, not the
 * first fetch from the actor. Target: 0.9 of the ceiling (the bare app answering the same body size to
 * the same requests, built by the same code), measured in alternating slices with it.
 */
import type autocannon from 'autocannon';
import { type BenchContext, loadRow, type Row, withCeiling, withService } from '../context.js';
import { createShows } from '../fixtures.js';
import { runPaired } from '../load.js';

export const SCENARIO = '1 seat-map reads';

/** Each connection's next request is the next show's map, round the shows. */
function walk(paths: readonly string[]): autocannon.Request[] {
  let next = 0;
  return [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[next++ % paths.length]! }) }];
}

export async function seatMapReads(ctx: BenchContext): Promise<Row[]> {
  const { options } = ctx;
  return withService(ctx, 'seat-maps', async ({ service, client, adminToken, cpu }) => {
    const showIds = await createShows(client, adminToken, options.shows);
    const paths = showIds.map((id) => `/api/shows/${id}/seats`);
    let bodyBytes = 0;
    for (const p of paths) {
      const reply = await client.request('GET', p);
      if (reply.status !== 200) throw new Error(`GET ${p}: ${reply.status}`);
      bodyBytes = reply.bytes;
    }
    const common = {
      connections: options.connections,
      seconds: options.seconds,
      warmupSeconds: options.warmupSeconds,
    };
    const [load, ceiling] = await withCeiling(ctx, bodyBytes, (peer) =>
      runPaired(
        {
          ...common,
          url: service.url,
          ...cpu,
          requests: walk(paths),
        },
        {
          ...common,
          url: peer.url,
          pids: [peer.managed.child.pid],
          requests: walk(paths),
        },
      ),
    );
    const notes = { bodyBytes, shows: showIds.length, connections: options.connections };
    return [
      loadRow(SCENARIO, 'service', load, ceiling, notes),
      loadRow(SCENARIO, 'ceiling', ceiling, undefined, { bodyBytes }),
    ];
  });
}
