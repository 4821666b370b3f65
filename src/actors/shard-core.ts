/**
 * @module shard-core
 * The shard without its thread: the show actors of some partitions, their journals, and the batch
 * step (apply every request in order, journal the accepted commands in one transaction per partition,
 * then hand back replies and events). The worker entry wraps it; tests drive it directly.
 */
import { type BatchWrites, isEmpty, PartitionJournal } from '../persistence/partition-journal.js';
import type { CompiledLayout } from './seat-layout.js';
import {
  journalFile,
  type RecoveryStats,
  type RoutingRefusal,
  type ShardOp,
  type ShardOptions,
  type ShardRequest,
  type ShardResult,
  type ShowEvent,
} from './shard-protocol.js';
import {
  apply,
  createShowState,
  holdView,
  invariantViolations,
  type ShowCommand,
  type ShowState,
} from './show-actor.js';
import { decodeState, encodeState, layoutResolver } from './show-codec.js';

interface LiveShow {
  readonly state: ShowState;
  readonly partition: number;
  /** Sequence of the last journaled command of this show. */
  lastSeq: number;
  /** Commands journaled since the show's last snapshot. */
  sinceSnapshot: number;
}

export interface BatchOutcome {
  replies: [number, ShardResult][];
  events: ShowEvent[];
  /** Commands written to journals by this batch. */
  journaled: number;
  /** Partitions this batch wrote to: `sync` them before replying. */
  written: number[];
}

/** When set (tests do), every applied command is followed by a full invariant check. */
const isCheckingInvariants = process.env.BOXOFFICE_ASSERT_INVARIANTS === '1';

function routingRefusal(code: RoutingRefusal['code'], message: string): RoutingRefusal {
  return { ok: false, code, message };
}

/** Per partition: its journal, the shows changed since their last snapshot, rows since the checkpoint. */
interface PartitionState {
  readonly journal: PartitionJournal;
  readonly dirty: Set<LiveShow>;
  rowsSinceCheckpoint: number;
}

export class ShardCore {
  readonly #shows = new Map<string, LiveShow>();
  readonly #partitions = new Map<number, PartitionState>();
  readonly #checkpointRows: number;
  /** Layout keys interned: 500,000 shows share a handful of layouts, and each string is kilobytes. */
  readonly #layoutKeys = new Map<string, string>();
  readonly #compile = layoutResolver();

  private constructor(private readonly options: ShardOptions) {
    this.#checkpointRows = options.checkpointRows ?? Math.max(1000, 10 * options.snapshotEvery);
  }

