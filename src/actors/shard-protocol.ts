/**
 * @module shard-protocol
 * The messages between the router (main thread) and a shard (worker thread). Requests travel in
 * batches, one message per flush, and come back the same way with the events they caused.
 */
import type { LeaseFence } from '../persistence/pg-commit-log.js';
import type { SeatStoreOption } from '../persistence/seat-store.js';
import type { FlushTally, JournalSync } from '../persistence/wal-flush.js';
import type { HoldView, ShowCommand, ShowReply } from './show-actor.js';

/** What a caller can ask of a show's actor. Reads queue behind writes, so they see them. */
export type ShardOp =
  | { kind: 'command'; command: ShowCommand }
  | { kind: 'create'; layoutKey: string; forbidSingleSeatGaps: boolean }
  | { kind: 'getHold'; holdId: string }
  | { kind: 'findHoldOf'; ownerId: string; seat: string }
  | { kind: 'seatMap' }
  | { kind: 'check' };

export interface ShardRequest {
  /** Correlates the reply; negative ids are the shard's own (the expiry sweep) and get no reply. */
  id: number;
  partition: number;
  showId: string;
  op: ShardOp;
}

/** Refusals that come from the shard or router rather than from the actor. */
export type RoutingRefusalCode =
  | 'SHOW_NOT_FOUND'
  | 'SHOW_EXISTS'
  | 'OVERLOADED'
  | 'WORKER_FAILED'
  | 'NOT_READY'
  // A cluster node asked for a partition it does not (or no longer) serve: ask its owner.
  | 'NOT_OWNER';
export interface RoutingRefusal {
  ok: false;
  code: RoutingRefusalCode;
  message: string;
  seats?: undefined;
}

export interface SeatMapData {
  showId: string;
  layoutKey: string;
  version: number;
  /** One byte per seat, as the actor keeps them (index into SEAT_STATUSES). */
  seats: Uint8Array;
}

export type ShardResult =
  | ShowReply
  | RoutingRefusal
  | { ok: true; hold: HoldView | undefined }
  | { ok: true; holdId: string | undefined }
  | { ok: true; seatMap: SeatMapData }
  | { ok: true; violations: string[] };

/** One applied change set: versions rise by one per event for a show. */
export interface ShowEvent {
  showId: string;
  version: number;
  /** [seat index, new status] for each seat that changed. */
  changes: [number, number][];
  /**
   * The change is not carried (a cluster relay's message would have been too long): whoever mirrors
   * the show must reload it.
   */
  isGap?: true;
}

/**
 * The hot messages travel as JSON in UTF-8, in an ArrayBuffer that is transferred, not copied. Measured
 * here, per request: structured clone of the objects 1.6 µs out + 2.1 µs in; JSON 0.7 µs + 0.9 µs; and
 * posting the JSON as a string costs another ~0.65 µs (~3 µs per kilobyte) where a transfer is free.
 * Messages stay well under 128 KB: V8 puts larger strings in its large-object space, and making one
 * cost ~4.5 µs per kilobyte here against ~0.1 below it (`MAX_REQUESTS_PER_MESSAGE`, `REPLIES_PER_MESSAGE`).
 */
export type ToShard =
  | { type: 'requests'; json: ArrayBuffer }
  | { type: 'sweep'; nowMs: number }
  | { type: 'stop' }
  // Cluster nodes only: take a partition (recover it and serve), hand it off (checkpoint, then close),
  // or drop it at once (its lease is gone: nothing more may be written or answered).
  | { type: 'acquire'; partition: number; epoch: number }
  | { type: 'release'; partition: number }
  | { type: 'abandon'; partition: number };

export interface RecoveryStats {
  partitions: number;
  shows: number;
  replayed: number;
  ms: number;
}

