/**
 * @module shard-worker
 * The worker-thread entry of a shard. Its mailbox is every message that arrived since the last turn:
 * they are applied as one batch, appended to the commit log as one row (group commit), and only then
 * answered. A log that cannot commit ends the thread: memory is ahead of disk, and the router restarts
 * the shard from disk.
 *
 * A single node's shard is one `ShardCore` for all its partitions, fixed at start. A cluster node's
 * shard (`ShardOptions.cluster`) starts empty and is given partitions one at a time (`acquire`), each a
 * core of its own with its own commit log and lease fence, and hands them back (`release`, `abandon`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { commitLogFlushes } from '../persistence/commit-log.js';
import { partitionFlushes } from '../persistence/partition-journal.js';
import { endSharedSeatPools, openSharedSeatPool } from '../persistence/pg-seat-store.js';
import { newFlushTally } from '../persistence/wal-flush.js';
import { type BatchOutcome, ShardCore } from './shard-core.js';
import {
  decodeRequests,
  encodeReplies,
  FlushCounters,
  type FromShard,
  partitionLogName,
  type RecoveryStats,
  type RoutingRefusal,
  type ShardOptions,
  type ShardRequest,
  type ShardResult,
  type ShowEvent,
  type ToShard,
} from './shard-protocol.js';

/** The most requests applied in one batch; the rest wait for the next turn. */
export const MAX_BATCH_REQUESTS = 8192;

const port = parentPort!;
const options = workerData as ShardOptions;
const cluster = options.cluster;
/** Each served partition's core: one core for all of them on a single node, one each in a cluster. */
const cores = new Map<number, ShardCore>();
/** Partitions being recovered, with the requests that arrived meanwhile (answered once it serves). */
const loading = new Map<number, ShardRequest[]>();
/** Cores dropped because their lease is gone: a write of theirs that fails is no longer fatal. */
const abandoned = new WeakSet<ShardCore>();
const mailbox: ShardRequest[] = [];
let isScheduled = false;
let isStopping = false;
let recovery: RecoveryStats = { partitions: 0, shows: 0, replayed: 0, ms: 0 };
const flushCounters = options.flushCounters && new FlushCounters(options.flushCounters.buffer);
/** This thread's flush tallies as last added to `flushCounters` (commit log, partitions). */
const reportedFlushes = [newFlushTally(), newFlushTally()];

if (cluster) {
  if (options.seatStore?.kind !== 'postgres')
    throw new Error('a cluster shard needs the PostgreSQL seat store');
  await openSharedSeatPool(options.seatStore, `${cluster.node}:${options.log}`);
} else {
  // Async for the PostgreSQL store (it is read at open); a failure here ends the thread before 'ready'.
  const opened = await ShardCore.open(options);
  recovery = opened.recovery;
  for (const partition of options.partitions) cores.set(partition, opened.core);
}

function post(message: FromShard): void {
  port.postMessage(message);
}

/** A journal that cannot be made durable ends the thread: memory is ahead of disk. */
function die(err: unknown): never {
  console.error('shard journal failed', err);
  process.exit(1);
}

function refusal(code: RoutingRefusal['code'], message: string): RoutingRefusal {
  return { ok: false, code, message };
}

/**
 * Replies and events ready to leave, sent together at the end of the turn: a cluster node's batch
 * spans many partitions (a core each) whose writes commit in one statement, and one message for all of
 * them costs the main thread far less than one per partition. Order is kept: a core's replies join the
 * outgoing list in its batch order.
 */
const outgoing = {
  replies: [] as [number, ShardResult][],
  events: [] as ShowEvent[],
  journaled: 0,
  commitMs: 0,
};
let isOutgoingScheduled = false;

function postReplies(replies: [number, ShardResult][], outcome?: BatchOutcome, commitMs = 0): void {
  for (const reply of replies) outgoing.replies.push(reply);
  if (outcome) for (const event of outcome.events) outgoing.events.push(event);
  outgoing.journaled += outcome?.journaled ?? 0;
  outgoing.commitMs = Math.max(outgoing.commitMs, commitMs);
  if (isOutgoingScheduled) return;
  isOutgoingScheduled = true;
  setImmediate(flushOutgoing);
}

