/**
 * @module checkpointer
 * Starts the app database's checkpoint thread (`checkpoint-worker.ts`) and turns the committing
 * connection's own autocheckpoint off while it runs. Should the thread die, autocheckpoint comes back
 * on, so the WAL never grows without bound: slower commits, never an unbounded file.
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Logger } from '../logger.js';
import { workerEntry } from '../worker-entry.js';
import type { CheckpointReply, CheckpointWorkerData } from './checkpoint-worker.js';

/** How often the thread checkpoints; an idle checkpoint costs a few microseconds. */
export const CHECKPOINT_INTERVAL_MS = 1000;
/** SQLite's default: checkpoint on the committing connection every this many WAL pages. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

export interface Checkpointer {
  /** Frames copied into the database file so far. */
  framesCheckpointed(): number;
  /** A last checkpoint, then the thread ends. */
  stop(): Promise<void>;
}

export function startCheckpointer(
  db: Database.Database,
  logger: Logger,
  intervalMs = CHECKPOINT_INTERVAL_MS,
): Checkpointer {
  const { filename, isEval } = workerEntry(import.meta.url, './checkpoint-worker');
  const worker = new Worker(filename, {
    eval: isEval,
    name: 'app-db-checkpoint',
    workerData: { file: db.name, intervalMs } satisfies CheckpointWorkerData,
  });
  worker.unref();
  db.pragma('wal_autocheckpoint = 0');
  let frames = 0;
  let isStopping = false;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  worker.on('message', (reply: CheckpointReply) => {
    if (reply.type === 'checkpointed') frames += reply.frames;
  });
  worker.on('error', (err) => logger.error({ err }, 'app database checkpoint thread failed'));
  worker.on('exit', (code) => {
    resolveStopped();
    if (isStopping || !db.open) return;
    logger.error({ code }, 'app database checkpoint thread exited: checkpointing on the main thread');
    db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
  });
  return {
    framesCheckpointed: () => frames,
    stop() {
      if (!isStopping) {
        isStopping = true;
        // Unref'd while it runs, so it never holds a process open by itself; but while stopping, the
        // process must wait for it: with the server and the shards already closed, nothing else keeps
        // the event loop alive, and Node would exit (with code 0) before the last checkpoint finished.
        worker.ref();
        worker.postMessage({ type: 'stop' });
      }
      return stopped;
    },
  };
}
