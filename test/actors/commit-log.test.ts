/**
 * The commit log's edges: checkpoints delete the rows behind them only once the partition files are
 * flushed; a record whose show's creation never became durable is skipped at recovery and never
 * replays onto a later show of the same id; folding logs (another worker count) is idempotent.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { simpleLayout } from '../../src/actors/seat-layout.js';
import { foldCommitLogs, ShardCore } from '../../src/actors/shard-core.js';
import { commitLogFile, journalFile, type ShardRequest } from '../../src/actors/shard-protocol.js';
import { encodeState, layoutKeyOf } from '../../src/actors/show-codec.js';

const LAYOUT_KEY = layoutKeyOf(simpleLayout(4, 8, ['GOLD']));
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-log-'));
  dirs.push(dir);
  return dir;
}

function open(dataDir: string, extra: { checkpointRecords?: number; log?: string } = {}) {
  return ShardCore.open({
    dataDir,
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

describe('commit log', () => {
  it('deletes the rows behind a checkpoint once the partition files are flushed, and not before', async () => {
    const dataDir = tempDir();
    const { core } = open(dataDir, { checkpointRecords: 3 });
    await core.sync(core.process([create('shw_1'), hold('shw_1', 'hld_1.shw_1', ['A1'])]));
    expect(core.logRecords()).toBe(1);
    const outcome = core.process([
      hold('shw_1', 'hld_2.shw_1', ['A2']),
      hold('shw_1', 'hld_3.shw_1', ['A3']),
    ]);
    expect(outcome.pruneThrough).toBeDefined();
    // Written, not yet flushed: the rows stay until the snapshots that cover them are durable.
    expect(core.logRecords()).toBe(3);
    await core.sync(outcome);
    expect(core.logRecords()).toBe(0);
    const live = encodeState(core.stateOf('shw_1')!);
    core.close();
    const { core: recovered, recovery } = open(dataDir);
    expect(recovery.replayed).toBe(0);
    expect(encodeState(recovered.stateOf('shw_1')!)).toEqual(live);
    recovered.close();
  });

  it('skips records of a show whose creation was lost, and never replays them onto a new show of that id', async () => {
    const dataDir = tempDir();
    const { core } = open(dataDir);
    await core.sync(core.process([create('shw_lost'), create('shw_kept')]));
    await core.sync(
      core.process([
        hold('shw_lost', 'hld_1.shw_lost', ['A1', 'A2']),
        hold('shw_kept', 'hld_2.shw_kept', ['B1']),
      ]),
    );
    core.close();
    // Power loss that kept the commit log's flush but not the partition file's: the show is unknown.
    const partition = new Database(journalFile(dataDir, 0));
    partition.prepare("DELETE FROM shows WHERE show_id = 'shw_lost'").run();
    partition.prepare("DELETE FROM snapshots WHERE show_id = 'shw_lost'").run();
    partition.close();

    const { core: second, recovery } = open(dataDir);
    expect(recovery.shows).toBe(1);
    expect(recovery.replayed).toBe(1);
    expect(second.stateOf('shw_kept')!.holds.has('hld_2.shw_kept')).toBe(true);
    // The show is created again (the app's resolver does this on first use): it starts empty...
    await second.sync(second.process([create('shw_lost')]));
    expect(second.stateOf('shw_lost')!.holds.size).toBe(0);
    second.close();
    // ...and stays empty after recovery, although the old record is still in the log.
    const { core: third } = open(dataDir);
    expect(third.stateOf('shw_lost')!.holds.size).toBe(0);
    expect(third.stateOf('shw_lost')!.version).toBe(0);
    expect(third.stateOf('shw_kept')!.holds.has('hld_2.shw_kept')).toBe(true);
    third.close();
  });

  it("never numbers a command at or below a show's starting sequence, whatever the log lost", async () => {
    const dataDir = tempDir();
    const { core } = open(dataDir);
    await core.sync(core.process([create('shw_t'), hold('shw_t', 'hld_1.shw_t', ['A1'])]));
    core.close();
    // The state a crash leaves when a batch committed its partition file (the creation of shw_s, whose
    // history starts after seq 2) but died before its commit-log row (the command numbered 2) landed.
    const partition = new Database(journalFile(dataDir, 0));
    const layoutId = partition.prepare('SELECT layout_id FROM shows').pluck().get();
    partition
      .prepare('INSERT INTO shows (show_id, layout_id, forbid_gaps, created_seq) VALUES (?, ?, 0, 2)')
      .run('shw_s', layoutId);
    partition.close();

    const { core: second } = open(dataDir);
    // Acknowledged after the restart: it must be numbered above 2, or the next recovery skips it.
    const held = second.process([hold('shw_s', 'hld_2.shw_s', ['B1', 'B2'])]);
    await second.sync(held);
    expect(held.replies[0]![1].ok).toBe(true);
    second.close();
    const { core: third } = open(dataDir);
    expect(third.stateOf('shw_s')!.holds.has('hld_2.shw_s')).toBe(true);
    expect(third.stateOf('shw_t')!.holds.has('hld_1.shw_t')).toBe(true);
    third.close();
  });

  it('replays journal rows an earlier version wrote into a partition file, then clears them at a checkpoint', async () => {
    const dataDir = tempDir();
    // A partition file as the per-partition journal left it: the show row and its commands as rows.
    const { core: first } = open(dataDir);
    await first.sync(first.process([create('shw_old')]));
    first.close();
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

    const { core, recovery } = open(dataDir, { checkpointRecords: 2 });
    expect(recovery.replayed).toBe(3);
    const state = core.stateOf('shw_old')!;
    expect([...state.holds.keys()]).toEqual(['hld_2.shw_old']);
    expect(state.version).toBe(3);
    // New commands number on from the old rows, and the next checkpoint clears them.
    const next = core.process([hold('shw_old', 'hld_3.shw_old', ['C1'])]);
    expect(next.pruneThrough).toBeDefined();
    await core.sync(next);
    const live = encodeState(core.stateOf('shw_old')!);
    core.close();
    const check = new Database(journalFile(dataDir, 0));
    expect(check.prepare('SELECT COUNT(*) FROM journal').pluck().get()).toBe(0);
    expect(check.prepare("SELECT seq FROM snapshots WHERE show_id = 'shw_old'").pluck().get()).toBe(4);
    check.close();
    const { core: again, recovery: second } = open(dataDir);
    expect(second.replayed).toBe(0);
    expect(encodeState(again.stateOf('shw_old')!)).toEqual(live);
    again.close();
  });

  it('folds logs of another worker count into the partition files, even after a fold cut short', async () => {
    const dataDir = tempDir();
    const { core } = open(dataDir, { log: 'w-3' });
    await core.sync(core.process([create('shw_f'), hold('shw_f', 'hld_1.shw_f', ['C1', 'C2'])]));
    const live = encodeState(core.stateOf('shw_f')!);
    core.close();
    // A fold that died after opening its own log: both files are there at the next start.
    fs.copyFileSync(commitLogFile(dataDir, 'w-3'), commitLogFile(dataDir, 'fold'));
    const options = { dataDir, partitions: [0], journalSync: 'full' as const, snapshotEvery: 1000 };
    expect(await foldCommitLogs(options)).toEqual({ logs: 2, replayed: 1 });
    expect(fs.readdirSync(path.dirname(commitLogFile(dataDir, 'w-0')))).toEqual([]);
    expect(await foldCommitLogs(options)).toEqual({ logs: 0, replayed: 0 });
    const { core: recovered, recovery } = open(dataDir);
    expect(recovery.replayed).toBe(0);
    expect(encodeState(recovered.stateOf('shw_f')!)).toEqual(live);
    recovered.close();
  });
});
