/**
 * @module seat-store
 * Where a shard keeps its seats: the partition data (shows, layouts, a snapshot per show) and the
 * worker's commit log. Two implementations of the same two interfaces: SQLite files in the data
 * directory (`partition-journal.ts`, `commit-log.ts`; the default) and PostgreSQL tables
 * (`pg-seat-store.ts`). The shard writes through them in one order on both: a batch's creations and
 * snapshots, then its log row; a checkpoint's prune only after its snapshots are durable.
 *
 * Both answer reads synchronously: the PostgreSQL store reads everything the shard recovers from at
 * open (which is async there), so the batch step never awaits the store on either.
 */
import fs from 'node:fs';
import { CommitLog, type LogRecord } from './commit-log.js';
import {
  type BatchWrites,
  isEmpty,
  type JournalRow,
  PartitionJournal,
  type ShowRecord,
} from './partition-journal.js';
import type { LeaseFence } from './pg-commit-log.js';
import type { JournalSync } from './wal-flush.js';
import { syncDirectorySync } from './wal-flush.js';

/** Which store the shard uses; PostgreSQL keeps a small pool of its own per worker. */
export type SeatStoreOption = { kind: 'sqlite' } | { kind: 'postgres'; url: string; poolMax?: number };

/** One partition's shows and snapshots. */
export interface SeatPartitionStore {
  /** The highest sequence this partition's data knows of (0 for a new partition). */
  lastSeq(): number;
  /** Layout keys by id. */
  layouts(): Map<number, string>;
  /** Every show with its layout id and latest snapshot, for recovery. */
  shows(): Iterable<ShowRecord>;
  /** Commands an earlier version journaled per partition (SQLite files only). */
  commands(): Iterable<JournalRow>;
  /** Resolves once the writes sent to this partition so far are durable. */
  sync(): Promise<void>;
}

/** A worker's commit log: one row per batch. */
export interface SeatLog {
  /** Where it lives (a file, or the log's name in PostgreSQL), for messages. */
  readonly file: string;
  add(partition: number, seq: number, showId: string, command: string): void;
  readonly pendingRecords: number;
  commit(): number | undefined;
  readonly lastBatchId: number;
  records(): Iterable<LogRecord>;
  recordCount(): number;
  pruneThrough(batchId: number): void;
  sync(): Promise<void>;
}

/** The store of one opened shard (or fold). */
export interface SeatStorage {
  /** The partitions' stores, by partition (opened, and for PostgreSQL read, at open). */
  readonly partitions: Map<number, SeatPartitionStore>;
  /** The logs named at open, by name. */
  readonly logs: Map<string, SeatLog>;
  /**
   * Writes (SQLite: a transaction per partition file) or sends (PostgreSQL: one statement for all of
   * them) a batch's partition writes, each partition's all or nothing, durable at its `sync()`; adds
   * the partitions written to `written`. Called before the batch's log row is committed.
   */
  commitPartitions(writes: ReadonlyMap<number, BatchWrites>, written: number[]): void;
  /** Closes everything, after the writes already sent. */
  close(): Promise<void>;
}

export interface SeatStorageRequest {
  /** A cluster node's partition: every write commits only while this lease holds (PostgreSQL only). */
  fence?: LeaseFence;
  dataDir: string;
  journalSync: JournalSync;
  partitions: readonly number[];
  logs: readonly string[];
  seatStore?: SeatStoreOption;
}

/** File of one partition's snapshots inside the data directory. */
export function journalFile(dataDir: string, partition: number): string {
  return `${dataDir}/partitions/p-${String(partition).padStart(4, '0')}.db`;
}

/** Directory of the commit logs inside the data directory. */
export function commitLogDir(dataDir: string): string {
  return `${dataDir}/log`;
}

/** File of a commit log, by name. */
export function commitLogFile(dataDir: string, name: string): string {
  return `${commitLogDir(dataDir)}/${name}.db`;
}

/** Opens the partitions and logs asked for, in the store the options name (SQLite by default). */
export async function openSeatStorage(request: SeatStorageRequest): Promise<SeatStorage> {
  if (request.seatStore?.kind === 'postgres') {
    const { openPostgresSeatStorage } = await import('./pg-seat-store.js');
    return openPostgresSeatStorage(request, request.seatStore);
  }
  return openSqliteSeatStorage(request);
}

export function openSqliteSeatStorage(request: SeatStorageRequest): SeatStorage {
  const journals = new Map<number, PartitionJournal>();
  const logs = new Map<string, CommitLog>();
  const closeAll = () => {
    for (const journal of journals.values()) journal.close();
    for (const log of logs.values()) log.close();
  };
  try {
    for (const partition of request.partitions)
      journals.set(
        partition,
        new PartitionJournal(journalFile(request.dataDir, partition), request.journalSync),
      );
    for (const name of request.logs)
      logs.set(name, new CommitLog(commitLogFile(request.dataDir, name), request.journalSync));
  } catch (error) {
    // A damaged file fails the open: the files opened before it are not left open behind it.
    closeAll();
    throw error;
  }
  return {
    partitions: journals,
    logs,
    commitPartitions(writes, written) {
      for (const [partition, batch] of writes) {
        if (isEmpty(batch)) continue;
        journals.get(partition)!.commit(batch);
        written.push(partition);
      }
    },
    async close() {
      closeAll();
    },
  };
}

/** The commit logs a store holds, by name (a fold reads them all). */
export async function seatLogNames(dataDir: string, seatStore?: SeatStoreOption): Promise<string[]> {
  if (seatStore?.kind === 'postgres') {
    const { postgresSeatLogNames } = await import('./pg-seat-store.js');
    return postgresSeatLogNames(seatStore);
  }
  const dir = commitLogDir(dataDir);
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((file) => file.endsWith('.db'))
        .map((file) => file.slice(0, -'.db'.length))
    : [];
}

/**
 * Deletes commit logs whose records a fold moved into the partition data, durably: old logs coming
 * back after power loss would hold partitions their new workers do not own.
 */
export async function dropSeatLogs(
  dataDir: string,
  names: readonly string[],
  seatStore?: SeatStoreOption,
): Promise<void> {
  if (seatStore?.kind === 'postgres') {
    const { dropPostgresSeatLogs } = await import('./pg-seat-store.js');
    return dropPostgresSeatLogs(seatStore, names);
  }
  for (const name of names)
    for (const suffix of ['', '-wal', '-shm'])
      fs.rmSync(`${commitLogFile(dataDir, name)}${suffix}`, { force: true });
  const dir = commitLogDir(dataDir);
  if (fs.existsSync(dir)) syncDirectorySync(dir);
}
