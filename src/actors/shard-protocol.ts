/**
 * @module shard-protocol
 * The messages between the router (main thread) and a shard (worker thread). Requests travel in
 * batches, one message per flush, and come back the same way with the events they caused.
 */
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
  | 'NOT_READY';
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
}

export type ToShard =
  | { type: 'requests'; requests: ShardRequest[] }
  | { type: 'sweep'; nowMs: number }
  | { type: 'stop' };

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
      replies: [id: number, result: ShardResult][];
      events: ShowEvent[];
      journaled: number;
      commitMs: number;
    }
  | { type: 'stopped'; snapshots: number };

export interface ShardOptions {
  dataDir: string;
  /** The partitions this shard owns. */
  partitions: number[];
  journalSync: 'full' | 'normal';
  snapshotEvery: number;
  /**
   * Journal rows a partition keeps before a checkpoint snapshots its changed shows and deletes every
   * row behind them (default 10 × snapshotEvery, at least 1,000). Bounds replay per partition.
   */
  checkpointRows?: number;
}

/** File of one partition's journal inside the data directory. */
export function journalFile(dataDir: string, partition: number): string {
  return `${dataDir}/partitions/p-${String(partition).padStart(4, '0')}.db`;
}