function flushOutgoing(): void {
  isOutgoingScheduled = false;
  const { replies, events, journaled, commitMs } = outgoing;
  outgoing.replies = [];
  outgoing.events = [];
  outgoing.journaled = 0;
  outgoing.commitMs = 0;
  for (const { message, transfer } of encodeReplies({ replies, events }, { journaled, commitMs }))
    port.postMessage(message, transfer);
}

function reply(core: ShardCore, outcome: BatchOutcome, started: number): void {
  // Replies leave in batch order, each after its own batch is durable: `sync` resolves after every
  // earlier batch's flushes too. The next batch is applied while this one's flushes run (pipelining);
  // ordering keeps a reply from revealing state that an earlier, still-flushing batch made.
  core.sync(outcome).then(
    () => {
      // Every flush of this batch has ended: the main thread sees it by the time the replies arrive.
      flushCounters?.add(options.flushCounters!.slot, commitLogFlushes, partitionFlushes, reportedFlushes);
      postReplies(outcome.replies, outcome, performance.now() - started);
    },
    (err) => {
      if (!abandoned.has(core)) die(err);
      // The lease went while these were in flight: whether they committed is not known here.
      const unknown = refusal('WORKER_FAILED', 'the partition moved to another node; check and retry');
      postReplies(outcome.replies.map(([id]) => [id, unknown]));
    },
  );
}

/** The distinct cores, each once (a single node's one core serves every partition). */
function distinctCores(): Set<ShardCore> {
  return new Set(cores.values());
}

function drain(): void {
  isScheduled = false;
  while (mailbox.length > 0) {
    const batch =
      mailbox.length <= MAX_BATCH_REQUESTS ? mailbox.splice(0) : mailbox.splice(0, MAX_BATCH_REQUESTS);
    const started = performance.now();
    const byCore = new Map<ShardCore, ShardRequest[]>();
    const notServed: [number, ShardResult][] = [];
    for (const request of batch) {
      const waiting = loading.get(request.partition);
      if (waiting) {
        waiting.push(request);
        continue;
      }
      const core = cores.get(request.partition);
      if (!core) {
        if (request.id >= 0)
          notServed.push([
            request.id,
            refusal('NOT_OWNER', `partition ${request.partition} is not served by this node`),
          ]);
        continue;
      }
      const requests = byCore.get(core);
      if (requests) requests.push(request);
      else byCore.set(core, [request]);
    }
    for (const [core, requests] of byCore) reply(core, core.process(requests), started);
    if (notServed.length > 0) postReplies(notServed);
  }
}

function schedule(): void {
  if (isScheduled) return;
  isScheduled = true;
  // setImmediate lets every message already queued on the port arrive first: one batch, one commit.
  setImmediate(drain);
}

/** The lease epoch each served or loading partition was acquired at (cluster only). */
const epochs = new Map<number, number>();

/**
 * Recovers a partition this node's lease now names (cluster only) and serves it. Acquired again at
 * another epoch (its lease was lost and taken back meanwhile), the old copy is dropped and the
 * partition read again: the old one is fenced out and could write nothing.
 */
