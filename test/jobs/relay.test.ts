/**
 * The outbox relay on its own: rows reach the queue in order, each is marked relayed once the queue took
 * it, and a queue that fails part-way leaves the rest for the next run (nothing relayed twice, nothing
 * skipped). Real app database; the queue is a recording JobQueue that can be told to fail.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type JobQueue, OutboxRelay } from '../../src/jobs/relay.js';
import { createLogger } from '../../src/logger.js';
import { type AppDb, openAppDb } from '../../src/persistence/app-db.js';

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

let db: AppDb | undefined;
afterEach(() => {
  db?.close();
  db = undefined;
});

function writeRows(target: AppDb, n: number): void {
  const insert = target.prepare('INSERT INTO outbox (kind, payload, created_at) VALUES (?, ?, ?)');
  for (let i = 1; i <= n; i++)
    if (i % 3 === 0)
      insert.run('cancel', JSON.stringify({ notificationId: `ntf_${i}` }), new Date().toISOString());
    else
      insert.run(
        'notify',
        JSON.stringify({ notificationId: `ntf_${i}`, sendAtMs: 0 }),
        new Date().toISOString(),
      );
}

function unrelayed(target: AppDb): number {
  return target.prepare('SELECT COUNT(*) FROM outbox WHERE relayed_at IS NULL').pluck().get() as number;
}

describe('outbox relay', () => {
  it('relays in order, marks what the queue took, and leaves the rest after a failure part-way', async () => {
    db = openAppDb(':memory:');
    writeRows(db, 7);
    const queue = new RecordingQueue();
    queue.failFrom = 4;
    const relay = new OutboxRelay({ db, queue, logger: createLogger('silent'), batchSize: 100 });
    await relay.relayNow();
    expect(queue.calls).toEqual(['schedule ntf_1', 'schedule ntf_2', 'unschedule ntf_3', 'schedule ntf_4']);
    expect(unrelayed(db)).toBe(3);

    queue.failFrom = Number.POSITIVE_INFINITY;
    await relay.relayNow();
    expect(queue.calls).toEqual([
      'schedule ntf_1',
      'schedule ntf_2',
      'unschedule ntf_3',
      'schedule ntf_4',
      'schedule ntf_5',
      'unschedule ntf_6',
      'schedule ntf_7',
    ]);
    expect(unrelayed(db)).toBe(0);
    await relay.relayNow();
    expect(queue.calls).toHaveLength(7);
  });

  it('marks a batch in one commit, not one per row (each commit is a disk flush at full sync)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-relay-'));
    try {
      db = openAppDb(path.join(dir, 'app.db'));
      writeRows(db, 50);
      // Frames in the WAL count what the relay wrote: per-row commits would write 50 or more.
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('wal_checkpoint(TRUNCATE)');
      const relay = new OutboxRelay({ db, queue: new RecordingQueue(), logger: createLogger('silent') });
      await relay.relayNow();
      expect(unrelayed(db)).toBe(0);
      const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)') as [{ log: number }];
      expect(log).toBeGreaterThan(0);
      expect(log).toBeLessThan(10);
    } finally {
      db?.close();
      db = undefined;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
