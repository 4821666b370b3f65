/**
 * @module bench/peers/durable-floor
 * The floor of a durable hold: the least any service of this design must do per hold or release, with
 * nothing else. A bare Hono app on @hono/node-server (as the ceiling) hands each request to the seats'
 * owner (a Set), which applies the batch that arrived in one turn, appends it to a SQLite WAL as one row
 * and `fdatasync`s the WAL on libuv's pool before answering (group commit, as the service's commit log
 * with JOURNAL_SYNC=full). No token check, no validation, no metrics, no logging.
 *
 * OWNER=thread runs the owner in a worker thread, as the service runs its shards; OWNER=inline runs the
 * very same code on the HTTP thread (messages still JSON text), so the two differ only by the thread.
 * Run in the same turns as the service and the ceiling (scenario 2), they tell how much of the gap to
 * the ceiling is the design's own cost (a disk flush per batch; a thread hop) on this machine, and how
 * much is the service's. Routes: `POST /api/shows/:id/holds {seats: [one]}` → 201 with a hold body of
 * HOLD_BYTES (409 when taken), `DELETE /api/holds/:id` → 204 (404 when not held), `GET /healthz`.
 * Env: PORT, DATA_DIR, HOLD_BYTES, OWNER.
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const port = Number(process.env.PORT);
const dataDir = process.env.DATA_DIR ?? '.';
const holdBytes = Math.max(40, Number(process.env.HOLD_BYTES ?? '196'));
const isInline = process.env.OWNER === 'inline';

/**
 * The seat owner, as plain JavaScript so it runs in a worker under tsx and compiled alike, or inline.
 * Messages are JSON arrays of `[id, 'h' | 'r', key]`; replies `[id, accepted]` after the batch is on disk.
 */
const OWNER = `
const fs = require('node:fs');
const Database = require('better-sqlite3');
const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS log (batch INTEGER PRIMARY KEY, records TEXT NOT NULL)');
const append = db.prepare('INSERT INTO log (records) VALUES (?)');
const held = new Set();
let wal;
parentPort.on('message', (text) => {
  const requests = JSON.parse(text);
  const replies = [];
  const accepted = [];
  for (const [id, op, key] of requests) {
    const ok = op === 'h' ? !held.has(key) && Boolean(held.add(key)) : held.delete(key);
    replies.push([id, ok]);
    if (ok) accepted.push([op, key]);
  }
  if (accepted.length > 0) append.run(JSON.stringify(accepted));
  wal ??= fs.openSync(workerData.file + '-wal', 'r');
  fs.fdatasync(wal, (err) => {
    if (err) throw err;
    parentPort.postMessage(JSON.stringify(replies));
  });
});
`;

interface Port {
  on(event: 'message', listener: (text: string) => void): void;
  postMessage(text: string): void;
}

/** The owner on this thread: the same code, its port a pair of direct calls. */
function inlineOwner(workerData: { file: string }): Port {
  let toOwner: (text: string) => void = () => {};
  let fromOwner: (text: string) => void = () => {};
  const ownerSide: Port = {
    on: (_event, listener) => {
      toOwner = listener;
    },
    postMessage: (text) => fromOwner(text),
  };
  new Function('require', 'parentPort', 'workerData', OWNER)(
    createRequire(import.meta.url),
    ownerSide,
    workerData,
  );
  return {
    on: (_event, listener) => {
      fromOwner = listener;
    },
    postMessage: (text) => toOwner(text),
  };
}

const workerData = { file: path.join(dataDir, 'floor.db') };
const worker: Port = isInline
  ? inlineOwner(workerData)
  : new Worker(`const { parentPort, workerData } = require('node:worker_threads');\n${OWNER}`, {
      eval: true,
      workerData,
    }).on('error', (err) => {
      console.error(err);
      process.exit(1);
    });
const pending = new Map<number, (ok: boolean) => void>();
let outbox: [number, string, string][] = [];
let isFlushScheduled = false;
let nextId = 1;

worker.on('message', (text: string) => {
  for (const [id, ok] of JSON.parse(text) as [number, boolean][]) {
    pending.get(id)?.(ok);
    pending.delete(id);
  }
});

function flush(): void {
  isFlushScheduled = false;
  worker.postMessage(JSON.stringify(outbox));
  outbox = [];
}

/** One request to the seat owner; every request of this turn leaves in one message. */
function send(op: 'h' | 'r', key: string): Promise<boolean> {
  return new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    outbox.push([id, op, key]);
    if (!isFlushScheduled) {
      isFlushScheduled = true;
      setImmediate(flush);
    }
  });
}

const padding = 'x'.repeat(holdBytes);
const app = new Hono();
app.get('/healthz', (c) => c.json({ ok: true }));
app.post('/api/shows/:id/holds', async (c) => {
  const { seats } = (await c.req.json()) as { seats: string[] };
  const showId = c.req.param('id');
  const key = `${seats[0]}.${showId}`;
  if (!(await send('h', key))) return c.json({ error: { code: 'SEATS_UNAVAILABLE' } }, 409);
  const head = `{"hold":{"id":"${key}","pad":"`;
  return c.body(`${head}${padding.slice(0, Math.max(0, holdBytes - head.length - 4))}"}}`, 201, {
    'content-type': 'application/json',
  });
});
app.delete('/api/holds/:id', async (c) =>
  (await send('r', c.req.param('id')))
    ? c.body(null, 204)
    : c.json({ error: { code: 'HOLD_NOT_FOUND' } }, 404),
);

serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }) as Server;
process.on('SIGTERM', () => process.exit(0));
