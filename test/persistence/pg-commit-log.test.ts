import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommitLog, type LogRecord } from '../../src/persistence/commit-log.js';
import { PostgresCommitLog, SerialWrites } from '../../src/persistence/pg-commit-log.js';
import { freshPostgresDatabase } from '../helpers/postgres.js';

/** What the shard needs of a commit log; both stores' logs must give it alike. */
type SeatLog = Pick<
  CommitLog,
  | 'add'
  | 'commit'
  | 'pendingRecords'
  | 'lastBatchId'
  | 'records'
  | 'recordCount'
  | 'pruneThrough'
  | 'sync'
  | 'close'
>;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-seatlog-'));
let pool: pg.Pool;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: await freshPostgresDatabase('seat_log'), max: 4 });
});
afterAll(async () => {
  await pool?.end();
  fs.rmSync(dir, { recursive: true, force: true });
});

const opens: Record<'sqlite' | 'postgres', (name: string) => Promise<SeatLog>> = {
  sqlite: async (name) => new CommitLog(path.join(dir, `${name}.db`), 'full'),
  postgres: (name) => PostgresCommitLog.open(pool, name),
};

/** Appends `batches` batches of `perBatch` hold commands, committing each; returns what was added. */
function appendBatches(log: SeatLog, batches: number, perBatch: number, firstSeq = 1): LogRecord[] {
  const added: LogRecord[] = [];
  let seq = firstSeq;
  for (let b = 0; b < batches; b++) {
    for (let r = 0; r < perBatch; r++) {
      const command = { type: 'hold', seats: [`A${r + 1}`], note: 'é ✓' };
      log.add(b % 3, seq, `shw_${b % 3}`, JSON.stringify(command));
      added.push({ partition: b % 3, seq, showId: `shw_${b % 3}`, command });
      seq++;
    }
    log.commit();
  }
  return added;
}

describe.each(['sqlite', 'postgres'] as const)('the %s seat commit log', (store) => {
  it('gives back, after a reopen, every record of every synced batch in order', async () => {
    const log = await opens[store](`${store}-order`);
    const added = appendBatches(log, 40, 25);
    expect(log.lastBatchId).toBe(40);
    expect(log.pendingRecords).toBe(0);
    await log.sync();
    log.close();
    const reopened = await opens[store](`${store}-order`);
    expect([...reopened.records()]).toEqual(added);
    expect(reopened.recordCount()).toBe(1000);
    expect(reopened.lastBatchId).toBe(40);
    reopened.close();
  });

  it('writes nothing for a batch without records', async () => {
    const log = await opens[store](`${store}-empty`);
    expect(log.commit()).toBeUndefined();
    await log.sync();
    expect(log.lastBatchId).toBe(0);
    log.close();
  });

  it('keeps only the batches after a prune, and numbers on from the last one', async () => {
    const log = await opens[store](`${store}-prune`);
    const added = appendBatches(log, 10, 3);
    await log.sync();
    log.pruneThrough(6);
    await log.sync();
    expect(log.recordCount()).toBe(12);
    log.close();
    const reopened = await opens[store](`${store}-prune`);
    expect([...reopened.records()]).toEqual(added.slice(18));
    appendBatches(reopened, 1, 1, 100);
    expect(reopened.lastBatchId).toBe(11);
    await reopened.sync();
    reopened.close();
  });
});

describe('the PostgreSQL seat commit log', () => {
  it('keeps each log apart from the other workers’ logs in the shared table', async () => {
    const a = await PostgresCommitLog.open(pool, 'w-a');
    const b = await PostgresCommitLog.open(pool, 'w-b');
    const fromA = appendBatches(a, 2, 2);
    appendBatches(b, 3, 1);
    await Promise.all([a.sync(), b.sync()]);
    expect([...(await PostgresCommitLog.open(pool, 'w-a')).records()]).toEqual(fromA);
    expect((await PostgresCommitLog.open(pool, 'w-b')).lastBatchId).toBe(3);
  });

  it('sends the batches that queue behind an insert in flight as one insert, in order', async () => {
    const writes = new SerialWrites();
    const log = await PostgresCommitLog.open(pool, 'w-group', writes);
    const added = appendBatches(log, 1, 2);
    // The first insert is on its way (a round trip to the server); 39 batches are committed meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
    added.push(...appendBatches(log, 39, 2, 3));
    await log.sync();
    // The first insert went alone; the other 39 batches waited behind it and went as one.
    expect(writes.sent).toBe(2);
    const { rows } = await pool.query("SELECT id FROM seat_commit_log WHERE log = 'w-group' ORDER BY id");
    expect(rows.map((r) => Number(r.id))).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect([...(await PostgresCommitLog.open(pool, 'w-group')).records()]).toEqual(added);
  });

  it('never lets a batch jump over another kind of write queued before it', async () => {
    const writes = new SerialWrites();
    const log = await PostgresCommitLog.open(pool, 'w-order', writes);
    const order: string[] = [];
    appendBatches(log, 1, 1);
    writes.push(async () => {
      // A partition write between two log batches: the second batch must not join the first insert.
      const { rows } = await pool.query(
        "SELECT count(*)::int AS n FROM seat_commit_log WHERE log = 'w-order'",
      );
      order.push(`partition write saw ${rows[0].n} batch(es)`);
    });
    appendBatches(log, 2, 1, 10);
    await log.sync();
    expect(order).toEqual(['partition write saw 1 batch(es)']);
    expect(writes.sent).toBe(3);
  });

  it('fails sync, and every later one, when a write fails: memory is ahead of the store', async () => {
    const log = await PostgresCommitLog.open(pool, 'w-fail');
    appendBatches(log, 1, 1);
    await log.sync();
    // Another batch with an id already taken: a stand-in for any write PostgreSQL refuses.
    await pool.query("INSERT INTO seat_commit_log (log, id, records, body) VALUES ('w-fail', 2, 1, '\\x00')");
    appendBatches(log, 1, 1, 10);
    await expect(log.sync()).rejects.toThrow(/duplicate key/);
    appendBatches(log, 1, 1, 20);
    await expect(log.sync()).rejects.toThrow(/duplicate key/);
    const { rows } = await pool.query("SELECT id FROM seat_commit_log WHERE log = 'w-fail' ORDER BY id");
    expect(rows.map((r) => Number(r.id))).toEqual([1, 2]);
  });
});
