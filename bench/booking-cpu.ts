/**
 * `npm run bench -- booking-cpu [--bookings N] [--cpu-prof DIR] [--json]`: CPU time of whole bookings,
 * per step and per thread, read from the service process's own counters (/proc/PID/task/TID/stat), so
 * the figure holds on a busy shared machine where wall-clock rates do not: time spent waiting for a core
 * or for the disk is not CPU time. Beside it, the time spent waiting for the disk, from the service's
 * own counters on /metrics, read at the same moments.
 *
 * The service runs as production runs it (its own process, JOURNAL_SYNC=full), delivering email over
 * real SMTP and SMS to a real webhook (both loopback sinks in this process). The bookings go step by
 * step, 8 at a time: N holds, then N bookings of them, N payments with the test card, N ticket
 * fetches; after each step the bench waits until the service is quiet (every message of the paid
 * bookings received) and reads the counters. The payment step therefore includes the confirmation
 * email and SMS it causes. Counters tick at 10 ms (CLK_TCK 100): keep N in the hundreds.
 *
 * The columns, each per confirmed booking, over the step's window:
 * - main ms: CPU of the service's main thread (HTTP, the booking saga, the app database's statements).
 * - other threads ms: CPU of every other thread: shard workers, libuv's pool (fdatasync, scrypt, zlib),
 *   V8's GC and compiler helpers.
 * - wall ms: the step's elapsed time, 8 bookings at a time, including the settle wait (~300 ms a step).
 * - app-db wait ms: wall time callers waited for the app database's group-commit flush
 *   (`boxoffice_app_db_durable_wait_seconds_total`), summed over every caller that waited: HTTP answers
 *   and side effects (a provider call, an email or SMS handed to its transport). Waiting is not work:
 *   it overlaps with other requests' CPU and with other callers' waits (8 callers sharing one 2 ms flush
 *   count 16 ms), so it does not add up with the CPU columns or with wall time.
 * - journal flush ms: the shard workers' seat-journal WAL flushes (`boxoffice_journal_flush_seconds_total`,
 *   commit log and partition files), each from handing the fdatasync to libuv's pool until it completed,
 *   summed. That is the disk's time on the flushing thread, not a caller's wait: a worker applies the
 *   next batch meanwhile, and a hold's answer waits for at most its own batch's flush.
 * Below the table: the app database's and the journal's flush counts and total flush time. Each step's
 * window also holds one /metrics scrape (about a millisecond of main-thread CPU: noise at N ≥ 100).
 *
 * With --cpu-prof DIR the service runs under `node --cpu-prof` (its main thread) and the bench prints
 * the profile's top self-time functions over the measured window (bench/http/profile-summary.ts). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSmsWebhook } from '../test/helpers/sms.js';
import { startTestSmtp } from '../test/helpers/smtp.js';
import { registerUsers, startBenchService, upcomingShowIds } from './booking-client.js';
import { TEST_CARD } from './http/cycles.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const bookings = Math.min(2_000, Number(option('bookings')) || 300);
const profileDir = option('cpu-prof');
const asJson = process.argv.includes('--json');
const CONCURRENCY = 8;
const WARM_UP_BOOKINGS = 80;
const SETTLE_TIMEOUT_MS = 60_000;
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-booking-cpu-'));

const smtp = await startTestSmtp();
const sms = await startSmsWebhook();
const spawnedAt = performance.now();
const service = await startBenchService({
  nodeArgs: [
    '--max-semi-space-size=64',
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir)] : []),
  ],
  env: {
    DATA_DIR: path.join(dataDir, 'data'),
    JOURNAL_SYNC: 'full',
    SMTP_URL: smtp.url,
    SMS_WEBHOOK_URL: sms.url,
    // A few users book many seats here: the per-user limits are for people.
    MAX_SEATS_PER_USER: '100',
    MAX_HELD_SEATS_PER_USER: '10000',
  },
});
const pid = service.nodePid;
const { call } = service;

/** utime + stime in ms of a /proc stat line (fields 14 and 15, counted after the parenthesised name). */
function cpuMsOf(statFile: string): number {
  try {
    const stat = fs.readFileSync(statFile, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0; // the thread ended between listing and reading
  }
}

interface CpuSample {
  /** The whole process, including threads that have ended. */
  all: number;
  main: number;
}

// Worker threads, libuv's pool and V8's helpers all call themselves "node" here: only the main thread
// (its id is the process id) can be told apart, and the rest is the process total minus it.
function sampleCpu(): CpuSample {
  return { all: cpuMsOf(`/proc/${pid}/stat`), main: cpuMsOf(`/proc/${pid}/task/${pid}/stat`) };
}

/** The disk figures of /metrics (seconds, counts), cumulative since the service started. */
interface DiskSample {
  appDbWait: number;
  appDbFlush: number;
  appDbFlushes: number;
  journalFlush: number;
  journalFlushes: number;
}

async function sampleDisk(): Promise<DiskSample> {
  const text = await (await fetch(`${service.process.url}/metrics`)).text();
  // A series absent (the app database on PostgreSQL) reads as 0.
  const value = (series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };
  const byFile = (name: string) => value(`${name}{file="commit_log"}`) + value(`${name}{file="partition"}`);
  return {
    appDbWait: value('boxoffice_app_db_durable_wait_seconds_total'),
    appDbFlush: value('boxoffice_app_db_flush_seconds_total'),
    appDbFlushes: value('boxoffice_app_db_flushes_total'),
    journalFlush: byFile('boxoffice_journal_flush_seconds_total'),
    journalFlushes: byFile('boxoffice_journal_flushes_total'),
  };
}

function diskSince(now: DiskSample, before: DiskSample): DiskSample {
  return {
    appDbWait: now.appDbWait - before.appDbWait,
    appDbFlush: now.appDbFlush - before.appDbFlush,
    appDbFlushes: now.appDbFlushes - before.appDbFlushes,
    journalFlush: now.journalFlush - before.journalFlush,
    journalFlushes: now.journalFlushes - before.journalFlushes,
  };
}

const users = await registerUsers(call, CONCURRENCY, 'Booking Cpu');
const showIds = await upcomingShowIds(call);

interface Cycle {
  token: string;
  showId: string;
  holdId?: string;
  bookingId?: string;
  confirmed?: boolean;
}
const cyclesOf = (count: number, offset: number): Cycle[] =>
  Array.from({ length: count }, (_, k) => ({
    token: users[(offset + k) % CONCURRENCY]!,
    showId: showIds[Math.floor((offset + k) / CONCURRENCY) % showIds.length]!,
  }));
// A first round, not measured, so the counters see warm code (JIT, caches, pools) as an on-sale would.
const warmUp = cyclesOf(WARM_UP_BOOKINGS, 0);
let cycles = warmUp;
const measured = cyclesOf(bookings, WARM_UP_BOOKINGS);

/** Runs `step` once per cycle, CONCURRENCY at a time. */
async function eachCycle(step: (cycle: Cycle) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cycles.length) await step(cycles[next++]!);
    }),
  );
}

