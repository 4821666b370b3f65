/**
 * Crash test: a real child process running the shards is killed with SIGKILL in the middle of a stream
 * of commands. After recovery every acknowledged hold is there with its seats, every acknowledged
 * release stays released, and nothing unacknowledged is half-applied (the invariants hold and every
 * held seat belongs to exactly one whole hold).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import { foldCommitLogs, ShardCore } from '../../src/actors/shard-core.js';
import { HELD, invariantViolations } from '../../src/actors/show-actor.js';
import { openSeatMeta } from '../../src/persistence/seat-meta.js';
import { SEAT_STORES, type SeatTarget } from '../helpers/seat-stores.js';

const CHILD = path.join(import.meta.dirname, 'shard-child.ts');

async function runAndKill({ dataDir, seatStore }: SeatTarget, killAfterAcks: number) {
  const storeArgs = seatStore?.kind === 'postgres' ? [seatStore.url] : [];
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir, ...storeArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const held = new Map<string, { showId: string; seats: string[] }>();
  const released = new Set<string>();
  const releasing = new Set<string>();
  let acks = 0;
  const lines = readline.createInterface({ input: child.stdout! });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  for await (const line of lines) {
    const [kind, showId, holdId, seats] = line.split(' ');
    if (kind === 'HELD') held.set(holdId!, { showId: showId!, seats: seats!.split(',') });
    else if (kind === 'RELEASED') released.add(holdId!);
    else if (kind === 'RELEASING') releasing.add(holdId!);
    else continue;
    if (++acks === killAfterAcks) child.kill('SIGKILL');
  }
  expect(await exited).toBe('SIGKILL');
  return { held, released, releasing, acks };
}

describe.each(SEAT_STORES)('crash recovery ($name seat store)', (store) => {
  it('keeps every acknowledged command after SIGKILL mid-stream', async () => {
    // Log records replayed by each run's recovery. One run may find none: a kill right after a
    // checkpoint pruned the logs leaves only snapshots. The runs together must replay some, or this
    // test never exercised the log.
    const replayed: number[] = [];
    for (const killAfterAcks of [300, 1500]) {
      const target = await store.fresh('crash');
      const { dataDir } = target;
      try {
        const { held, released, releasing, acks } = await runAndKill(target, killAfterAcks);
        expect(acks).toBeGreaterThanOrEqual(killAfterAcks);
        // The seats, and the seat store's own record of its partition count, were where the store says,
        // not in files beside it.
        expect(fs.existsSync(path.join(dataDir, 'partitions'))).toBe(store.name === 'sqlite');
        expect(fs.existsSync(path.join(dataDir, 'meta.json'))).toBe(store.name === 'sqlite');
        const { partitions } = await openSeatMeta(dataDir, target.seatStore).fix({
          partitions: 999,
          createdAt: new Date().toISOString(),
        });
        expect(partitions).not.toBe(999);
        // The child ran two workers, each with its own commit log: recover the way the router does when
        // the worker count changes (fold both logs into the partition files), then open the result.
        const options = {
          ...target,
          partitions: Array.from({ length: partitions }, (_, p) => p),
          journalSync: 'normal' as const,
          snapshotEvery: 50,
        };
        const folded = await foldCommitLogs(options);
        expect(folded.logs).toBe(2);
        replayed.push(folded.replayed);
        const { core, recovery } = await ShardCore.open({ ...options, log: 'w-0' });
        expect(recovery.replayed).toBe(0);
        expect(recovery.shows).toBe(4);
        for (const [holdId, { showId, seats }] of held) {
          const state = core.stateOf(showId)!;
          const hold = state.holds.get(holdId);
          if (released.has(holdId)) {
            expect(hold).toBeUndefined();
            continue;
          }
          if (releasing.has(holdId) && !hold) continue;
          expect(hold, `acknowledged hold ${holdId} was lost`).toBeDefined();
          expect(hold!.seats.map((i) => state.layout.labels[i])).toEqual(seats);
        }
        for (const showId of ['shw_crash1', 'shw_crash2', 'shw_crash3', 'shw_crash4']) {
          const state = core.stateOf(showId)!;
          expect(invariantViolations(state)).toEqual([]);
          const heldSeats = [...state.holds.values()].reduce((n, h) => n + h.seats.length, 0);
          expect(state.seats.filter((s) => s === HELD).length).toBe(heldSeats);
        }
        await core.close();
      } finally {
        await store.remove(target);
      }
    }
    expect(replayed.reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0);
  });
});
