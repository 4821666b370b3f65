/**
 * The process the crash test kills: it starts the shard router on a data directory (and, given a URL
 * as second argument, with its seats in PostgreSQL) and streams holds
 * and releases at it, many in flight at once, printing each acknowledgement as a line the moment its
 * reply arrives (a reply means durable). It never stops by itself before the parent kills it, but it
 * is bounded: after MAX_COMMANDS it exits.
 */
import { simpleLayout } from '../../src/actors/seat-layout.js';
import { ShardRouter } from '../../src/actors/shard-router.js';
import { layoutKeyOf } from '../../src/actors/show-codec.js';

const MAX_COMMANDS = 200_000;
const IN_FLIGHT = 64;
const dataDir = process.argv[2]!;
/** With a PostgreSQL URL, the seats live there instead of in the data directory's SQLite files. */
const postgresUrl = process.argv[3];
const SHOWS = ['shw_crash1', 'shw_crash2', 'shw_crash3', 'shw_crash4'];
const layout = simpleLayout(40, 50);
const labels = layout.rows.flatMap((r) => Array.from({ length: r.seats }, (_, i) => `${r.label}${i + 1}`));

const router = await ShardRouter.start({
  dataDir,
  partitions: 8,
  workers: 2,
  journalSync: 'full',
  snapshotEvery: 50,
  sweepEveryMs: 0,
  seatStore: postgresUrl ? { kind: 'postgres', url: postgresUrl } : { kind: 'sqlite' },
});
for (const showId of SHOWS)
  await router.createShow({ showId, layoutKey: layoutKeyOf(layout), forbidSingleSeatGaps: false });
process.stdout.write('READY\n');

let issued = 0;
const held: { showId: string; holdId: string; ownerId: string }[] = [];
async function one(): Promise<void> {
  while (issued < MAX_COMMANDS) {
    const n = issued++;
    const showId = SHOWS[n % SHOWS.length]!;
    const nowMs = Date.now();
    if (n % 3 === 2 && held.length > 0) {
      const victim = held.splice(n % held.length, 1)[0]!;
      // Said before sending: a release may be durable before its reply, so the parent allows either.
      process.stdout.write(`RELEASING ${victim.showId} ${victim.holdId}\n`);
      const reply = await router.send(victim.showId, {
        type: 'release',
        holdId: victim.holdId,
        ownerId: victim.ownerId,
        nowMs,
      });
      if (reply.ok) process.stdout.write(`RELEASED ${victim.showId} ${victim.holdId}\n`);
      continue;
    }
    const seats = [labels[(n * 7919) % labels.length]!, labels[(n * 104729 + 13) % labels.length]!];
    const holdId = `hld_${n}.${showId}`;
    const ownerId = `usr_${n}`;
    const reply = await router.send(showId, {
      type: 'hold',
      holdId,
      ownerId,
      seats: [...new Set(seats)],
      nowMs,
      expiresAtMs: nowMs + 86_400_000,
      maxSeatsPerOwner: 10,
    });
    if (reply.ok && 'hold' in reply) {
      held.push({ showId, holdId, ownerId });
      process.stdout.write(`HELD ${showId} ${holdId} ${reply.hold.seats.join(',')}\n`);
    }
  }
}
await Promise.all(Array.from({ length: IN_FLIGHT }, one));
await router.stop();
