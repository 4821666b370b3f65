/**
 * @module shard-worker
 * The worker-thread entry of a shard. Its mailbox is every message that arrived since the last turn:
 * they are applied as one batch, journaled (group commit), and only then answered. A journal that
 * cannot commit ends the thread: memory is ahead of disk, and the router restarts the shard from disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchOutcome, ShardCore } from './shard-core.js';
import type { FromShard, ShardOptions, ShardRequest, ToShard } from './shard-protocol.js';

/** The most requests applied in one batch; the rest wait for the next turn. */
export const MAX_BATCH_REQUESTS = 8192;

const port = parentPort!;
const { core, recovery } = ShardCore.open(workerData as ShardOptions);
const mailbox: ShardRequest[] = [];
let isScheduled = false;
let isStopping = false;
/**
 * Replies leave in batch order, each after its own batch is durable. The next batch is applied while
 * the previous one's fsyncs run (pipelining); ordering keeps a reply from revealing state that an
 * earlier, still-syncing batch made.
 */
let replied: Promise<void> = Promise.resolve();

function post(message: FromShard): void {
  port.postMessage(message);
}

/** A journal that cannot be made durable ends the thread: memory is ahead of disk. */
function die(err: unknown): never {
  console.error('shard journal failed', err);
  process.exit(1);
}

function reply(outcome: BatchOutcome, started: number): void {
  const durable = core.sync(outcome.written);
  replied = Promise.all([replied, durable]).then(() => {
    const { replies, events, journaled } = outcome;
    post({ type: 'replies', replies, events, journaled, commitMs: performance.now() - started });
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
      for (const request of message.requests) mailbox.push(request);
      schedule();
      return;
    case 'sweep': {
      if (isStopping) return;
      drain();
      const started = performance.now();
      const outcome = core.sweep(message.nowMs);
      if (outcome.written.length > 0) reply(outcome, started);
      return;
    }
    case 'stop': {
      isStopping = true;
      drain();
      const { snapshots, written } = core.snapshotAll();
      Promise.all([replied, core.sync(written)]).then(() => {
        core.close();
        post({ type: 'stopped', snapshots });
        port.close();
      }, die);
      return;
    }
  }
});

post({ type: 'ready', recovery });
