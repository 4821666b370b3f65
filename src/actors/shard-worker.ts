/**
 * @module shard-worker
 * The worker-thread entry of a shard. Its mailbox is every message that arrived since the last turn:
 * they are applied as one batch, appended to the commit log as one row (group commit), and only then
 * answered. A log that cannot commit ends the thread: memory is ahead of disk, and the router restarts
 * the shard from disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchOutcome, ShardCore } from './shard-core.js';
import {
  decodeRequests,
  encodeReplies,
  type FromShard,
  type ShardOptions,
  type ShardRequest,
  type ToShard,
} from './shard-protocol.js';

/** The most requests applied in one batch; the rest wait for the next turn. */
export const MAX_BATCH_REQUESTS = 8192;

const port = parentPort!;
// Async for the PostgreSQL store (it is read at open); a failure here ends the thread before 'ready'.
const { core, recovery } = await ShardCore.open(workerData as ShardOptions);
const mailbox: ShardRequest[] = [];
let isScheduled = false;
let isStopping = false;

function post(message: FromShard): void {
  port.postMessage(message);
}

/** A journal that cannot be made durable ends the thread: memory is ahead of disk. */
function die(err: unknown): never {
  console.error('shard journal failed', err);
  process.exit(1);
}

function reply(outcome: BatchOutcome, started: number): void {
  // Replies leave in batch order, each after its own batch is durable: `sync` resolves after every
  // earlier batch's flushes too. The next batch is applied while this one's flushes run (pipelining);
  // ordering keeps a reply from revealing state that an earlier, still-flushing batch made.
  core.sync(outcome).then(() => {
    const { replies, events, journaled } = outcome;
    const commitMs = performance.now() - started;
    for (const { message, transfer } of encodeReplies({ replies, events }, { journaled, commitMs }))
      port.postMessage(message, transfer);
  }, die);
}

function drain(): void {
  isScheduled = false;
  while (mailbox.length > 0) {
    const batch =
      mailbox.length <= MAX_BATCH_REQUESTS ? mailbox.splice(0) : mailbox.splice(0, MAX_BATCH_REQUESTS);
    const started = performance.now();
    reply(core.process(batch), started);
  }
}

function schedule(): void {
  if (isScheduled) return;
  isScheduled = true;
  // setImmediate lets every message already queued on the port arrive first: one batch, one commit.
  setImmediate(drain);
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
      const started = performance.now();
      const outcome = core.sweep(message.nowMs);
      if (outcome.journaled + outcome.written.length > 0 || outcome.pruneThrough !== undefined)
        reply(outcome, started);
      return;
    }
    case 'stop': {
      isStopping = true;
      drain();
      const { snapshots, outcome } = core.checkpointNow();
      core
        .sync(outcome)
        .then(() => core.close())
        .then(() => {
          post({ type: 'stopped', snapshots });
          port.close();
        }, die);
      return;
    }
  }
});

post({ type: 'ready', recovery });
