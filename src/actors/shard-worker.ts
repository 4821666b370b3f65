/**
 * @module shard-worker
 * The worker-thread entry of a shard. Its mailbox is every message that arrived since the last turn:
 * they are applied as one batch, journaled (group commit), and only then answered. A journal that
 * cannot commit ends the thread: memory is ahead of disk, and the router restarts the shard from disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ShardCore } from './shard-core.js';
import type { FromShard, ShardOptions, ShardRequest, ToShard } from './shard-protocol.js';

/** The most requests applied in one batch; the rest wait for the next turn. */
export const MAX_BATCH_REQUESTS = 8192;

const port = parentPort!;
const { core, recovery } = ShardCore.open(workerData as ShardOptions);
const mailbox: ShardRequest[] = [];
let isScheduled = false;
let isStopping = false;

function post(message: FromShard): void {
  port.postMessage(message);
}

function drain(): void {
  isScheduled = false;
  while (mailbox.length > 0) {
    const batch =
      mailbox.length <= MAX_BATCH_REQUESTS ? mailbox.splice(0) : mailbox.splice(0, MAX_BATCH_REQUESTS);
    const started = performance.now();
    const outcome = core.process(batch);
    post({ type: 'replies', ...outcome, commitMs: performance.now() - started });
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
      const outcome = core.sweep(message.nowMs);
      if (outcome.events.length > 0) post({ type: 'replies', ...outcome, commitMs: 0 });
      return;
    }
    case 'stop': {
      isStopping = true;
      drain();
      const snapshots = core.snapshotAll();
      core.close();
      post({ type: 'stopped', snapshots });
      port.close();
      return;
    }
  }
});

post({ type: 'ready', recovery });
