/**
 * The router and its worker threads over real journals: concurrent callers racing for the same seats,
 * durability across a restart, a worker killed and restarted while others serve, and batching.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simpleLayout } from '../../src/actors/seat-layout.js';
import { partitionOf, ShardRouter, type ShowEvent } from '../../src/actors/shard-router.js';
import { layoutKeyOf } from '../../src/actors/show-codec.js';
import { openSeatMeta } from '../../src/persistence/seat-meta.js';
import { SEAT_STORES, type SeatTarget } from '../helpers/seat-stores.js';

const LAYOUT_KEY = layoutKeyOf(simpleLayout(10, 20));
const removals: (() => Promise<void>)[] = [];
const routers: ShardRouter[] = [];

async function startRouter(target: SeatTarget, workers = 2, extra: { snapshotEvery?: number } = {}) {
  const router = await ShardRouter.start({
    ...target,
    partitions: 8,
    workers,
    journalSync: 'normal',
    snapshotEvery: extra.snapshotEvery ?? 1000,
    sweepEveryMs: 0,
  });
  routers.push(router);
  return router;
}

function holdCommand(holdId: string, ownerId: string, seats: string[], nowMs = Date.now()) {
  return {
    type: 'hold' as const,
    holdId,
    ownerId,
    seats,
    nowMs,
    expiresAtMs: nowMs + 3_600_000,
    maxSeatsPerOwner: 10,
  };
}

afterEach(async () => {
  for (const r of routers.splice(0)) await r.stop();
  for (const remove of removals.splice(0)) await remove();
});

describe.each(SEAT_STORES)('ShardRouter ($name seat store)', (store) => {
  async function tempDir(): Promise<SeatTarget> {
    const target = await store.fresh('shard');
    removals.push(() => store.remove(target));
    return target;
  }

  it('gives each seat to exactly one of many concurrent callers', async () => {
    const router = await startRouter(await tempDir());
    expect(
      (await router.createShow({ showId: 'shw_race', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false }))
        .ok,
    ).toBe(true);
    const seats = ['A5', 'A6', 'A7', 'B1', 'C10'];
    // 500 callers, each wanting two of the five seats: overlapping requests in one batch.
    const attempts = Array.from({ length: 500 }, (_, i) => {
      const wanted = [seats[i % 5]!, seats[(i * 7 + 1) % 5]!];
      return router.send('shw_race', holdCommand(`hld_${i}.shw_race`, `usr_${i}`, [...new Set(wanted)]));
    });
    const replies = await Promise.all(attempts);
    const won = replies.filter((r) => r.ok) as { ok: true; hold: { seats: string[] } }[];
    const taken = won.flatMap((r) => r.hold.seats);
    expect(new Set(taken).size).toBe(taken.length);
    expect(taken.length).toBeLessThanOrEqual(5);
    for (const r of replies) if (!r.ok) expect(r.code).toBe('SEATS_UNAVAILABLE');
    const map = await router.seatMap('shw_race');
    expect(map!.seats.filter((s) => s === 1).length).toBe(taken.length);
    expect(await router.check('shw_race')).toEqual([]);
  });

  it('keeps every acknowledged command across a restart, with and without snapshots', async () => {
    const dir = await tempDir();
    let router = await startRouter(dir, 2, { snapshotEvery: 7 });
    const shows = ['shw_a', 'shw_b', 'shw_c'];
    for (const showId of shows)
      await router.createShow({ showId, layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false });
    const acked: { showId: string; holdId: string }[] = [];
    for (let i = 0; i < 60; i++) {
      const showId = shows[i % 3]!;
      const holdId = `hld_${i}.${showId}`;
      const reply = await router.send(
        showId,
        holdCommand(holdId, `usr_${i % 9}`, [`D${(i % 20) + 1}`, `E${(i % 20) + 1}`]),
      );
      if (reply.ok) acked.push({ showId, holdId });
    }
    const before = await Promise.all(shows.map((s) => router.seatMap(s)));
    // A crash-like stop: the worker is terminated, so nothing is snapshotted at shutdown.
    const crashAndRestart = async (workers: number) => {
      await router.killWorker(0);
      await router.killWorker(1);
      await router.stop();
      router = await startRouter(dir, workers);
      for (const { showId, holdId } of acked) expect(await router.getHold(showId, holdId)).toBeDefined();
      const after = await Promise.all(shows.map((s) => router.seatMap(s)));
      expect(after.map((m) => [m!.version, [...m!.seats]])).toEqual(
        before.map((m) => [m!.version, [...m!.seats]]),
      );
    };
    // Same worker count: each worker replays its own commit log.
    await crashAndRestart(2);
    const replayed = router.stats().recovery.reduce((n, r) => n + r.replayed, 0);
    expect(replayed).toBeGreaterThan(0);
    expect(router.stats().folded).toBeUndefined();
    // Another worker count: the logs are folded into the partition data before the workers start.
    await crashAndRestart(1);
    expect(router.stats().folded).toEqual({ logs: 2, replayed });
    expect(router.stats().recovery[0]!.replayed).toBe(0);
  });

  it('puts shows in partitions by nginx’s hash in a new store, and keeps a store made before it on FNV-1a', async () => {
    const fresh = await tempDir();
    let router = await startRouter(fresh);
    expect(router.partitionHash).toBe('crc32');
    await router.stop();
    router = await startRouter(fresh);
    expect(router.partitionHash).toBe('crc32');
    // A store whose meta was written before the hash was recorded: its shows are where FNV-1a put them.
    const legacy = await tempDir();
    await openSeatMeta(legacy.dataDir, legacy.seatStore).fix({
      partitions: 8,
      createdAt: new Date().toISOString(),
    });
    router = await startRouter(legacy);
    expect(router.partitionHash).toBe('fnv1a');
    const shows = ['shw_l1', 'shw_l2', 'shw_l3', 'shw_l4'];
    // Partitions that the two hashes tell apart, so a restart under the wrong one would lose them.
    expect(shows.some((id) => partitionOf(id, 8, 'fnv1a') !== partitionOf(id, 8, 'crc32'))).toBe(true);
    for (const showId of shows) {
      await router.createShow({ showId, layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false });
      expect((await router.send(showId, holdCommand(`hld_1.${showId}`, 'usr_1', ['A1']))).ok).toBe(true);
    }
    await router.stop();
    router = await startRouter(legacy, 1);
    expect(router.partitionHash).toBe('fnv1a');
    for (const showId of shows) expect(await router.getHold(showId, `hld_1.${showId}`)).toBeDefined();
  });

  it('answers callers at once while a worker cannot recover, and serves again once it can', async () => {
    const dir = await tempDir();
    const router = await startRouter(dir, 1);
    await router.createShow({ showId: 'shw_x', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false });
    expect((await router.send('shw_x', holdCommand('hld_1.shw_x', 'usr_1', ['A1']))).ok).toBe(true);
    await router.killWorker(0);
    // While it is down, its commit log is damaged: the restart's recovery fails.
    const repair = await store.damageLog(dir, 'w-0');
    const waiting = await router.send('shw_x', holdCommand('hld_2.shw_x', 'usr_2', ['A2']));
    expect(waiting).toMatchObject({ ok: false, code: 'WORKER_FAILED' });
    expect(router.isReady).toBe(false);
    expect(await router.send('shw_x', holdCommand('hld_3.shw_x', 'usr_3', ['A3']))).toMatchObject({
      ok: false,
      code: 'WORKER_FAILED',
    });
    // Repaired: a later attempt recovers, with the acknowledged hold.
    await repair();
    const deadline = Date.now() + 10_000;
    while (!router.isReady && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(router.isReady).toBe(true);
    expect(await router.getHold('shw_x', 'hld_1.shw_x')).toBeDefined();
    expect((await router.send('shw_x', holdCommand('hld_4.shw_x', 'usr_4', ['A4']))).ok).toBe(true);
  });

  it('needs no replay after a clean stop', async () => {
    const dir = await tempDir();
    let router = await startRouter(dir, 1);
    await router.createShow({ showId: 'shw_clean', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false });
    for (let i = 0; i < 20; i++)
      await router.send('shw_clean', holdCommand(`hld_${i}.shw_clean`, `u${i}`, [`F${i + 1}`]));
    await router.stop();
    router = await startRouter(dir, 1);
    expect(router.stats().recovery[0]!.replayed).toBe(0);
    expect((await router.seatMap('shw_clean'))!.version).toBe(20);
  });

  it('restarts a worker that dies while the other keeps serving', async () => {
    const router = await startRouter(await tempDir(), 2);
    const showIds = Array.from({ length: 16 }, (_, i) => `shw_k${i}`);
    for (const showId of showIds)
      await router.createShow({ showId, layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false });
    for (const showId of showIds) await router.send(showId, holdCommand(`hld_1.${showId}`, 'u1', ['A1']));
    await router.killWorker(0);
    // Requests made while it restarts wait for it; none is lost.
    const replies = await Promise.all(
      showIds.map((showId) => router.send(showId, holdCommand(`hld_2.${showId}`, 'u2', ['A2']))),
    );
    expect(replies.every((r) => r.ok)).toBe(true);
    for (const showId of showIds) expect(await router.getHold(showId, `hld_1.${showId}`)).toBeDefined();
    expect(router.stats().restarts).toBe(1);
  });

  it('publishes one event per accepted change, versions rising by one', async () => {
    const router = await startRouter(await tempDir(), 1);
    const events: ShowEvent[] = [];
    router.onEvents((e) => events.push(...e));
    await router.createShow({ showId: 'shw_ev', layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false });
    await Promise.all([
      router.send('shw_ev', holdCommand('hld_1.shw_ev', 'u1', ['A1', 'A2'])),
      router.send('shw_ev', holdCommand('hld_2.shw_ev', 'u2', ['A2'])),
      router.send('shw_ev', holdCommand('hld_3.shw_ev', 'u3', ['A3'])),
    ]);
    expect(events.map((e) => e.version)).toEqual([1, 2]);
    expect(events[0]!.changes).toEqual([
      [0, 1],
      [1, 1],
    ]);
  });

  it('refuses unknown shows and creates missing actors from the resolver', async () => {
    const router = await startRouter(await tempDir(), 1);
    expect(await router.send('shw_none', holdCommand('hld_1.shw_none', 'u', ['A1']))).toMatchObject({
      ok: false,
      code: 'SHOW_NOT_FOUND',
    });
    router.setShowResolver((showId) =>
      showId === 'shw_late' ? { showId, layoutKey: LAYOUT_KEY, forbidSingleSeatGaps: false } : undefined,
    );
    expect((await router.send('shw_late', holdCommand('hld_1.shw_late', 'u', ['A1']))).ok).toBe(true);
    expect(
      await router.createShow({
        showId: 'shw_late',
        layoutKey: layoutKeyOf(simpleLayout(2, 2)),
        forbidSingleSeatGaps: false,
      }),
    ).toMatchObject({ ok: false, code: 'SHOW_EXISTS' });
  });
});