export type FromShard =
  | { type: 'ready'; recovery: RecoveryStats }
  | {
      type: 'replies';
      /** `RepliesBody` as JSON, without the seat maps' bytes, which ride beside it by reply index. */
      json: ArrayBuffer;
      seatMaps: [replyIndex: number, seats: Uint8Array][];
      /** A batch's replies may take several messages; the last one carries the batch's figures. */
      batch?: { journaled: number; commitMs: number };
    }
  | { type: 'stopped'; snapshots: number }
  | { type: 'acquired'; partition: number; recovery: RecoveryStats }
  | { type: 'acquireFailed'; partition: number; message: string }
  | { type: 'released'; partition: number; snapshots: number };

export interface RepliesBody {
  replies: [id: number, result: ShardResult][];
  events: ShowEvent[];
}

/** A JSON value as UTF-8 in an ArrayBuffer of its own (never the Buffer pool's), ready to transfer. */
export function toJsonBytes(value: unknown): ArrayBuffer {
  const text = JSON.stringify(value);
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes.buffer as ArrayBuffer;
}

export function fromJsonBytes<T>(buffer: ArrayBuffer): T {
  return JSON.parse(Buffer.from(buffer).toString('utf8')) as T;
}

/** A message and the buffers to transfer with it. */
export interface Transferable<M> {
  message: M;
  transfer: ArrayBuffer[];
}

export function encodeRequests(requests: readonly ShardRequest[]): Transferable<ToShard> {
  const json = toJsonBytes(requests);
  return { message: { type: 'requests', json }, transfer: [json] };
}

export function decodeRequests(message: Extract<ToShard, { type: 'requests' }>): ShardRequest[] {
  return fromJsonBytes<ShardRequest[]>(message.json);
}

/** Requests in one message at most (~220 bytes each as JSON). */
export const MAX_REQUESTS_PER_MESSAGE = 256;
/** Replies, and events, in one message at most. */
export const REPLIES_PER_MESSAGE = 256;

/**
 * A batch's replies and events as messages, in order. The seat maps' bytes are taken out of the
 * results (and stay out: the results are not reused).
 */
export function encodeReplies(
  body: RepliesBody,
  batch: { journaled: number; commitMs: number },
): Transferable<FromShard>[] {
  const parts = Math.max(
    1,
    Math.ceil(Math.max(body.replies.length, body.events.length) / REPLIES_PER_MESSAGE),
  );
  const messages: Transferable<FromShard>[] = [];
  for (let part = 0; part < parts; part++) {
    const from = part * REPLIES_PER_MESSAGE;
    const replies = body.replies.slice(from, from + REPLIES_PER_MESSAGE);
    const events = body.events.slice(from, from + REPLIES_PER_MESSAGE);
    const seatMaps: [number, Uint8Array][] = [];
    replies.forEach(([, result], index) => {
      if (!('seatMap' in result)) return;
      seatMaps.push([index, result.seatMap.seats]);
      result.seatMap.seats = EMPTY_SEATS;
    });
    const json = toJsonBytes({ replies, events });
    const isLast = part === parts - 1;
    messages.push({
      message: { type: 'replies', json, seatMaps, batch: isLast ? batch : undefined },
      transfer: [json],
    });
  }
  return messages;
}

export function decodeReplies(message: Extract<FromShard, { type: 'replies' }>): RepliesBody {
  const body = fromJsonBytes<RepliesBody>(message.json);
  for (const [index, seats] of message.seatMaps)
    (body.replies[index]![1] as { seatMap: SeatMapData }).seatMap.seats = seats;
  return body;
}

const EMPTY_SEATS = new Uint8Array(0);

