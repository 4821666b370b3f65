/**
 * @module shard-core
 * The shard without its thread: the show actors of some partitions, their journals, and the batch
 * step (apply every request in order, journal the accepted commands in one transaction per partition,
 * then hand back replies and events). The worker entry wraps it; tests drive it directly.
 */
import { type BatchWrites, PartitionJournal } from '../persistence/partition-journal.js';
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

export class ShardCore {
  readonly #shows = new Map<string, LiveShow>();
  readonly #journals = new Map<number, PartitionJournal>();
  /** Layout keys interned: 500,000 shows share a handful of layouts, and each string is kilobytes. */
  readonly #layoutKeys = new Map<string, string>();
  readonly #compile = layoutResolver();

  private constructor(private readonly options: ShardOptions) {}

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
    this.#journals.set(partition, journal);
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
      if (batch.creates.length + batch.commands.length + batch.snapshots.length === 0) continue;
      outcome.journaled += batch.commands.length;
      this.#journals.get(partition)!.commit(batch);
      outcome.written.push(partition);
    }
    return outcome;
  }

  /** Makes what `process` committed in these partitions durable against power loss ('full'). */
  async sync(partitions: readonly number[]): Promise<void> {
    await Promise.all(partitions.map((p) => this.#journals.get(p)!.sync()));
  }

  #handle(request: ShardRequest, batch: BatchWrites, events: ShowEvent[], due: Set<LiveShow>): ShardResult {
    const { op, showId } = request;
    if (!this.#journals.has(request.partition))
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
    const seq = this.#journals.get(show.partition)!.takeSeq();
    batch.commands.push({ seq, showId: state.showId, command: JSON.stringify(command) });
    show.lastSeq = seq;
    if (++show.sinceSnapshot >= this.options.snapshotEvery) due.add(show);
    const changes: [number, number][] = result.changed.map((i) => [i, state.seats[i]!]);
    events.push({ showId: state.showId, version: state.version, changes });
    return result.reply;
  }

  #addSnapshot(show: LiveShow, batch: BatchWrites): void {
    batch.snapshots.push({ showId: show.state.showId, seq: show.lastSeq, state: encodeState(show.state) });
    show.sinceSnapshot = 0;
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

  /** Snapshots every show changed since its last snapshot; at clean shutdown, so the next start replays nothing. */
  snapshotAll(): { snapshots: number; written: number[] } {
    const writes = new Map<number, BatchWrites>();
    let count = 0;
    for (const show of this.#shows.values()) {
      if (show.sinceSnapshot === 0) continue;
      let batch = writes.get(show.partition);
      if (!batch) {
        batch = { creates: [], commands: [], snapshots: [] };
        writes.set(show.partition, batch);
      }
      this.#addSnapshot(show, batch);
      count++;
    }
    for (const [partition, batch] of writes) this.#journals.get(partition)!.commit(batch);
    return { snapshots: count, written: [...writes.keys()] };
  }

  /** The live state of a show (tests compare it with a recovered one). */
  stateOf(showId: string): ShowState | undefined {
    return this.#shows.get(showId)?.state;
  }

  close(): void {
    for (const journal of this.#journals.values()) journal.close();
    this.#journals.clear();
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
