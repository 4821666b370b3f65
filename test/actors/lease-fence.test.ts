/**
 * The fence of a cluster node's seat writes, against a real PostgreSQL: a partition's core writes (its
 * commit-log rows, its creations and snapshots, its prunes) only while the lease row names its node and
 * epoch. After another node took the lease, the old owner's next batch writes nothing and its `sync()`
 * rejects, so the batch's replies never leave; the new owner recovers exactly what was acknowledged.
 * And a takeover waits for a write in flight (FOR SHARE), so a write never lands after the lease moved.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleLayout } from '../../src/actors/seat-layout.js';
import { ShardCore } from '../../src/actors/shard-core.js';
import { partitionLogName, type ShardRequest } from '../../src/actors/shard-protocol.js';
import { layoutKeyOf } from '../../src/actors/show-codec.js';
import { FencedError } from '../../src/persistence/pg-commit-log.js';
import { endSharedSeatPools, openSharedSeatPool } from '../../src/persistence/pg-seat-store.js';
import { freshPostgresDatabase } from '../helpers/postgres.js';

const LAYOUT_KEY = layoutKeyOf(simpleLayout(2, 8, ['GOLD']));
const PARTITION = 3;
let url: string;
let pool: pg.Pool;

beforeAll(async () => {
  url = await freshPostgresDatabase('lease_fence');
  pool = new pg.Pool({ connectionString: url, max: 3 });
  await openSharedSeatPool({ kind: 'postgres', url }, 'fence-test');
  await pool.query(
    "INSERT INTO partition_leases (partition, node, url, epoch, expires_at) VALUES ($1, 'a', 'http://a', 1, now() + interval '1 hour')",
    [PARTITION],
  );
});
afterAll(async () => {
  await endSharedSeatPools();
  await pool?.end();
});

function open(node: string, epoch: number) {
  return ShardCore.open({
    dataDir: '/nonexistent',
    partitions: [PARTITION],
    journalSync: 'full',
    snapshotEvery: 1000,
    log: partitionLogName(PARTITION),
    seatStore: { kind: 'postgres', url },
    fence: { node, partition: PARTITION, epoch },
  });
}

let nextId = 1;
const create = (showId: string): ShardRequest => ({
  id: nextId++,
  partition: PARTITION,
  showId,
  op: { kind: 'create', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false },
});
const hold = (showId: string, holdId: string, seat: string): ShardRequest => ({
  id: nextId++,
  partition: PARTITION,
  showId,
  op: {
    kind: 'command',
    command: {
      type: 'hold',
      holdId,
      ownerId: 'usr_1',
      seats: [seat],
      nowMs: 1_000_000,
      expiresAtMs: 1_000_000 + 3_600_000,
      maxSeatsPerOwner: 10,
    },
  },
});

async function logRows(): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    'SELECT count(*) AS n FROM seat_commit_log WHERE log = $1',
    [partitionLogName(PARTITION)],
  );
  return Number(rows[0]!.n);
}

describe('a fenced partition (cluster lease)', () => {
  it('writes nothing once the lease moved, and the next owner recovers exactly what was acknowledged', async () => {
    const { core: old } = await open('a', 1);
    await old.sync(old.process([create('shw_f'), hold('shw_f', 'hld_1', 'A1')]));
    expect(await logRows()).toBe(1);

    // Another node takes the lease over (as its keeper does, at a new epoch).
    await pool.query("UPDATE partition_leases SET node = 'b', epoch = 2 WHERE partition = $1", [PARTITION]);

    // The old owner, unaware, applies a hold in memory: its log row is refused, nothing is acknowledged.
    const stale = old.process([hold('shw_f', 'hld_2', 'A2'), create('shw_g')]);
    await expect(old.sync(stale)).rejects.toBeInstanceOf(FencedError);
    expect(await logRows()).toBe(1);
    // Its snapshots are refused too: a checkpoint writes nothing and deletes nothing.
    const { core: again } = await open('a', 1).catch(() => ({ core: undefined }));
    expect(again).toBeDefined();
    const checkpoint = again!.checkpointNow();
    await expect(again!.sync(checkpoint.outcome)).rejects.toBeInstanceOf(FencedError);
    const { rows: snapshots } = await pool.query('SELECT 1 FROM seat_snapshots WHERE partition = $1', [
      PARTITION,
    ]);
    expect(snapshots).toEqual([]);
    expect(await logRows()).toBe(1);
    await again!.close();
    await old.close();

    const { core: next, recovery } = await open('b', 2);
    expect(recovery.shows).toBe(1);
    const state = next.stateOf('shw_f')!;
    expect([...state.holds.keys()]).toEqual(['hld_1']);
    // The next owner writes under its own epoch.
    await next.sync(next.process([hold('shw_f', 'hld_3', 'A3')]));
    expect(await logRows()).toBe(2);
    await next.close();
  });

  it('makes a takeover wait for a write in flight, so the write lands before the lease moves or not at all', async () => {
    await pool.query("UPDATE partition_leases SET node = 'c', epoch = 3 WHERE partition = $1", [PARTITION]);
    const { core } = await open('c', 3);
    const before = await logRows();
    // A transaction holds the lease row FOR SHARE, as a fenced write does while it commits.
    const writer = await pool.connect();
    const taker = await pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query('SELECT 1 FROM partition_leases WHERE partition = $1 FOR SHARE', [PARTITION]);
      let isTaken = false;
      const takeover = taker
        .query("UPDATE partition_leases SET node = 'd', epoch = 4 WHERE partition = $1", [PARTITION])
        .then(() => {
          isTaken = true;
        });
      // The takeover is waiting on the writer's lock (seen from the server, not guessed from time).
      for (;;) {
        const { rows } = await pool.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE partition_leases%'",
        );
        if (Number(rows[0]!.n) === 1) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(isTaken).toBe(false);
      await writer.query('COMMIT');
      await takeover;
      expect(isTaken).toBe(true);
    } finally {
      writer.release();
      taker.release();
    }
    // After the takeover, the old owner's write is refused.
    await expect(core.sync(core.process([hold('shw_f', 'hld_4', 'A4')]))).rejects.toBeInstanceOf(FencedError);
    expect(await logRows()).toBe(before);
    await core.close();
  });
});
