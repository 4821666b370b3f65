/**
 * The commit log's edges, on both seat stores (SQLite files and PostgreSQL): checkpoints delete the
 * rows behind them only once the partition data is durable; a record whose show's creation never became
 * durable is skipped at recovery and never replays onto a later show of the same id; folding logs
 * (another worker count) is idempotent.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { simpleLayout } from '../../src/actors/seat-layout.js';
import { foldCommitLogs, ShardCore } from '../../src/actors/shard-core.js';
import { journalFile, type ShardRequest } from '../../src/actors/shard-protocol.js';
import { encodeState, layoutKeyOf } from '../../src/actors/show-codec.js';
import { SEAT_STORES, type SeatTarget } from '../helpers/seat-stores.js';

const LAYOUT_KEY = layoutKeyOf(simpleLayout(4, 8, ['GOLD']));
const targets: { remove(): Promise<void> }[] = [];

afterEach(async () => {
  for (const target of targets.splice(0)) await target.remove();
});

function open(target: SeatTarget, extra: { checkpointRecords?: number; log?: string } = {}) {
  return ShardCore.open({
    ...target,
    partitions: [0],
    journalSync: 'full',
    snapshotEvery: 1000,
    log: extra.log ?? 'w-0',
    checkpointRecords: extra.checkpointRecords,
  });
}

let nextId = 1;
function create(showId: string): ShardRequest {
  return {
    id: nextId++,
    partition: 0,
    showId,
    op: { kind: 'create', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false },
  };
}

function hold(showId: string, holdId: string, seats: string[]): ShardRequest {
  const nowMs = 1_000_000;
  return {
    id: nextId++,
    partition: 0,
    showId,
    op: {
      kind: 'command',
      command: {
        type: 'hold',
        holdId,
        ownerId: 'usr_1',
        seats,
        nowMs,
        expiresAtMs: nowMs + 3_600_000,
        maxSeatsPerOwner: 10,
      },
    },
  };
}

describe.each(SEAT_STORES)('commit log ($name)', (store) => {
  async function fresh(): Promise<SeatTarget> {
    const target = await store.fresh('log');
    targets.push({ remove: () => store.remove(target) });
    return target;
  }

  it('deletes the rows behind a checkpoint once the partition data is durable, and not before', async () => {
    const target = await fresh();
    const { core } = await open(target, { checkpointRecords: 3 });
    await core.sync(core.process([create('shw_1'), hold('shw_1', 'hld_1.shw_1', ['A1'])]));
    expect(core.logRecords()).toBe(1);
    const outcome = core.process([
      hold('shw_1', 'hld_2.shw_1', ['A2']),
      hold('shw_1', 'hld_3.shw_1', ['A3']),
    ]);
    expect(outcome.pruneThrough).toBeDefined();
    // Written, not yet durable: the rows stay until the snapshots that cover them are.
    expect(core.logRecords()).toBe(3);
    await core.sync(outcome);
    expect(core.logRecords()).toBe(0);
    const live = encodeState(core.stateOf('shw_1')!);
    await core.close();
    const { core: recovered, recovery } = await open(target);
    expect(recovery.replayed).toBe(0);
    expect(recovered.logRecords()).toBe(0);
    expect(encodeState(recovered.stateOf('shw_1')!)).toEqual(live);
    await recovered.close();
  });

  it('recovers creations, snapshots and later log records after a restart', async () => {
    const target = await fresh();
    const { core } = await open(target, { checkpointRecords: 2 });
    await core.sync(core.process([create('shw_a'), create('shw_b'), hold('shw_a', 'hld_1.shw_a', ['A1'])]));
    // The checkpoint snapshots shw_a; the holds after it stay in the log only.
    await core.sync(core.process([hold('shw_a', 'hld_2.shw_a', ['A2'])]));
    await core.sync(core.process([hold('shw_b', 'hld_3.shw_b', ['B1', 'B2'])]));
    const live = { a: encodeState(core.stateOf('shw_a')!), b: encodeState(core.stateOf('shw_b')!) };
    await core.close();
    const { core: recovered, recovery } = await open(target);
    expect(recovery.shows).toBe(2);
    expect(recovery.replayed).toBe(1);
    expect(encodeState(recovered.stateOf('shw_a')!)).toEqual(live.a);
    expect(encodeState(recovered.stateOf('shw_b')!)).toEqual(live.b);
    await recovered.close();
  });

  it('skips records of a show whose creation was lost, and never replays them onto a new show of that id', async () => {
    const target = await fresh();
    const { core } = await open(target);
    await core.sync(core.process([create('shw_lost'), create('shw_kept')]));
    await core.sync(
      core.process([
        hold('shw_lost', 'hld_1.shw_lost', ['A1', 'A2']),
        hold('shw_kept', 'hld_2.shw_kept', ['B1']),
      ]),
    );
    await core.close();
    // A crash that kept the commit log's row but not the partition's: the show is unknown.
    await store.deleteShow(target, 0, 'shw_lost');

    const { core: second, recovery } = await open(target);
    expect(recovery.shows).toBe(1);
    expect(recovery.replayed).toBe(1);
    expect(second.stateOf('shw_kept')!.holds.has('hld_2.shw_kept')).toBe(true);
    // The show is created again (the app's resolver does this on first use): it starts empty...
    await second.sync(second.process([create('shw_lost')]));
    expect(second.stateOf('shw_lost')!.holds.size).toBe(0);
    await second.close();
    // ...and stays empty after recovery, although the old record is still in the log.
    const { core: third } = await open(target);
    expect(third.stateOf('shw_lost')!.holds.size).toBe(0);
    expect(third.stateOf('shw_lost')!.version).toBe(0);
    expect(third.stateOf('shw_kept')!.holds.has('hld_2.shw_kept')).toBe(true);
    await third.close();
  });

  it("never numbers a command at or below a show's starting sequence, whatever the log lost", async () => {
    const target = await fresh();
    const { core } = await open(target);
    await core.sync(core.process([create('shw_t'), hold('shw_t', 'hld_1.shw_t', ['A1'])]));
    await core.close();
    // The state a crash leaves when a batch committed its partition data (the creation of shw_s, whose
    // history starts after seq 2) but died before its commit-log row (the command numbered 2) landed.
    await store.insertShow(target, 0, 'shw_s', 2);

    const { core: second } = await open(target);
    // Acknowledged after the restart: it must be numbered above 2, or the next recovery skips it.
    const held = second.process([hold('shw_s', 'hld_2.shw_s', ['B1', 'B2'])]);
    await second.sync(held);
    expect(held.replies[0]![1].ok).toBe(true);
    await second.close();
    const { core: third } = await open(target);
    expect(third.stateOf('shw_s')!.holds.has('hld_2.shw_s')).toBe(true);
    expect(third.stateOf('shw_t')!.holds.has('hld_1.shw_t')).toBe(true);
    await third.close();
  });

  it('folds logs of another worker count into the partition data, even after a fold cut short', async () => {
    const target = await fresh();
    const { core } = await open(target, { log: 'w-3' });
    await core.sync(core.process([create('shw_f'), hold('shw_f', 'hld_1.shw_f', ['C1', 'C2'])]));
    const live = encodeState(core.stateOf('shw_f')!);
    await core.close();
    // A fold that died after opening its own log: both logs are there at the next start.
    await store.copyLog(target, 'w-3', 'fold');
    const options = { ...target, partitions: [0], journalSync: 'full' as const, snapshotEvery: 1000 };
    expect(await foldCommitLogs(options)).toEqual({ logs: 2, replayed: 1 });
    expect(await store.logNames(target)).toEqual([]);
    expect(await foldCommitLogs(options)).toEqual({ logs: 0, replayed: 0 });
    const { core: recovered, recovery } = await open(target);
    expect(recovery.replayed).toBe(0);
    expect(encodeState(recovered.stateOf('shw_f')!)).toEqual(live);
    await recovered.close();
  });
});

describe('commit log (SQLite files of an earlier version)', () => {
  it('replays journal rows an earlier version wrote into a partition file, then clears them at a checkpoint', async () => {
    const sqlite = SEAT_STORES.find((s) => s.name === 'sqlite')!;
    const target = await sqlite.fresh('log');
    targets.push({ remove: () => sqlite.remove(target) });
    const { dataDir } = target;
    // A partition file as the per-partition journal left it: the show row and its commands as rows.
    const { core: first } = await open(target);
    await first.sync(first.process([create('shw_old')]));
    await first.close();
    const partition = new Database(journalFile(dataDir, 0));
    const nowMs = 1_000_000;
    const commands = [
      {
        type: 'hold',
        holdId: 'hld_1.shw_old',
        ownerId: 'usr_1',
        seats: ['A1', 'A2'],
        nowMs,
        expiresAtMs: nowMs + 3_600_000,
        maxSeatsPerOwner: 10,
      },
      {
        type: 'hold',
        holdId: 'hld_2.shw_old',
        ownerId: 'usr_2',
        seats: ['B1'],
        nowMs,
        expiresAtMs: nowMs + 3_600_000,
        maxSeatsPerOwner: 10,
      },
      { type: 'release', holdId: 'hld_1.shw_old', ownerId: 'usr_1', nowMs },
    ];
    const insert = partition.prepare('INSERT INTO journal (seq, show_id, command) VALUES (?, ?, ?)');
    for (const [i, command] of commands.entries()) insert.run(i + 1, 'shw_old', JSON.stringify(command));
    partition.close();

    const { core, recovery } = await open(target, { checkpointRecords: 2 });
    expect(recovery.replayed).toBe(3);
    const state = core.stateOf('shw_old')!;
    expect([...state.holds.keys()]).toEqual(['hld_2.shw_old']);
    expect(state.version).toBe(3);
    // New commands number on from the old rows, and the next checkpoint clears them.
    const next = core.process([hold('shw_old', 'hld_3.shw_old', ['C1'])]);
    expect(next.pruneThrough).toBeDefined();
    await core.sync(next);
    const live = encodeState(core.stateOf('shw_old')!);
    await core.close();
    const check = new Database(journalFile(dataDir, 0));
    expect(check.prepare('SELECT COUNT(*) FROM journal').pluck().get()).toBe(0);
    expect(check.prepare("SELECT seq FROM snapshots WHERE show_id = 'shw_old'").pluck().get()).toBe(4);
    check.close();
    const { core: again, recovery: second } = await open(target);
    expect(second.replayed).toBe(0);
    expect(encodeState(again.stateOf('shw_old')!)).toEqual(live);
    await again.close();
  });
});