async function settle(): Promise<void> {
  const confirmed = [...warmUp, ...(cycles === warmUp ? [] : cycles)].filter((c) => c.confirmed).length;
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while ((smtp.messages.length < confirmed || sms.texts.length < confirmed) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  // The last send's bookkeeping (its commit) comes after the message is received.
  await new Promise((resolve) => setTimeout(resolve, 300));
}

const STEPS: { name: string; run: (cycle: Cycle) => Promise<void> }[] = [
  {
    name: 'hold (POST /api/shows/:id/holds)',
    run: async (c) => {
      const res = await call('POST', `/api/shows/${c.showId}/holds`, { count: 1 }, c.token);
      if (res.status === 201) c.holdId = res.body.hold.id;
    },
  },
  {
    name: 'book (POST /api/bookings)',
    run: async (c) => {
      if (!c.holdId) return;
      const res = await call('POST', '/api/bookings', { holdId: c.holdId, paymentMethod: 'card' }, c.token);
      if (res.status === 201) c.bookingId = res.body.booking.id;
    },
  },
  {
    name: 'pay (POST /api/payments) + confirmation email and SMS',
    run: async (c) => {
      if (!c.bookingId) return;
      const res = await call(
        'POST',
        '/api/payments',
        { bookingId: c.bookingId, method: 'card', card: TEST_CARD },
        c.token,
      );
      c.confirmed = res.status === 200 && res.body.booking?.status === 'confirmed';
    },
  },
  {
    name: 'ticket (GET /api/bookings/:id/ticket)',
    run: async (c) => {
      if (c.confirmed) await call('GET', `/api/bookings/${c.bookingId}/ticket`, undefined, c.token);
    },
  },
];

for (const step of STEPS) {
  await eachCycle(step.run);
  await settle();
}
cycles = measured;
const rows: { step: string; mainMs: number; otherThreadsMs: number; wallMs: number; disk: DiskSample }[] = [];
const windowStart = (performance.now() - spawnedAt) / 1000;
// Disk first, then CPU, at both ends: each window holds exactly one scrape's CPU.
let previousDisk = await sampleDisk();
let previous = sampleCpu();
for (const step of STEPS) {
  const started = performance.now();
  await eachCycle(step.run);
  await settle();
  const disk = await sampleDisk();
  const now = sampleCpu();
  rows.push({
    step: step.name,
    mainMs: now.main - previous.main,
    otherThreadsMs: now.all - now.main - (previous.all - previous.main),
    wallMs: performance.now() - started,
    disk: diskSince(disk, previousDisk),
  });
  previous = now;
  previousDisk = disk;
}
const windowEnd = (performance.now() - spawnedAt) / 1000;

const confirmed = measured.filter((c) => c.confirmed).length;
await service.stop();
await smtp.close();
await sms.close();

const per = (ms: number) => Math.round((ms / Math.max(1, confirmed)) * 1000) / 1000;
type Row = (typeof rows)[number];
const sumOf = (pick: (r: Row) => number) => rows.reduce((s, r) => s + pick(r), 0);
const whole: Row = {
  step: 'whole booking',
  mainMs: sumOf((r) => r.mainMs),
  otherThreadsMs: sumOf((r) => r.otherThreadsMs),
  wallMs: sumOf((r) => r.wallMs),
  disk: {
    appDbWait: sumOf((r) => r.disk.appDbWait),
    appDbFlush: sumOf((r) => r.disk.appDbFlush),
    appDbFlushes: sumOf((r) => r.disk.appDbFlushes),
    journalFlush: sumOf((r) => r.disk.journalFlush),
    journalFlushes: sumOf((r) => r.disk.journalFlushes),
  },
};
const table = [...rows, whole].map((r) => ({
  step: r.step,
  'main ms': per(r.mainMs),
  'other threads ms': per(r.otherThreadsMs),
  'wall ms (8 at a time)': per(r.wallMs),
  'app-db wait ms': per(r.disk.appDbWait * 1000),
  'journal flush ms': per(r.disk.journalFlush * 1000),
}));
const flushes = {
  appDb: { flushes: whole.disk.appDbFlushes, ms: Math.round(whole.disk.appDbFlush * 1000) },
  journal: { flushes: whole.disk.journalFlushes, ms: Math.round(whole.disk.journalFlush * 1000) },
};
if (asJson) console.log(JSON.stringify({ confirmed, steps: table, flushes }, null, 2));
else {
  console.log(
    `${confirmed} of ${bookings} bookings confirmed (after ${WARM_UP_BOOKINGS} not measured), ${smtp.messages.length} emails and ${sms.texts.length} SMS received in all; per confirmed booking (CPU tick ${TICK_MS} ms; waits overlap, see bench/booking-cpu.ts):`,
  );
  console.table(table);
  console.log(
    `flushes in the measured window: app database ${flushes.appDb.flushes} (${flushes.appDb.ms} ms flushing), seat journal ${flushes.journal.flushes} (${flushes.journal.ms} ms flushing, summed over workers)`,
  );
}
if (profileDir) {
  const file = fs
    .readdirSync(profileDir)
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread (workers write their own).
    .filter((f) => f.endsWith('.cpuprofile') && f.includes(`.${pid}.0.`))
    .map((f) => path.join(profileDir, f))[0];
  if (file)
    execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(import.meta.dirname, 'http/profile-summary.ts'),
        file,
        '--from',
        windowStart.toFixed(1),
        '--to',
        windowEnd.toFixed(1),
        '--top',
        '30',
      ],
      { stdio: 'inherit' },
    );
}
fs.rmSync(dataDir, { recursive: true, force: true });
