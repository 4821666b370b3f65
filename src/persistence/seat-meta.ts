/**
 * @module seat-meta
 * What the seat store records about itself: the partition count and the hash that puts a show in a
 * partition (both fixed when the store is created, so a show never changes partition) and the worker
 * count whose commit logs it holds. With SQLite files it
 * is `meta.json` in the data directory; with PostgreSQL, the one row of `seat_meta`, so every node of a
 * cluster reads the same partition count from the database rather than from a directory of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { SeatStoreOption } from './seat-store.js';
import { syncDirectorySync } from './wal-flush.js';

/**
 * How a show id picks its partition. `crc32` is nginx's `hash` (Cache::Memcached's): a balancer in
 * front of a cluster computes the same partition from the show id and sends the request to its
 * owner (`src/cluster/placement.ts`). `fnv1a` is what stores created before it used: kept for them,
 * since a show may never change partition.
 */
export type PartitionHash = 'crc32' | 'fnv1a';

export interface SeatMeta {
  partitions: number;
  /** Absent in stores created before it was recorded: those are `fnv1a`. */
  hash?: PartitionHash;
  createdAt: string;
  /** The worker count whose commit logs the store holds (absent before commit logs existed). */
  workers?: number;
}

export interface SeatMetaStore {
  /**
   * The stored meta, or `initial` stored and returned when there is none yet. Two processes creating
   * the store at once agree on one of them.
   */
  fix(initial: SeatMeta): Promise<SeatMeta>;
  /** Records the worker count whose logs the store now holds. */
  setWorkers(workers: number): Promise<void>;
}

export function openSeatMeta(dataDir: string, seatStore?: SeatStoreOption): SeatMetaStore {
  return seatStore?.kind === 'postgres' ? postgresMeta(seatStore.url) : fileMeta(dataDir);
}

function fileMeta(dataDir: string): SeatMetaStore {
  const file = path.join(dataDir, 'meta.json');
  const read = (): SeatMeta | undefined =>
    fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as SeatMeta) : undefined;
  // Written whole to a temporary file, flushed, and renamed over the old one, then the directory
  // flushed: after power loss the file is the old one or the new one, never half of either.
  const write = (meta: SeatMeta) => {
    const fd = fs.openSync(`${file}.tmp`, 'w', 0o600);
    try {
      fs.writeFileSync(fd, `${JSON.stringify(meta)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(`${file}.tmp`, file);
    syncDirectorySync(dataDir);
  };
  return {
    async fix(initial) {
      fs.mkdirSync(dataDir, { recursive: true });
      const stored = read();
      if (stored) return stored;
      write(initial);
      return initial;
    },
    async setWorkers(workers) {
      const stored = read();
      if (!stored) throw new Error(`${file} is missing: the seat store was never created`);
      write({ ...stored, workers });
    },
  };
}

const SEAT_META_SCHEMA = `
CREATE TABLE IF NOT EXISTS seat_meta (
  id integer PRIMARY KEY CHECK (id = 1),
  partitions integer NOT NULL,
  created_at text NOT NULL,
  workers integer
);
ALTER TABLE seat_meta ADD COLUMN IF NOT EXISTS partition_hash text`;

interface SeatMetaRow {
  partitions: number;
  partition_hash: PartitionHash | null;
  created_at: string;
  workers: number | null;
}

function postgresMeta(url: string): SeatMetaStore {
  const withClient = async <T>(use: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(SEAT_META_SCHEMA);
      return await use(client);
    } finally {
      await client.end();
    }
  };
  return {
    fix: (initial) =>
      withClient(async (client) => {
        // The first writer's row stays; everyone then reads the same one.
        await client.query(
          `INSERT INTO seat_meta (id, partitions, partition_hash, created_at, workers) VALUES (1, $1, $2, $3, $4)
           ON CONFLICT (id) DO NOTHING`,
          [initial.partitions, initial.hash ?? null, initial.createdAt, initial.workers ?? null],
        );
        const { rows } = await client.query<SeatMetaRow>(
          'SELECT partitions, partition_hash, created_at, workers FROM seat_meta WHERE id = 1',
        );
        const row = rows[0]!;
        return {
          partitions: row.partitions,
          ...(row.partition_hash === null ? {} : { hash: row.partition_hash }),
          createdAt: row.created_at,
          ...(row.workers === null ? {} : { workers: row.workers }),
        };
      }),
    setWorkers: (workers) =>
      withClient(async (client) => {
        await client.query('UPDATE seat_meta SET workers = $1 WHERE id = 1', [workers]);
      }),
  };
}
