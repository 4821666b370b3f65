/**
 * @module shard-core
 * The shard without its thread: the show actors of some partitions, their files, and the batch step
 * (apply every request in order, append the accepted commands to the commit log as one row, then hand
 * back replies and events). The worker entry wraps it; tests drive it directly.
 *
 * Durable state: each partition's data (a SQLite file, or rows in PostgreSQL: `seat-store.ts`) holds
 * its shows and a snapshot per show; the shard's commit log holds every accepted command since the
 * last checkpoint. A checkpoint snapshots every show changed since its last snapshot into the
 * partition data and, once that is durable, deletes the log rows behind them. Recovery: snapshots,
 * then the log's later records (by per-partition sequence).
 */
import type { BatchWrites } from '../persistence/partition-journal.js';
import {
  dropSeatLogs,
  openSeatStorage,
  type SeatLog,
  type SeatPartitionStore,
  type SeatStorage,
  seatLogNames,
} from '../persistence/seat-store.js';
import type { CompiledLayout } from './seat-layout.js';
import type {
  RecoveryStats,
  RoutingRefusal,
  ShardOp,
  ShardOptions,
  ShardRequest,
  ShardResult,
  ShowEvent,
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
  /** Commands this batch appended to the commit log. */
  journaled: number;
  /** Partition files this batch wrote to (creations, snapshots): `sync` flushes them with the log. */
  written: number[];
  /** Set by a checkpoint: the log rows up to this batch id go once the partition files are flushed. */
  pruneThrough?: number;
}

/** When set (tests do), every applied command is followed by a full invariant check. */
const isCheckingInvariants = process.env.BOXOFFICE_ASSERT_INVARIANTS === '1';

function routingRefusal(code: RoutingRefusal['code'], message: string): RoutingRefusal {
  return { ok: false, code, message };
}

/** Per partition: its file, its last sequence number, and the shows changed since their snapshot. */
interface PartitionState {
  readonly journal: SeatPartitionStore;
  readonly dirty: Set<LiveShow>;
  lastSeq: number;
  /** The file still holds journal rows of an earlier version (cleared by the next checkpoint). */
  hasOldJournal: boolean;
}

export class ShardCore {
  readonly #shows = new Map<string, LiveShow>();
  readonly #partitions = new Map<number, PartitionState>();
  readonly #storage: SeatStorage;
  readonly #log: SeatLog;
  readonly #checkpointRecords: number;
  #recordsSinceCheckpoint = 0;
  /** Every flush started so far, in order: a prune waits for all earlier flushes, not just its own. */
  #flushed: Promise<void> = Promise.resolve();
  /** Layout keys interned: 500,000 shows share a handful of layouts, and each string is kilobytes. */
  readonly #layoutKeys = new Map<string, string>();
  readonly #compile = layoutResolver();

  private constructor(
    private readonly options: ShardOptions,
    storage: SeatStorage,
  ) {
    this.#checkpointRecords = options.checkpointRecords ?? 200 * options.snapshotEvery;
    this.#storage = storage;
    this.#log = storage.logs.get(options.log)!;
  }

