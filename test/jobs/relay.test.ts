/**
 * The outbox relay on its own: rows reach the queue in order, each is marked relayed once the queue took
 * it, and a queue that fails part-way leaves the rest for the next run (nothing relayed twice, nothing
 * skipped). Real app database on both stores; the queue is a recording JobQueue that can be told to fail.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type JobQueue, OutboxRelay } from '../../src/jobs/relay.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { openAppDb } from '../../src/persistence/app-db.js';
import { countingStore, SqliteStore, type Store } from '../../src/persistence/store.js';
import { APP_STORES } from '../helpers/app-stores.js';

/** Takes calls until `failFrom` calls were taken, then refuses them (Redis gone) until healed. */
class RecordingQueue implements JobQueue {
  readonly calls: string[] = [];
  failFrom = Number.POSITIVE_INFINITY;

  async schedule(notificationId: string): Promise<void> {
    this.#take(`schedule ${notificationId}`);
  }

  async reschedule(notificationId: string): Promise<void> {
    this.#take(`reschedule ${notificationId}`);
  }

  async unschedule(notificationId: string): Promise<void> {
    this.#take(`unschedule ${notificationId}`);
  }

  #take(call: string): void {
    if (this.calls.length >= this.failFrom) throw new Error('redis is not connected');
    this.calls.push(call);
  }
}

const logger = createLogger('silent');

async function writeRows(target: Store, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    const payload =
      i % 3 === 0 ? { notificationId: `ntf_${i}` } : { notificationId: `ntf_${i}`, sendAtMs: 0 };
    await target.run('INSERT INTO outbox (kind, payload, created_at) VALUES (?, ?, ?)', [
      i % 3 === 0 ? 'cancel' : 'notify',
      JSON.stringify(payload),
      new Date().toISOString(),
    ]);
  }
}

async function unrelayed(target: Store): Promise<number> {
  const row = await target.get<{ n: number }>('SELECT COUNT(*) AS n FROM outbox WHERE relayed_at IS NULL');
  return row?.n ?? -1;
}

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe.each(APP_STORES)('outbox relay on $name', (fixture) => {
  it('relays in order, marks what the queue took, and leaves the rest after a failure part-way', async () => {
    store = await fixture.open('relay-order');
    await writeRows(store, 7);
    const queue = new RecordingQueue();
    queue.failFrom = 4;
    const relay = new OutboxRelay({ store, queue, logger, batchSize: 100 });
    expect(await relay.relayNow()).toBe(4);
    expect(queue.calls).toEqual(['schedule ntf_1', 'schedule ntf_2', 'unschedule ntf_3', 'schedule ntf_4']);
    expect(await unrelayed(store)).toBe(3);
    expect(await relay.lagSeconds()).toBeGreaterThanOrEqual(0);

    queue.failFrom = Number.POSITIVE_INFINITY;
    expect(await relay.relayNow()).toBe(3);
    expect(queue.calls).toEqual([
      'schedule ntf_1',
      'schedule ntf_2',
      'unschedule ntf_3',
      'schedule ntf_4',
      'schedule ntf_5',
      'unschedule ntf_6',
      'schedule ntf_7',
    ]);
    expect(await unrelayed(store)).toBe(0);
    expect(await relay.relayNow()).toBe(0);
    expect(queue.calls).toHaveLength(7);
    expect(await relay.lagSeconds()).toBe(0);
  });

  it('marks a batch in one statement, and reads no lag when the batch drained the outbox', async () => {
    store = await fixture.open('relay-trips');
    await writeRows(store, 5);
    const counted = countingStore(store);
    const queue = new RecordingQueue();
    const metrics = createMetrics();
    const relay = new OutboxRelay({ store: counted.store, queue, logger, metrics });
    expect(await relay.relayNow()).toBe(5);
    expect(queue.calls).toHaveLength(5);
    expect(await unrelayed(store)).toBe(0);
    // The batch's read and one UPDATE for its five rows: no transaction around five, no lag read.
    expect(counted.roundTrips()).toBe(2);
    expect((await metrics.outboxLag.get()).values[0]?.value).toBe(0);
    // An idle poll is one read.
    expect(await relay.relayNow()).toBe(0);
    expect(counted.roundTrips()).toBe(3);
  });

  it('reads the lag when a failing queue leaves rows behind', async () => {
    store = await fixture.open('relay-lag');
    await writeRows(store, 4);
    await store.run('UPDATE outbox SET created_at = ?', [new Date(Date.now() - 60_000).toISOString()]);
    const queue = new RecordingQueue();
    queue.failFrom = 2;
    const metrics = createMetrics();
    const relay = new OutboxRelay({ store, queue, logger, metrics });
    expect(await relay.relayNow()).toBe(2);
    expect(await unrelayed(store)).toBe(2);
    expect((await metrics.outboxLag.get()).values[0]?.value).toBeGreaterThanOrEqual(60);
  });

  it('marks each row once when several relays drain one outbox at the same time', async () => {
    store = await fixture.open('relay-race');
    const rows = 60;
    await writeRows(store, rows);
    // Eight relays (eight nodes) on one store, small batches so that their batches overlap.
    const queues = Array.from({ length: 8 }, () => new RecordingQueue());
    const relays = queues.map(
      (queue) => new OutboxRelay({ store: store as Store, queue, logger, batchSize: 7 }),
    );
    const marked = await Promise.all(relays.map((relay) => relay.relayNow()));
    // The conditional UPDATE lets one relay mark a row: the marks add up to the rows, no more.
    expect(marked.reduce((a, b) => a + b, 0)).toBe(rows);
    expect(await unrelayed(store)).toBe(0);
    // Every row reached a queue at least once (a second hand-over is a no-op for the queues).
    const handed = new Set(queues.flatMap((queue) => queue.calls));
    expect(handed.size).toBe(rows);
  });
});

describe('outbox relay on SQLite files', () => {
  it('marks a batch in one commit, not one per row (each commit is a disk flush at full sync)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-relay-'));
    const db = openAppDb(path.join(dir, 'app.db'));
    try {
      store = new SqliteStore(db);
      await writeRows(store, 50);
      // Frames in the WAL count what the relay wrote: per-row commits would write 50 or more.
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('wal_checkpoint(TRUNCATE)');
      const relay = new OutboxRelay({ store, queue: new RecordingQueue(), logger });
      await relay.relayNow();
      expect(await unrelayed(store)).toBe(0);
      const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)') as [{ log: number }];
      expect(log).toBeGreaterThan(0);
      expect(log).toBeLessThan(10);
    } finally {
      await store?.close();
      store = undefined;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
