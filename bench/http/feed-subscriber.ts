/**
 * @module bench/http/feed-subscriber
 * A child process of the HTTP bench holding a share of the live-feed subscribers (ws clients on
 * loopback). It notes when each delta reached each subscriber; at the end the parent sends the times
 * at which it sent the hold or release behind each change, and this process answers with the
 * change-to-delivery latencies as a histogram. Deltas are matched to requests by seat, status and
 * ordinal: one holder loop owns each seat, so the k-th "A7 held" delta is the k-th hold of A7.
 *
 * Parent → child: connect {url, count, concurrency}, status, stamps {stamps}, close.
 * Child → parent: connected {ok, failed, version}, status {minVersion, open}, result {...}.
 */
import { WebSocket } from 'ws';
import { type Stamps, wallNow } from './feed-protocol.js';
import { Latencies } from './latency.js';

interface VersionRecord {
  seat: string;
  status: string;
  ordinal: number;
  receipts: number[];
}

const versions = new Map<number, VersionRecord>();
const ordinals = new Map<string, number>();
const sockets: WebSocket[] = [];
const lastVersion: number[] = [];
let snapshotVersion = -1;
let deliveries = 0;
let drops = 0;
let resyncs = 0;
let isClosing = false;

function versionOf(text: string): number {
  const at = text.indexOf('"version":');
  return at < 0 ? -1 : Number.parseInt(text.slice(at + 10, at + 24), 10);
}

function onMessage(index: number, text: string): void {
  const now = wallNow();
  const version = versionOf(text);
  if (text.startsWith('{"type":"delta"')) {
    deliveries++;
    lastVersion[index] = version;
    let record = versions.get(version);
    if (!record) {
      const change = (JSON.parse(text) as { changes: { id: string; status: string }[] }).changes[0]!;
      const key = `${change.id}|${change.status}`;
      const ordinal = ordinals.get(key) ?? 0;
      ordinals.set(key, ordinal + 1);
      record = { seat: change.id, status: change.status, ordinal, receipts: [] };
      versions.set(version, record);
    }
    record.receipts.push(now);
  } else if (text.startsWith('{"type":"snapshot"')) {
    snapshotVersion = version;
    lastVersion[index] = version;
  } else if (text.startsWith('{"type":"resync"')) resyncs++;
}

function open(url: string, index: number): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let isOpen = false;
    ws.on('message', (data) => {
      if (!isOpen) {
        isOpen = true;
        resolve(true);
      }
      onMessage(index, String(data));
    });
    ws.on('error', () => {
      if (!isOpen) resolve(false);
    });
    ws.on('close', () => {
      if (!isClosing) drops++;
      if (!isOpen) resolve(false);
    });
    sockets[index] = ws;
  });
}

async function connect(url: string, count: number, concurrency: number) {
  let ok = 0;
  for (let from = 0; from < count; from += concurrency) {
    const wave = Array.from({ length: Math.min(concurrency, count - from) }, (_, k) => open(url, from + k));
    for (const isOk of await Promise.all(wave)) if (isOk) ok++;
  }
  return { type: 'connected', ok, failed: count - ok, version: snapshotVersion };
}

function latencies(stamps: Stamps) {
  const histogram = new Latencies();
  let unmatched = 0;
  for (const record of versions.values()) {
    const sent = stamps[record.seat]?.[record.status as 'held' | 'available']?.[record.ordinal];
    if (sent === undefined) {
      unmatched += record.receipts.length;
      continue;
    }
    for (const at of record.receipts) histogram.record(at - sent);
  }
  return { type: 'result', entries: histogram.entries(), deliveries, unmatched, drops, resyncs };
}

process.on('message', async (message: { type: string; [k: string]: any }) => {
  if (message.type === 'connect')
    process.send?.(await connect(message.url, message.count, message.concurrency));
  else if (message.type === 'status') {
    let minVersion = Number.POSITIVE_INFINITY;
    let open = 0;
    sockets.forEach((ws, i) => {
      if (ws?.readyState !== WebSocket.OPEN) return;
      open++;
      minVersion = Math.min(minVersion, lastVersion[i] ?? -1);
    });
    process.send?.({ type: 'status', minVersion: open === 0 ? -1 : minVersion, open });
  } else if (message.type === 'stamps') process.send?.(latencies(message.stamps as Stamps));
  else if (message.type === 'close') {
    isClosing = true;
    for (const ws of sockets) ws?.terminate();
    process.disconnect?.();
  }
});
// The parent is gone (or done): nothing here outlives it.
process.on('disconnect', () => {
  isClosing = true;
  for (const ws of sockets) ws?.terminate();
  process.exit(0);
});
