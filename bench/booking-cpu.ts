/**
 * `npm run bench -- booking-cpu [--bookings N] [--cpu-prof DIR] [--json]`: CPU time of whole bookings,
 * per step and per thread, read from the service process's own counters (/proc/PID/task/TID/stat), so
 * the figure holds on a busy shared machine where wall-clock rates do not: time spent waiting for a core
 * or for the disk is not CPU time.
 *
 * The service runs as production runs it (its own process, JOURNAL_SYNC=full), delivering email over
 * real SMTP and SMS to a real webhook (both loopback sinks in this process). The bookings go step by
 * step, 8 at a time: N holds, then N bookings of them, N payments with the test card, N ticket
 * fetches; after each step the bench waits until the service is quiet (every message of the paid
 * bookings received) and reads the counters. The payment step therefore includes the confirmation
 * email and SMS it causes. Counters tick at 10 ms (CLK_TCK 100): keep N in the hundreds.
 *
 * With --cpu-prof DIR the service runs under `node --cpu-prof` (its main thread) and the bench prints
 * the profile's top self-time functions over the measured window (bench/http/profile-summary.ts).
 */
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
const rows: { step: string; mainMs: number; otherThreadsMs: number; wallMs: number }[] = [];
const windowStart = (performance.now() - spawnedAt) / 1000;
let previous = sampleCpu();
for (const step of STEPS) {
  const started = performance.now();
  await eachCycle(step.run);
  await settle();
  const now = sampleCpu();
  rows.push({
    step: step.name,
    mainMs: now.main - previous.main,
    otherThreadsMs: now.all - now.main - (previous.all - previous.main),
    wallMs: performance.now() - started,
  });
  previous = now;
}
const windowEnd = (performance.now() - spawnedAt) / 1000;

const confirmed = measured.filter((c) => c.confirmed).length;
await service.stop();
await smtp.close();
await sms.close();

const per = (ms: number) => Math.round((ms / Math.max(1, confirmed)) * 1000) / 1000;
const table = rows.map((r) => ({
  step: r.step,
  'main ms/booking': per(r.mainMs),
  'other threads ms/booking': per(r.otherThreadsMs),
  'wall ms/booking (8 at a time)': per(r.wallMs),
}));
const total = {
  step: 'whole booking',
  'main ms/booking': per(rows.reduce((s, r) => s + r.mainMs, 0)),
  'other threads ms/booking': per(rows.reduce((s, r) => s + r.otherThreadsMs, 0)),
  'wall ms/booking (8 at a time)': per(rows.reduce((s, r) => s + r.wallMs, 0)),
};
if (asJson) console.log(JSON.stringify({ confirmed, steps: [...table, total] }, null, 2));
else {
  console.log(
    `${confirmed} of ${bookings} bookings confirmed (after ${WARM_UP_BOOKINGS} not measured), ${smtp.messages.length} emails and ${sms.texts.length} SMS received in all; CPU per confirmed booking (tick ${TICK_MS} ms):`,
  );
  console.table([...table, total]);
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
