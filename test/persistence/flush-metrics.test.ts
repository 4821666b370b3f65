/**
 * The waiting-for-disk figures on /metrics (issue 13's per-step table, `npm run bench -- booking-cpu`):
 * the app database's group commit counts its flushes, their time and the wall time callers waited for
 * them; the shard workers' WAL flushes reach the main thread through shared counters. Flushes are held
 * until the test releases them, so every comparison is by order of events, not by a timing threshold.
 */
import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/persistence/group-commit.js';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestServer } from '../helpers/server.js';

/**
 * A flusher whose flushes end only when released (or at once, after `passThrough()`), recording how
 * long each released one was held: from the flusher being asked to just before it resolved.
 */
function heldFlusher() {
  const pending: { askedAt: number; resolve: () => void }[] = [];
  const held: number[] = [];
  let isPassingThrough = false;
  return {
    held,
    pending: () => pending.length,
    flush: () =>
      new Promise<void>((resolve) => {
        if (isPassingThrough) {
          held.push(0);
          resolve();
        } else pending.push({ askedAt: performance.now(), resolve });
      }),
    /** Ends the oldest flush after it was held over a timer turn; lets its continuations run. */
    releaseOne: async () => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      const flush = pending.shift();
      if (flush) {
        held.push(performance.now() - flush.askedAt);
        flush.resolve();
      }
      await new Promise((resolve) => setImmediate(resolve));
    },
    passThrough: () => {
      isPassingThrough = true;
      for (const flush of pending.splice(0)) {
        held.push(performance.now() - flush.askedAt);
        flush.resolve();
      }
    },
  };
}

/** A sample's value in Prometheus text (the exact series name with its labels), or NaN. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : Number.NaN;
}

const sum = (values: number[]) => values.reduce((s, v) => s + v, 0);

describe('flush metrics', () => {
  it("counts each flush once and every caller's whole wait, at least the time its flush was held", async () => {
    const flusher = heldFlusher();
    let changes = 1;
    const group = new GroupCommit({ flush: flusher.flush, changes: () => changes, onFlushFailed: () => {} });
    changes = 2;
    const first = group.durable();
    // Committed while the first flush runs: these two share the next one.
    const second = group.durable();
    const third = group.durable();
    await flusher.releaseOne();
    await flusher.releaseOne();
    await Promise.all([first, second, third]);
    const [heldFirst, heldSecond] = flusher.held as [number, number];
    const stats = group.stats();
    expect(stats.flushes).toBe(2);
    expect(stats.waits).toBe(3);
    // The first caller waited the whole first flush; the other two at least the whole second one each.
    expect(stats.waitSeconds * 1000).toBeGreaterThanOrEqual(heldFirst + 2 * heldSecond);
    expect(stats.flushSeconds * 1000).toBeGreaterThanOrEqual(heldFirst + heldSecond);
    // Nothing new to flush: no wait, no flush.
    await group.whenDurable();
    expect(group.stats()).toEqual(stats);
  });

  it('shows the app-db wait and flushes, and the seat journal flushes, on /metrics of a real server', async () => {
    const flusher = heldFlusher();
    const server = await startTestServer(
      { ...ADMIN_ENV, JOURNAL_SYNC: 'full' },
      { appDbFlush: flusher.flush },
    );
    try {
      while (flusher.pending() > 0) await flusher.releaseOne();
      const releasedBefore = flusher.held.length;
      const before = (await server.api('GET', '/metrics')).body as string;
      const registering = server.api('POST', '/api/register', {
        body: { name: 'Asha', email: 'asha@example.com', password: 'a long enough passphrase' },
      });
      while (flusher.pending() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // Released one at a time until none is left: the answer waited for one of them at least.
      while (flusher.pending() > 0) await flusher.releaseOne();
      expect((await registering).status).toBe(201);
      const heldNow = flusher.held.slice(releasedBefore);
      // Scraped while any new flush stays held: finished flushes are exactly those released.
      const after = (await server.api('GET', '/metrics')).body as string;
      const rise = (series: string) => sample(after, series) - sample(before, series);
      expect(rise('boxoffice_app_db_flushes_total')).toBe(heldNow.length);
      expect(rise('boxoffice_app_db_durable_waits_total')).toBeGreaterThanOrEqual(1);
      expect(rise('boxoffice_app_db_durable_wait_seconds_total') * 1000).toBeGreaterThanOrEqual(
        Math.min(...heldNow),
      );
      expect(rise('boxoffice_app_db_flush_seconds_total') * 1000).toBeGreaterThanOrEqual(sum(heldNow));

      // The seat journal: a hold is a commit-log row the worker flushes ('full') before answering.
      flusher.passThrough();
      const { showId } = await createShow(server.api);
      const user = await newUser(server.api);
      const journalBefore = (await server.api('GET', '/metrics')).body as string;
      const hold = await server.api('POST', `/api/shows/${showId}/holds`, {
        body: { seats: ['A1'] },
        token: user.token,
      });
      expect(hold.status).toBe(201);
      const journalAfter = (await server.api('GET', '/metrics')).body as string;
      const commitLog = (name: string) =>
        sample(journalAfter, `${name}{file="commit_log"}`) -
        sample(journalBefore, `${name}{file="commit_log"}`);
      expect(commitLog('boxoffice_journal_flushes_total')).toBeGreaterThanOrEqual(1);
      expect(commitLog('boxoffice_journal_flush_seconds_total')).toBeGreaterThan(0);
      // The show's creation wrote its partition file, flushed the same way.
      expect(
        sample(journalAfter, 'boxoffice_journal_flushes_total{file="partition"}'),
      ).toBeGreaterThanOrEqual(1);
    } finally {
      flusher.passThrough();
      await server.destroy();
    }
  });
});
