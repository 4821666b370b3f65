/**
 * `npm run bench -- onsale [--buyers N] [--polls N] [--json]`: the waiting room's two hot paths through
 * the use case on the SQLite app database (a WAL file at synchronous=NORMAL, as the service runs it):
 *   - joins/s through `OnsaleService.join`, beside the ceiling: the same INSERT straight on the store;
 *   - polls/s through `OnsaleService.poll`, beside the ceiling: the Map lookup a poll starts with;
 *   - heap taken by N waiting buyers (run with `node --expose-gc` for a settled figure), and the
 *     statements a poll runs (counted: it should be none).
 * Not a test: nothing here asserts a time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OnsaleService } from '../src/domain/onsales.js';
import { openAppDb } from '../src/persistence/app-db.js';
import { countingStore, SqliteStore, type Store } from '../src/persistence/store.js';
import { TicketSigner } from '../src/tickets/ticket-signer.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) || fallback : fallback;
};
const BUYERS = arg('--buyers', 100_000);
const POLLS = arg('--polls', 1_000_000);
const IN_FLIGHT = 16;
const isJson = process.argv.includes('--json');

const gc = (globalThis as { gc?: () => void }).gc;
const heapMb = () => {
  gc?.();
  return process.memoryUsage().heapUsed / 1_048_576;
};

async function inFlight(count: number, work: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-bench-onsale-'));
try {
  const base: Store = new SqliteStore(openAppDb(path.join(dir, 'app.db')));
  const { store, count: statements } = countingStore(base);
  let nowMs = Date.UTC(2030, 0, 1);
  const opensAt = new Date(nowMs + 3_600_000).toISOString();
  const service = new OnsaleService({
    store,
    signer: TicketSigner.ephemeral(() => nowMs),
    hasShow: () => true,
    seatCounts: async () => ({ available: 1_000, held: 0 }),
    holdTtlSeconds: 300,
    admissionTtlSeconds: 600,
    now: () => nowMs,
  });
  await service.start();
  const created = await service.create({ showIds: ['shw_bench'], opensAt, admitPerMinute: 1 });
  if (!created.ok) throw new Error(created.message);
  const id = created.onsale.id;

  // The ceiling for joins: the INSERT alone, on another on-sale's rows (same table, same indexes).
  const ceilingOnsale = await service.create({ showIds: ['shw_ceiling'], opensAt, admitPerMinute: 1 });
  if (!ceilingOnsale.ok) throw new Error(ceilingOnsale.message);
  let t = performance.now();
  await inFlight(BUYERS, (i) =>
    base.get(
      `INSERT INTO onsale_queue (onsale_id, user_id, joined_at) VALUES (?, ?, ?)
       ON CONFLICT (onsale_id, user_id) DO NOTHING RETURNING seq`,
      [ceilingOnsale.onsale.id, `usr_${i}`, opensAt],
    ),
  );
  const insertsPerSecond = BUYERS / ((performance.now() - t) / 1000);

  const heapBefore = heapMb();
  t = performance.now();
  await inFlight(BUYERS, (i) => service.join(`usr_${i}`, id));
  const joinsPerSecond = BUYERS / ((performance.now() - t) / 1000);
  nowMs += 3_600_000;
  await service.tick();
  const heapQueue = heapMb() - heapBefore;

  const before = statements();
  t = performance.now();
  let sink = 0;
  for (let i = 0; i < POLLS; i++) {
    const polled = service.poll(`usr_${i % BUYERS}`, id);
    if (polled.ok) sink += polled.view.position ?? 0;
  }
  const pollsPerSecond = POLLS / ((performance.now() - t) / 1000);
  const statementsPerPoll = (statements() - before) / POLLS;

  const index = new Map(Array.from({ length: BUYERS }, (_, i) => [`usr_${i}`, i]));
  t = performance.now();
  for (let i = 0; i < POLLS; i++) sink += index.get(`usr_${i % BUYERS}`) ?? 0;
  const lookupsPerSecond = POLLS / ((performance.now() - t) / 1000);

  const result = {
    buyers: BUYERS,
    joinsPerSecond: Math.round(joinsPerSecond),
    insertCeilingPerSecond: Math.round(insertsPerSecond),
    pollsPerSecond: Math.round(pollsPerSecond),
    lookupCeilingPerSecond: Math.round(lookupsPerSecond),
    statementsPerPoll,
    queueHeapMb: Math.round(heapQueue * 10) / 10,
    isHeapSettled: gc !== undefined,
    sink: sink > 0,
  };
  if (isJson) console.log(JSON.stringify(result));
  else {
    console.log(`on-sale waiting room, ${BUYERS} buyers (SQLite, ${IN_FLIGHT} joins in flight)`);
    console.log(
      `  joins/s  ${result.joinsPerSecond}   (ceiling: the INSERT alone ${result.insertCeilingPerSecond})`,
    );
    console.log(
      `  polls/s  ${result.pollsPerSecond}   (ceiling: a Map lookup ${result.lookupCeilingPerSecond})`,
    );
    console.log(`  statements per poll ${statementsPerPoll}`);
    console.log(
      `  heap for the queue ${result.queueHeapMb} MB${gc ? '' : ' (without --expose-gc: unsettled)'}`,
    );
  }
  await service.close();
  await base.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