function acquire(partition: number, epoch: number): void {
  if (!cluster) return;
  if (epochs.get(partition) === epoch && (cores.has(partition) || loading.has(partition))) {
    if (cores.has(partition))
      post({ type: 'acquired', partition, recovery: { partitions: 0, shows: 0, replayed: 0, ms: 0 } });
    return;
  }
  if (cores.has(partition)) abandon(partition);
  epochs.set(partition, epoch);
  const waitingBefore = loading.get(partition);
  loading.set(partition, waitingBefore ?? []);
  ShardCore.open({
    ...options,
    partitions: [partition],
    log: partitionLogName(partition),
    replayLogs: undefined,
    fence: { node: cluster.node, partition, epoch },
  }).then(
    ({ core, recovery }) => {
      // Dropped, or acquired at a newer epoch, while it was read: this copy is not the one to serve.
      if (epochs.get(partition) !== epoch || !loading.has(partition)) {
        abandoned.add(core);
        core.close().catch(() => undefined);
        return;
      }
      const waiting = loading.get(partition) ?? [];
      loading.delete(partition);
      cores.set(partition, core);
      // They arrived before anything still in the mailbox, so they go first.
      mailbox.unshift(...waiting);
      schedule();
      post({ type: 'acquired', partition, recovery });
    },
    (err: unknown) => {
      if (epochs.get(partition) !== epoch || !loading.has(partition)) return;
      const waiting = loading.get(partition) ?? [];
      loading.delete(partition);
      epochs.delete(partition);
      const notReady = refusal('NOT_READY', `partition ${partition} could not be recovered; try again`);
      postReplies(waiting.filter((r) => r.id >= 0).map((r) => [r.id, notReady]));
      post({ type: 'acquireFailed', partition, message: (err as Error).message });
    },
  );
}

/** Requests that waited for a partition no longer coming: their node asks the new owner. */
function notServed(requests: ShardRequest[], partition: number): void {
  const answer = refusal('NOT_OWNER', `partition ${partition} is not served by this node`);
  postReplies(requests.filter((r) => r.id >= 0).map((r) => [r.id, answer]));
}

/** Hands a partition off: what is queued for it is applied, its shows snapshotted, then it closes. */
function release(partition: number): void {
  drain();
  const waiting = loading.get(partition);
  if (waiting) {
    // Still being read: nothing was served, so there is nothing to snapshot.
    loading.delete(partition);
    epochs.delete(partition);
    notServed(waiting, partition);
  }
  const core = cores.get(partition);
  if (!core) {
    post({ type: 'released', partition, snapshots: 0 });
    return;
  }
  cores.delete(partition);
  epochs.delete(partition);
  const { snapshots, outcome } = core.checkpointNow();
  core
    .sync(outcome)
    .then(() => core.close())
    .then(() => post({ type: 'released', partition, snapshots }), die);
}

/** Drops a partition whose lease is gone, writing nothing more (its fenced writes fail anyway). */
function abandon(partition: number): void {
  const waiting = loading.get(partition);
  if (waiting) {
    loading.delete(partition);
    notServed(waiting, partition);
  }
  epochs.delete(partition);
  const core = cores.get(partition);
  cores.delete(partition);
  if (!core) return;
  abandoned.add(core);
  core.close().catch(() => undefined);
}

port.on('message', (message: ToShard) => {
  switch (message.type) {
    case 'requests':
      for (const request of decodeRequests(message)) mailbox.push(request);
      schedule();
      return;
    case 'sweep': {
      if (isStopping) return;
      drain();
      for (const core of distinctCores()) {
        const started = performance.now();
        const outcome = core.sweep(message.nowMs);
        if (outcome.journaled + outcome.written.length > 0 || outcome.pruneThrough !== undefined)
          reply(core, outcome, started);
      }
      return;
    }
    case 'acquire':
      acquire(message.partition, message.epoch);
      return;
    case 'release':
      release(message.partition);
      return;
    case 'abandon':
      abandon(message.partition);
      return;
    case 'stop': {
      isStopping = true;
      drain();
      let snapshots = 0;
      const closing = [...distinctCores()].map((core) => {
        const checkpoint = core.checkpointNow();
        snapshots += checkpoint.snapshots;
        return core.sync(checkpoint.outcome).then(() => core.close());
      });
      cores.clear();
      Promise.all(closing)
        .then(() => endSharedSeatPools())
        .then(() => {
          flushOutgoing();
          post({ type: 'stopped', snapshots });
          port.close();
        }, die);
      return;
    }
  }
});

post({ type: 'ready', recovery });
