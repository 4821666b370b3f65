/**
 * A PostgreSQL seat store written by a single node before clusters existed keeps its acknowledged
 * commands in per-worker logs (`w-N`), which no partition's owner reads. The first cluster start folds
 * them into the partitions' snapshots, so nothing acknowledged before the upgrade is lost; and a start
 * that finds them beside a cluster's own logs (an old node still running) is refused.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleLayout } from '../../src/actors/seat-layout.js';
import { ShardCore } from '../../src/actors/shard-core.js';
import { partitionLogName } from '../../src/actors/shard-protocol.js';
import { partitionOf, ShardRouter } from '../../src/actors/shard-router.js';
import { layoutKeyOf } from '../../src/actors/show-codec.js';
import { freshPostgresDatabase } from '../helpers/postgres.js';

const PARTITIONS = 4;
const LAYOUT_KEY = layoutKeyOf(simpleLayout(2, 8, ['GOLD']));
const SHOW = 'shw_upgrade';
const partition = partitionOf(SHOW, PARTITIONS);
let url: string;
let pool: pg.Pool;

beforeAll(async () => {
  url = await freshPostgresDatabase('cluster_upgrade');
  pool = new pg.Pool({ connectionString: url, max: 2 });
});
afterAll(async () => {
  await pool?.end();
});

const options = () => ({
  dataDir: '/nonexistent',
  partitions: PARTITIONS,
  workers: 1,
  journalSync: 'full' as const,
  snapshotEvery: 1000,
  sweepEveryMs: 0,
  seatStore: { kind: 'postgres' as const, url },
});

describe('the first cluster start on a single node’s PostgreSQL seat store', () => {
  it('folds the per-worker logs into the partitions, keeping every acknowledged command', async () => {
    // As the single node wrote it: one core for every partition, log w-0, acknowledged, no checkpoint.
    const { core } = await ShardCore.open({
      ...options(),
      partitions: [0, 1, 2, 3],
      log: 'w-0',
    });
    const nowMs = Date.now();
    const outcome = core.process([
      {
        id: 1,
        partition,
        showId: SHOW,
        op: { kind: 'create', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false },
      },
      {
        id: 2,
        partition,
        showId: SHOW,
        op: {
          kind: 'command',
          command: {
            type: 'hold',
            holdId: 'hld_before',
            ownerId: 'usr_1',
            seats: ['A1', 'A2'],
            nowMs,
            expiresAtMs: nowMs + 3_600_000,
            maxSeatsPerOwner: 10,
          },
        },
      },
    ]);
    await core.sync(outcome);
    await core.close();
    const { rows: before } = await pool.query("SELECT 1 FROM seat_commit_log WHERE log = 'w-0'");
    expect(before).toHaveLength(1);

    const router = await ShardRouter.start({ ...options(), cluster: { node: 'n1' } });
    try {
      const { rows: logs } = await pool.query<{ log: string }>('SELECT DISTINCT log FROM seat_commit_log');
      expect(logs).toEqual([]);
      await pool.query(
        "INSERT INTO partition_leases (partition, node, url, epoch, expires_at) VALUES ($1, 'n1', 'http://n1', 1, now() + interval '1 hour')",
        [partition],
      );
      expect(await router.acquire(partition, 1)).toBe(true);
      const hold = await router.getHold(SHOW, 'hld_before');
      expect(hold?.seats).toEqual(['A1', 'A2']);
    } finally {
      await router.stop();
    }
  });

  it('refuses to start when per-worker logs sit beside a cluster’s (an old node still runs)', async () => {
    await pool.query(
      `INSERT INTO seat_commit_log (log, id, records, body) VALUES ('w-1', 1, 0, ''), ($1, 1, 0, '')`,
      [partitionLogName(partition)],
    );
    await expect(ShardRouter.start({ ...options(), cluster: { node: 'n1' } })).rejects.toThrow(
      /per-worker logs \(w-1\) beside a cluster's/,
    );
  });
});
