/**
 * The PostgreSQL seat store's write order, against a real server: a batch's partition writes (one
 * statement for all its partitions) and its log row go one after another on one chain, so a log row
 * never lands when the partition write before it failed, and every later `sync()` reports the failure
 * (the worker then ends, as on a failed SQLite flush). Also: what one store wrote, the next open reads
 * back, snapshots included.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seatWriterName } from '../../src/persistence/pg-seat-store.js';
import { openSeatStorage, type SeatStorageRequest } from '../../src/persistence/seat-store.js';
import { freshPostgresDatabase } from '../helpers/postgres.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-pgseat-'));
let url: string;
let pool: pg.Pool;

beforeAll(async () => {
  url = await freshPostgresDatabase('pg_seat');
  pool = new pg.Pool({ connectionString: url, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function request(log: string, partitions: number[]): SeatStorageRequest {
  return { dataDir, journalSync: 'full', partitions, logs: [log], seatStore: { kind: 'postgres', url } };
}

const create = (showId: string, createdSeq = 0) => ({
  showId,
  layoutKey: 'layout-key',
  forbidSingleSeatGaps: false,
  createdSeq,
});

describe('PostgreSQL seat store', () => {
  it('reads back shows, layouts, snapshots and log records written by an earlier open', async () => {
    const first = await openSeatStorage(request('w-0', [1, 2]));
    const written: number[] = [];
    first.commitPartitions(
      new Map([
        [1, { creates: [create('shw_a'), create('shw_b', 3)], snapshots: [] }],
        [
          2,
          {
            creates: [create('shw_c')],
            snapshots: [{ showId: 'shw_c', seq: 9, state: Buffer.from([0, 1, 255]) }],
          },
        ],
      ]),
      written,
    );
    expect(written).toEqual([1, 2]);
    const log = first.logs.get('w-0')!;
    log.add(1, 4, 'shw_b', '{"type":"expire","nowMs":1}');
    log.commit();
    await log.sync();
    await first.close();

    const again = await openSeatStorage(request('w-0', [1, 2]));
    const one = again.partitions.get(1)!;
    const shows = [...one.shows()].sort((a, b) => a.showId.localeCompare(b.showId));
    expect(shows.map((s) => [s.showId, s.snapshotSeq, s.snapshot])).toEqual([
      ['shw_a', 0, undefined],
      ['shw_b', 3, undefined],
    ]);
    expect([...one.layouts().values()]).toEqual(['layout-key']);
    expect(one.lastSeq()).toBe(3);
    const two = again.partitions.get(2)!;
    expect([...two.shows()].map((s) => [s.showId, s.snapshotSeq, s.snapshot])).toEqual([
      ['shw_c', 9, Buffer.from([0, 1, 255])],
    ]);
    expect(two.lastSeq()).toBe(9);
    expect([...again.logs.get('w-0')!.records()]).toEqual([
      { partition: 1, seq: 4, showId: 'shw_b', command: { type: 'expire', nowMs: 1 } },
    ]);
    await again.close();
  });

  it('never writes a batch log row after its partition write failed, and fails every later sync', async () => {
    const storage = await openSeatStorage(request('w-9', [7]));
    const partition = storage.partitions.get(7)!;
    const log = storage.logs.get('w-9')!;
    storage.commitPartitions(new Map([[7, { creates: [create('shw_dup')], snapshots: [] }]]), []);
    log.add(7, 1, 'shw_dup', '{"type":"expire","nowMs":1}');
    log.commit();
    await log.sync();
    // A second creation of the same show breaks the primary key: the partition write fails...
    storage.commitPartitions(new Map([[7, { creates: [create('shw_dup')], snapshots: [] }]]), []);
    log.add(7, 2, 'shw_dup', '{"type":"expire","nowMs":2}');
    log.commit();
    await expect(log.sync()).rejects.toThrow(/duplicate key/);
    await expect(partition.sync()).rejects.toThrow(/duplicate key/);
    // ...and the log row sent after it never reached the table.
    const { rows } = await pool.query<{ id: string }>("SELECT id FROM seat_commit_log WHERE log = 'w-9'");
    expect(rows.map((r) => Number(r.id))).toEqual([1]);
    await storage.close();
  });

  it("commits a batch's writes to several partitions together or not at all", async () => {
    const storage = await openSeatStorage(request('w-8', [3, 4]));
    storage.commitPartitions(new Map([[4, { creates: [create('shw_taken')], snapshots: [] }]]), []);
    await storage.partitions.get(4)!.sync();
    await storage.close();
    // shw_taken exists: creating it again breaks the key, and shw_new, in the same batch, is not kept.
    const second = await openSeatStorage(request('w-8', [3, 4]));
    second.commitPartitions(
      new Map([
        [3, { creates: [create('shw_new')], snapshots: [] }],
        [4, { creates: [create('shw_taken')], snapshots: [] }],
      ]),
      [],
    );
    await expect(second.partitions.get(3)!.sync()).rejects.toThrow(/duplicate key/);
    await second.close();
    const { rows } = await pool.query<{ show_id: string }>(
      'SELECT show_id FROM seat_shows WHERE partition IN (3, 4) ORDER BY show_id',
    );
    expect(rows.map((r) => r.show_id)).toEqual(['shw_taken']);
  });

  it("ends an earlier writer's session before reading its log, so a late insert of a dead worker never lands", async () => {
    await (await openSeatStorage(request('w-5', [5]))).close();
    // A worker that died with its batch insert still open on the server.
    const old = new pg.Client({ connectionString: url, application_name: seatWriterName('w-5') });
    old.on('error', () => undefined);
    await old.connect();
    await old.query('BEGIN');
    await old.query(
      "INSERT INTO seat_commit_log (log, id, records, body) VALUES ('w-5', 1, 1, convert_to('[5,1,\"shw_late\",{}]', 'UTF8'))",
    );
    const next = await openSeatStorage(request('w-5', [5]));
    expect([...next.logs.get('w-5')!.records()]).toEqual([]);
    await expect(old.query('COMMIT')).rejects.toThrow();
    await old.end().catch(() => undefined);
    const { rows } = await pool.query("SELECT id FROM seat_commit_log WHERE log = 'w-5'");
    expect(rows).toEqual([]);
    // The new writer numbers from the log it read, and its rows land.
    next.logs.get('w-5')!.add(5, 1, 'shw_next', '{"type":"expire","nowMs":1}');
    expect(next.logs.get('w-5')!.commit()).toBe(1);
    await next.logs.get('w-5')!.sync();
    await next.close();
  });
});