  /** Opens the partitions' journals and recovers every show: latest snapshot, then replay. */
  static open(options: ShardOptions): { core: ShardCore; recovery: RecoveryStats } {
    const started = performance.now();
    const core = new ShardCore(options);
    let replayed = 0;
    for (const partition of options.partitions) replayed += core.#recoverPartition(partition);
    const ms = Math.round(performance.now() - started);
    return {
      core,
      recovery: { partitions: options.partitions.length, shows: core.#shows.size, replayed, ms },
    };
  }

  #recoverPartition(partition: number): number {
    const journal = new PartitionJournal(
      journalFile(this.options.dataDir, partition),
      this.options.journalSync,
    );
    const part: PartitionState = { journal, dirty: new Set(), rowsSinceCheckpoint: 0 };
    this.#partitions.set(partition, part);
    const layouts = new Map([...journal.layouts()].map(([id, key]) => [id, this.#intern(key)]));
    for (const record of journal.shows()) {
      const layoutKey = layouts.get(record.layoutId)!;
      const state = record.snapshot
        ? decodeState(record.snapshot, layoutKey, (key) => this.#compile(key))
        : createShowState(record.showId, this.#compile(layoutKey), layoutKey, record.forbidSingleSeatGaps);
      this.#shows.set(record.showId, { state, partition, lastSeq: record.snapshotSeq, sinceSnapshot: 0 });
    }
    let replayed = 0;
    for (const row of journal.commands()) {
      const show = this.#shows.get(row.showId);
      if (!show) throw new Error(`journal of partition ${partition} names unknown show ${row.showId}`);
      if (row.seq <= show.lastSeq) continue;
      const result = apply(show.state, JSON.parse(row.command) as ShowCommand);
      // Only commands that changed state were journaled; replaying one must change it again.
      if (!result.isChanged) throw new Error(`replay of seq ${row.seq} (${row.showId}) changed nothing`);
      show.lastSeq = row.seq;
      show.sinceSnapshot++;
      part.dirty.add(show);
      replayed++;
    }
    part.rowsSinceCheckpoint = replayed;
    return replayed;
  }

  #intern(key: string): string {
    const known = this.#layoutKeys.get(key);
    if (known !== undefined) return known;
    this.#layoutKeys.set(key, key);
    return key;
  }

  get showCount(): number {
    return this.#shows.size;
  }

  /** Applies a batch in order, journals what changed (one transaction per partition), then returns. */
  process(requests: readonly ShardRequest[]): BatchOutcome {
    const writes = new Map<number, BatchWrites>();
    const due = new Set<LiveShow>();
    const outcome: BatchOutcome = { replies: [], events: [], journaled: 0, written: [] };
    for (const request of requests) {
      let batch = writes.get(request.partition);
      if (!batch) {
        batch = { creates: [], commands: [], snapshots: [] };
        writes.set(request.partition, batch);
      }
      const result = this.#handle(request, batch, outcome.events, due);
      if (request.id >= 0) outcome.replies.push([request.id, result]);
    }
    for (const show of due) this.#addSnapshot(show, writes.get(show.partition)!);
    for (const [partition, batch] of writes) {
      const part = this.#partitions.get(partition)!;
      part.rowsSinceCheckpoint += batch.commands.length;
      if (part.rowsSinceCheckpoint >= this.#checkpointRows) this.#checkpoint(part, batch);
      if (isEmpty(batch)) continue;
      outcome.journaled += batch.commands.length;
      part.journal.commit(batch);
      outcome.written.push(partition);
    }
    return outcome;
  }

  /**
   * Snapshots every show of the partition changed since its last snapshot, in this batch's
   * transaction, and deletes every journal row: all of them are then behind some snapshot.
   */
  #checkpoint(part: PartitionState, batch: BatchWrites): void {
    for (const show of part.dirty) this.#addSnapshot(show, batch);
    batch.pruneThrough = part.journal.lastSeq();
    part.rowsSinceCheckpoint = 0;
  }

  /** Makes what `process` committed in these partitions durable against power loss ('full'). */
  async sync(partitions: readonly number[]): Promise<void> {
    await Promise.all(partitions.map((p) => this.#partitions.get(p)!.journal.sync()));
  }

  #handle(request: ShardRequest, batch: BatchWrites, events: ShowEvent[], due: Set<LiveShow>): ShardResult {
    const { op, showId } = request;
    if (!this.#partitions.has(request.partition))
      return routingRefusal('WORKER_FAILED', `partition ${request.partition} is not owned by this shard`);
    if (op.kind === 'create') return this.#create(request, op, batch);
    const show = this.#shows.get(showId);
    if (!show) return routingRefusal('SHOW_NOT_FOUND', `no show ${showId}`);
    if (op.kind === 'command') return this.#command(show, op.command, batch, events, due);
    return read(show.state, op);
  }

  #create(request: ShardRequest, op: Extract<ShardOp, { kind: 'create' }>, batch: BatchWrites): ShardResult {
    const existing = this.#shows.get(request.showId);
    if (existing) {
      const isSame =
        existing.state.layoutKey === op.layoutKey &&
        existing.state.forbidSingleSeatGaps === op.forbidSingleSeatGaps;
      return isSame
        ? { ok: true }
        : routingRefusal('SHOW_EXISTS', `show ${request.showId} exists with another layout`);
    }
    if (request.showId.includes('.'))
      return { ok: false, code: 'INVALID_COMMAND', message: 'show ids contain no dot' };
    let layout: CompiledLayout;
    const layoutKey = this.#intern(op.layoutKey);
    try {
      layout = this.#compile(layoutKey);
    } catch (err) {
      return { ok: false, code: 'INVALID_COMMAND', message: (err as Error).message };
    }
    const state = createShowState(request.showId, layout, layoutKey, op.forbidSingleSeatGaps);
    this.#shows.set(request.showId, { state, partition: request.partition, lastSeq: 0, sinceSnapshot: 0 });
    batch.creates.push({ showId: request.showId, layoutKey, forbidSingleSeatGaps: op.forbidSingleSeatGaps });
    return { ok: true };
  }

  #command(
    show: LiveShow,
    command: ShowCommand,
    batch: BatchWrites,
    events: ShowEvent[],
    due: Set<LiveShow>,
  ): ShardResult {
    const { state } = show;
    const result = apply(state, command);
    if (isCheckingInvariants) {
      const problems = invariantViolations(state);
      if (problems.length > 0)
        throw new Error(`invariants broken in ${state.showId}: ${problems.join('; ')}`);
    }
    // A refused command changed nothing and is not journaled.
    if (!result.isChanged) return result.reply;
    const part = this.#partitions.get(show.partition)!;
    const seq = part.journal.takeSeq();
    batch.commands.push({ seq, showId: state.showId, command: JSON.stringify(command) });
    show.lastSeq = seq;
    part.dirty.add(show);
    if (++show.sinceSnapshot >= this.options.snapshotEvery) due.add(show);
    const changes: [number, number][] = result.changed.map((i) => [i, state.seats[i]!]);
    events.push({ showId: state.showId, version: state.version, changes });
    return result.reply;
  }

  #addSnapshot(show: LiveShow, batch: BatchWrites): void {
    if (show.sinceSnapshot === 0) return;
    batch.snapshots.push({ showId: show.state.showId, seq: show.lastSeq, state: encodeState(show.state) });
    show.sinceSnapshot = 0;
    this.#partitions.get(show.partition)!.dirty.delete(show);
  }

  /** Expire commands for every show whose earliest hold has lapsed; correctness never waits for this. */
  sweep(nowMs: number): BatchOutcome {
    const requests: ShardRequest[] = [];
    for (const show of this.#shows.values()) {
      if (show.state.nextExpiryMs > nowMs) continue;
      const command: ShowCommand = { type: 'expire', nowMs };
      requests.push({
        id: -1,
        partition: show.partition,
        showId: show.state.showId,
        op: { kind: 'command', command },
      });
    }
    return this.process(requests);
  }

  /** A checkpoint of every partition; at clean shutdown, so the next start replays nothing. */
  snapshotAll(): { snapshots: number; written: number[] } {
    let snapshots = 0;
    const written: number[] = [];
    for (const [partition, part] of this.#partitions) {
      const batch: BatchWrites = { creates: [], commands: [], snapshots: [] };
      this.#checkpoint(part, batch);
      snapshots += batch.snapshots.length;
      part.journal.commit(batch);
      written.push(partition);
    }
    return { snapshots, written };
  }

  /** The live state of a show (tests compare it with a recovered one). */
  stateOf(showId: string): ShowState | undefined {
    return this.#shows.get(showId)?.state;
  }

  close(): void {
    for (const part of this.#partitions.values()) part.journal.close();
    this.#partitions.clear();
  }
}

function read(state: ShowState, op: Exclude<ShardOp, { kind: 'command' | 'create' }>): ShardResult {
  switch (op.kind) {
    case 'getHold': {
      const hold = state.holds.get(op.holdId);
      return { ok: true, hold: hold && holdView(state, hold) };
    }
    case 'findHoldOf': {
      const index = state.layout.indexOf.get(op.seat);
      if (index === undefined) return { ok: true, holdId: undefined };
      for (const hold of state.holds.values())
        if (hold.ownerId === op.ownerId && hold.seats.includes(index)) return { ok: true, holdId: hold.id };
      return { ok: true, holdId: undefined };
    }
    case 'seatMap':
      return {
        ok: true,
        seatMap: {
          showId: state.showId,
          layoutKey: state.layoutKey,
          version: state.version,
          seats: state.seats.slice(),
        },
      };
    case 'check':
      return { ok: true, violations: invariantViolations(state) };
  }
}
