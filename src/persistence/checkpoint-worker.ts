/**
 * @module checkpoint-worker
 * The app database's checkpoints, on a thread of their own. A checkpoint copies WAL pages into the
 * database file and fsyncs both; run by the committing connection (SQLite's autocheckpoint) that is
 * tens of milliseconds of synchronous disk I/O on the HTTP thread every thousand pages. PASSIVE never
 * waits for the writer and never blocks it: pages it cannot copy yet are copied next time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointWorkerData {
  file: string;
  intervalMs: number;
}

export type CheckpointMessage = { type: 'stop' };
export type CheckpointReply = { type: 'checkpointed'; frames: number } | { type: 'stopped' };

const { file, intervalMs } = workerData as CheckpointWorkerData;
const db = new Database(file, { fileMustExist: true });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');

function checkpoint(): void {
  const [result] = db.pragma('wal_checkpoint(PASSIVE)') as [
    { busy: number; log: number; checkpointed: number },
  ];
  if (result && result.checkpointed > 0)
    parentPort!.postMessage({ type: 'checkpointed', frames: result.checkpointed } satisfies CheckpointReply);
}

const timer = setInterval(checkpoint, intervalMs);
parentPort!.on('message', (message: CheckpointMessage) => {
  if (message.type !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort!.postMessage({ type: 'stopped' } satisfies CheckpointReply);
  parentPort!.close();
});