  /**
   * Opens the partitions and the commit log in the store the options name (SQLite files by default)
   * and recovers every show: snapshot, then replay. Async for PostgreSQL, which is read here whole.
   */
  static async open(options: ShardOptions): Promise<{ core: ShardCore; recovery: RecoveryStats }> {
    const started = performance.now();
    const replayLogs = (options.replayLogs ?? []).filter((name) => name !== options.log);
    const storage = await openSeatStorage({
      dataDir: options.dataDir,
      journalSync: options.journalSync,
      partitions: options.partitions,
      logs: [options.log, ...replayLogs],
      seatStore: options.seatStore,
      fence: options.fence,
    });
    const core = new ShardCore(options, storage);
    let replayed = 0;
    try {
      for (const partition of options.partitions) replayed += core.#recoverPartition(partition);
      for (const name of replayLogs) replayed += core.#replayLog(storage.logs.get(name)!);
      replayed += core.#replayLog(core.#log);
    } catch (error) {
      await storage.close();
      throw error;
    }
    const ms = Math.round(performance.now() - started);
    return {
      core,
      recovery: { partitions: options.partitions.length, shows: core.#shows.size, replayed, ms },
    };
  }

  #recoverPartition(partition: number): number {
    const journal = this.#storage.partitions.get(partition)!;
    const part: PartitionState = {
      journal,
      dirty: new Set(),
      lastSeq: journal.lastSeq(),
      hasOldJournal: false,
    };
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
      this.#replay(show, part, row.seq, JSON.parse(row.command) as ShowCommand);
      part.hasOldJournal = true;
      replayed++;
    }
    return replayed;
  }

  /** Applies one recorded command again; only commands that changed state were recorded. */
  #replay(show: LiveShow, part: PartitionState, seq: number, command: ShowCommand): void {
    if (!apply(show.state, command).isChanged)
      throw new Error(`replay of seq ${seq} (${show.state.showId}) changed nothing`);
    show.lastSeq = seq;
    show.sinceSnapshot++;
    part.dirty.add(show);
    this.#recordsSinceCheckpoint++;
  }

  /**
   * Replays a commit log's records past each show's snapshot. A record of a show the partition does
   * not know was never acknowledged (its creation was not yet durable), and is skipped; a show created
   * later starts after every sequence its partition had used, so such a record never applies to it.
   */
  #replayLog(log: SeatLog): number {
    let replayed = 0;
    for (const record of log.records()) {
      const part = this.#partitions.get(record.partition);
      if (!part)
        throw new Error(`commit log ${log.file} holds partition ${record.partition}, not owned here`);
      part.lastSeq = Math.max(part.lastSeq, record.seq);
      const show = this.#shows.get(record.showId);
      if (!show || show.partition !== record.partition || record.seq <= show.lastSeq) continue;
      this.#replay(show, part, record.seq, record.command as ShowCommand);
      replayed++;
    }
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

  /**
   * Applies a batch in order and writes what changed: partition files first (creations, due
   * snapshots), then one commit-log row with every accepted command. Nothing is told before `sync`.
   */
  process(requests: readonly ShardRequest[]): BatchOutcome {
    const writes = new Map<number, BatchWrites>();
    const due = new Set<LiveShow>();
    const outcome: BatchOutcome = { replies: [], events: [], journaled: 0, written: [] };
    for (const request of requests) {
      const result = this.#handle(request, writes, outcome.events, due);
      if (request.id >= 0) outcome.replies.push([request.id, result]);
    }
    for (const show of due) this.#addSnapshot(show, writes);
    outcome.journaled = this.#log.pendingRecords;
    this.#recordsSinceCheckpoint += outcome.journaled;
    const isCheckpoint = this.#recordsSinceCheckpoint >= this.#checkpointRecords;
    if (isCheckpoint) this.#checkpoint(writes);
    this.#commitPartitions(writes, outcome);
    // A record never reaches the log before its show's creation reached the partition file.
    this.#log.commit();
    if (isCheckpoint) outcome.pruneThrough = this.#log.lastBatchId;
    return outcome;
  }

  #commitPartitions(writes: Map<number, BatchWrites>, outcome: BatchOutcome): void {
    this.#storage.commitPartitions(writes, outcome.written);
  }

  /**
   * Snapshots every show changed since its last snapshot, in this batch's partition transactions.
   * Once those are flushed, every commit-log row so far is behind some snapshot.
   */
  #checkpoint(writes: Map<number, BatchWrites>): void {
    for (const [partition, part] of this.#partitions) {
      for (const show of part.dirty) this.#addSnapshot(show, writes);
      if (part.hasOldJournal) writesOf(writes, partition).isClearingJournal = true;
      part.hasOldJournal = false;
    }
    this.#recordsSinceCheckpoint = 0;
  }

  /**
   * Resolves once what `process` wrote is durable against power loss ('full'): the commit log and the
   * partition files it wrote, after every earlier batch's. Then a checkpoint's log rows are deleted.
   */
  sync(outcome: BatchOutcome): Promise<void> {
    const flushes: Promise<void>[] = outcome.written.map((p) => this.#partitions.get(p)!.journal.sync());
    if (outcome.journaled > 0) flushes.push(this.#log.sync());
    const { pruneThrough } = outcome;
    this.#flushed = Promise.all([this.#flushed, ...flushes]).then(() => {
      if (pruneThrough !== undefined) this.#log.pruneThrough(pruneThrough);
    });
    return this.#flushed;
  }

  #handle(
    request: ShardRequest,
    writes: Map<number, BatchWrites>,
    events: ShowEvent[],
    due: Set<LiveShow>,
  ): ShardResult {
    const { op, showId } = request;
    if (!this.#partitions.has(request.partition))
      return routingRefusal('WORKER_FAILED', `partition ${request.partition} is not owned by this shard`);
    if (op.kind === 'create') return this.#create(request, op, writes);
    const show = this.#shows.get(showId);
    if (!show) return routingRefusal('SHOW_NOT_FOUND', `no show ${showId}`);
    if (op.kind === 'command') return this.#command(show, op.command, events, due);
    return read(show.state, op);
  }

  #create(
    request: ShardRequest,
    op: Extract<ShardOp, { kind: 'create' }>,
    writes: Map<number, BatchWrites>,
  ): ShardResult {
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
    // The show's history starts after every sequence its partition has used, and its row says so: a
    // log record left by an earlier, unacknowledged show of the same id never replays onto this one.
    const createdSeq = this.#partitions.get(request.partition)!.lastSeq;
    this.#shows.set(request.showId, {
      state,
      partition: request.partition,
      lastSeq: createdSeq,
      sinceSnapshot: 0,
    });
    writesOf(writes, request.partition).creates.push({
      showId: request.showId,
      layoutKey,
      forbidSingleSeatGaps: op.forbidSingleSeatGaps,
      createdSeq,
    });
    return { ok: true };
  }

  #command(show: LiveShow, command: ShowCommand, events: ShowEvent[], due: Set<LiveShow>): ShardResult {
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
    const seq = ++part.lastSeq;
    this.#log.add(show.partition, seq, state.showId, JSON.stringify(command));
    show.lastSeq = seq;
    part.dirty.add(show);
    if (++show.sinceSnapshot >= this.options.snapshotEvery) due.add(show);
    const changes: [number, number][] = result.changed.map((i) => [i, state.seats[i]!]);
    events.push({ showId: state.showId, version: state.version, changes });
    return result.reply;
  }

  #addSnapshot(show: LiveShow, writes: Map<number, BatchWrites>): void {
    if (show.sinceSnapshot === 0) return;
    writesOf(writes, show.partition).snapshots.push({
      showId: show.state.showId,
      seq: show.lastSeq,
      state: encodeState(show.state),
    });
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

  /**
   * A checkpoint now (at clean shutdown, so the next start replays nothing); `sync` the outcome to
   * flush it and delete the log rows behind it.
   */
  checkpointNow(): { snapshots: number; outcome: BatchOutcome } {
    const writes = new Map<number, BatchWrites>();
    this.#checkpoint(writes);
    const outcome: BatchOutcome = { replies: [], events: [], journaled: 0, written: [] };
    this.#commitPartitions(writes, outcome);
    outcome.pruneThrough = this.#log.lastBatchId;
    let snapshots = 0;
    for (const batch of writes.values()) snapshots += batch.snapshots.length;
    return { snapshots, outcome };
  }

  /** Commit-log records not yet behind a checkpoint (tests). */
  logRecords(): number {
    return this.#log.recordCount();
  }

  /** The live state of a show (tests compare it with a recovered one). */
  stateOf(showId: string): ShowState | undefined {
    return this.#shows.get(showId)?.state;
  }

  /** Closes the store after the writes already sent (synchronous underneath for SQLite). */
  close(): Promise<void> {
    this.#partitions.clear();
    return this.#storage.close();
  }
}