export interface ShardOptions {
  /** Set on a cluster node: partitions come and go by `acquire`/`release` (then `partitions` is empty). */
  cluster?: ClusterShardOptions;
  dataDir: string;
  /** The partitions this shard owns. */
  partitions: number[];
  journalSync: JournalSync;
  snapshotEvery: number;
  /** The commit log this shard appends to (a name in the data directory's `log/`, e.g. `w-0`). */
  log: string;
  /** Other commit logs whose records are replayed at open (folding logs of another worker count). */
  replayLogs?: string[];
  /**
   * Commit-log records kept before a checkpoint snapshots every changed show into the partition files
   * and deletes the log rows behind them (default 200 × snapshotEvery). Bounds replay at recovery.
   */
  checkpointRecords?: number;
  /** Where the partitions and the commit log live: SQLite files in `dataDir` (the default) or PostgreSQL. */
  seatStore?: SeatStoreOption;
  /** A cluster node's lease on its one partition: every write is fenced by it (PostgreSQL). */
  fence?: LeaseFence;
  /** Where this worker adds its WAL flush figures for the main thread (`FlushCounters`). */
  flushCounters?: { buffer: SharedArrayBuffer; slot: number };
}

/** Per worker slot: commit-log flushes, their nanoseconds, partition-file flushes, their nanoseconds. */
const FLUSH_FIELDS = 4;

export interface JournalFlushStats {
  commitLog: { flushes: number; seconds: number };
  partitions: { flushes: number; seconds: number };
}

/**
 * The shard workers' WAL flush figures (their `FlushTally`s), in shared memory the main thread reads
 * when /metrics is scraped. Chosen over a field in the replies message: nothing is posted or grown per
 * batch (a worker adds its deltas with four atomic adds after a batch's flushes), a flush that ends with
 * no reply to carry it is counted all the same, and a slot handed to a restarted worker stays
 * cumulative because workers add deltas rather than store totals. 64-bit integers with `Atomics`, so a
 * read never sees half a write.
 */
export class FlushCounters {
  readonly buffer: SharedArrayBuffer;
  readonly #view: BigInt64Array;

  constructor(workersOrBuffer: number | SharedArrayBuffer) {
    this.buffer =
      typeof workersOrBuffer === 'number'
        ? new SharedArrayBuffer(workersOrBuffer * FLUSH_FIELDS * BigInt64Array.BYTES_PER_ELEMENT)
        : workersOrBuffer;
    this.#view = new BigInt64Array(this.buffer);
  }

  /** Worker side: adds what `commitLog` and `partitions` gained since `reported`, which it updates. */
  add(slot: number, commitLog: FlushTally, partitions: FlushTally, reported: FlushTally[]): void {
    for (let k = 0; k < 2; k++) {
      const tally = k === 0 ? commitLog : partitions;
      const last = reported[k]!;
      if (tally.flushes === last.flushes) continue;
      const at = slot * FLUSH_FIELDS + 2 * k;
      Atomics.add(this.#view, at, BigInt(tally.flushes - last.flushes));
      Atomics.add(this.#view, at + 1, BigInt(tally.nanoseconds - last.nanoseconds));
      last.flushes = tally.flushes;
      last.nanoseconds = tally.nanoseconds;
    }
  }

  /** Main-thread side: every worker's figures, summed. */
  read(): JournalFlushStats {
    const sums = [0, 0, 0, 0];
    for (let i = 0; i < this.#view.length; i++)
      sums[i % FLUSH_FIELDS]! += Number(Atomics.load(this.#view, i));
    return {
      commitLog: { flushes: sums[0]!, seconds: sums[1]! / 1e9 },
      partitions: { flushes: sums[2]!, seconds: sums[3]! / 1e9 },
    };
  }
}

/**
 * A cluster node's shard: it starts with no partitions and is given them one at a time, each with the
 * epoch of the lease that makes it the owner. Each partition is a `ShardCore` of its own with its own
 * commit log (`partitionLogName`), so a partition moves between nodes with its log and nothing else.
 */
export interface ClusterShardOptions {
  node: string;
}

/** The commit log of one partition in a cluster. */
export function partitionLogName(partition: number): string {
  return `p-${String(partition).padStart(4, '0')}`;
}

// The data directory's seat files are named by the store that opens them.
export { commitLogDir, commitLogFile, journalFile } from '../persistence/seat-store.js';
