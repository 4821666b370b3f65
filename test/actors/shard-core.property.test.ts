/**
 * Replay equivalence: for random histories of commands over several shows, driven through the shard's
 * batch step with real journals (SQLite files and PostgreSQL), the state recovered (snapshots +
 * replay) equals the live state byte for byte, whether the shard stopped cleanly or was simply dropped
 * (a crash).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleLayout } from '../../src/actors/seat-layout.js';
import { ShardCore } from '../../src/actors/shard-core.js';
import type { ShardRequest } from '../../src/actors/shard-protocol.js';
import { partitionOf } from '../../src/actors/shard-router.js';
import { apply, createShowState, type ShowCommand } from '../../src/actors/show-actor.js';
import { encodeState, layoutKeyOf, layoutResolver } from '../../src/actors/show-codec.js';
import { SEAT_STORES, type SeatTarget } from '../helpers/seat-stores.js';

const PARTITIONS = 4;
const SHOWS = ['shw_1', 'shw_2', 'shw_3'];
const LAYOUT_KEY = layoutKeyOf(simpleLayout(3, 6, ['GOLD', 'SILVER']));
const layout = layoutResolver()(LAYOUT_KEY);
const LABELS = [...layout.labels];
const OWNERS = ['u1', 'u2', 'u3'];

/** A command template: time and hold ids are filled in as the history is laid out. */
const step = fc.record({
  show: fc.constantFrom(...SHOWS),
  advanceMs: fc.integer({ min: 0, max: 400 }),
  owner: fc.constantFrom(...OWNERS),
  kind: fc.constantFrom(
    'hold',
    'holdBest',
    'extend',
    'release',
    'expire',
    'confirm',
    'cancel',
    'block',
    'unblock',
  ),
  seats: fc.uniqueArray(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 3 }),
  count: fc.integer({ min: 1, max: 4 }),
  pick: fc.nat(),
});
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function toCommands(steps: Step[]): { showId: string; command: ShowCommand }[] {
  let nowMs = 1_000_000;
  const holdIds: string[] = [];
  const bookingIds: string[] = [];
  return steps.map((s, i) => {
    nowMs += s.advanceMs;
    const holdId = `hld_${i}.${s.show}`;
    const pickedHold = holdIds[s.pick % Math.max(1, holdIds.length)] ?? 'hld_none';
    const common = { ownerId: s.owner, nowMs };
    let command: ShowCommand;
    switch (s.kind) {
      case 'hold':
        holdIds.push(holdId);
        command = {
          type: 'hold',
          holdId,
          seats: s.seats,
          expiresAtMs: nowMs + 1000,
          maxSeatsPerOwner: 6,
          ...common,
        };
        break;
      case 'holdBest':
        holdIds.push(holdId);
        command = {
          type: 'holdBest',
          holdId,
          count: s.count,
          expiresAtMs: nowMs + 1000,
          maxSeatsPerOwner: 6,
          ...common,
        };
        break;
      case 'extend':
        command = { type: 'extend', holdId: pickedHold, extendByMs: 500, maxLifetimeMs: 3000, ...common };
        break;
      case 'release':
        command = { type: 'release', holdId: pickedHold, ...common };
        break;
      case 'confirm': {
        const bookingId = `bkg_${i}`;
        bookingIds.push(bookingId);
        command = {
          type: 'confirm',
          holdId: pickedHold,
          bookingId,
          seats: s.seats,
          allowRehold: s.pick % 2 === 0,
          ...common,
        };
        break;
      }
      case 'cancel':
        command = {
          type: 'cancel',
          bookingId: bookingIds[s.pick % Math.max(1, bookingIds.length)] ?? 'bkg_none',
          nowMs,
        };
        break;
      case 'block':
      case 'unblock':
        command = { type: s.kind, seats: s.seats, nowMs };
        break;
      default:
        command = { type: 'expire', nowMs };
    }
    return { showId: s.show, command };
  });
}

async function openCore(target: SeatTarget, snapshotEvery: number, checkpointRecords: number) {
  const { core } = await ShardCore.open({
    ...target,
    partitions: Array.from({ length: PARTITIONS }, (_, p) => p),
    journalSync: 'normal',
    snapshotEvery,
    checkpointRecords,
    log: 'w-0',
  });
  return core;
}

/** PostgreSQL runs are dearer (a round trip per partition write): fewer of them. */
const RUNS = { sqlite: 200, postgres: 100 };

describe.each(SEAT_STORES)('shard core journal ($name)', (store) => {
  let target: SeatTarget;
  beforeAll(async () => {
    target = await store.fresh('replay');
  });
  afterAll(async () => {
    if (target) await store.remove(target);
  });

  it('recovers exactly the live state after random histories, clean stop or crash', {
    timeout: 240_000,
  }, () => {
    return fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 9 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 30 }),
        async (steps, snapshotEvery, batchSize, isCleanStop, checkpointRecords) => {
          await store.clear(target);
          const core = await openCore(target, snapshotEvery, checkpointRecords);
          const reference = new Map(SHOWS.map((id) => [id, createShowState(id, layout, LAYOUT_KEY, false)]));
          let nextId = 0;
          const requests: ShardRequest[] = SHOWS.map((showId) => ({
            id: nextId++,
            partition: partitionOf(showId, PARTITIONS),
            showId,
            op: { kind: 'create', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false },
          }));
          for (const { showId, command } of toCommands(steps)) {
            apply(reference.get(showId)!, structuredClone(command));
            requests.push({
              id: nextId++,
              partition: partitionOf(showId, PARTITIONS),
              showId,
              op: { kind: 'command', command },
            });
          }
          // As the worker does: each batch synced (a checkpoint's log rows then go) before the next.
          for (let i = 0; i < requests.length; i += batchSize)
            await core.sync(core.process(requests.slice(i, i + batchSize)));
          for (const showId of SHOWS)
            expect(encodeState(core.stateOf(showId)!)).toEqual(encodeState(reference.get(showId)!));
          if (isCleanStop) {
            await core.sync(core.checkpointNow().outcome);
            expect(core.logRecords()).toBe(0);
          }
          await core.close();
          const recovered = await openCore(target, snapshotEvery, checkpointRecords);
          for (const showId of SHOWS)
            expect(encodeState(recovered.stateOf(showId)!)).toEqual(encodeState(reference.get(showId)!));
          await recovered.close();
        },
      ),
      { numRuns: RUNS[store.name] },
    );
  });
});