function writesOf(writes: Map<number, BatchWrites>, partition: number): BatchWrites {
  let batch = writes.get(partition);
  if (!batch) {
    batch = { creates: [], snapshots: [] };
    writes.set(partition, batch);
  }
  return batch;
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

/**
 * Folds every commit log of the store into the partition data and deletes the logs. Which partitions a
 * log holds depends on the worker count, so the router does this before starting workers whenever that
 * count changed. Idempotent: a fold cut short is finished by the next one.
 */
export async function foldCommitLogs(
  options: Omit<ShardOptions, 'log' | 'replayLogs'>,
): Promise<{ logs: number; replayed: number }> {
  const names = await seatLogNames(options.dataDir, options.seatStore);
  if (names.length === 0) return { logs: 0, replayed: 0 };
  const { core, recovery } = await ShardCore.open({
    ...options,
    log: FOLD_LOG,
    replayLogs: names.filter((name) => name !== FOLD_LOG),
  });
  try {
    await core.sync(core.checkpointNow().outcome);
  } finally {
    await core.close();
  }
  // Durably gone before the caller records the new worker count: old logs coming back after power
  // loss would hold partitions their new workers do not own.
  await dropSeatLogs(options.dataDir, [...new Set([...names, FOLD_LOG])], options.seatStore);
  return { logs: names.length, replayed: recovery.replayed };
}

/** The log a fold writes to (nothing, unless it is cut short). */
const FOLD_LOG = 'fold';
