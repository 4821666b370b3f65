/**
 * `npm run bench -- fsyncs [--bookings N]`: counts the fsync/fdatasync calls each thread of the service
 * makes per confirmed booking (hold, book, pay with the test card, fetch the ticket), by running the
 * service under `strace -f` (apt-get install strace) with JOURNAL_SYNC=full. The figure that matters is
 * the main (HTTP) thread's: group commit keeps it at zero. Bookings run 8 at a time, as an on-sale would.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { TEST_CARD } from './http/cycles.js';

const bookings = Number(process.argv[process.argv.indexOf('--bookings') + 1]) || 200;
const CONCURRENCY = 8;
const repo = path.resolve(import.meta.dirname, '..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-fsyncs-'));
const traceFile = path.join(dataDir, 'strace.txt');

const child = spawn(
  'strace',
  [
    '-f',
    '-qq',
    '-y',
    '-e',
    'trace=fsync,fdatasync',
    '-o',
    traceFile,
    process.execPath,
    '--import',
    'tsx',
    'src/main.ts',
  ],
  {
    cwd: repo,
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: path.join(dataDir, 'data'),
      JOURNAL_SYNC: 'full',
      LOG_LEVEL: 'info',
      ADMIN_EMAIL: 'admin@example.com',
      ADMIN_PASSWORD: 'admin-password-123',
      // Every client here dials from 127.0.0.1: the per-address limits are for people.
      HOLDS_PER_ADDRESS_PER_MINUTE: '1000000',
      REGISTER_MAX_PER_ADDRESS: '1000000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const port = await new Promise<number>((resolve, reject) => {
  child.on('exit', (code) => reject(new Error(`the service exited (${code}); is strace installed?`)));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === 'BoxOffice is serving') resolve(entry.port!);
    } catch {}
  });
});
// strace's child is node; its main thread's id is the process id.
const servicePid = Number(execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).trim());
const serving = { port, pid: servicePid };
const base = `http://127.0.0.1:${serving.port}`;

async function call(method: string, route: string, body?: unknown, token?: string) {
  const res = await fetch(base + route, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as any };
}

const users: string[] = [];
for (let i = 0; i < CONCURRENCY; i++) {
  const reg = await call('POST', '/api/register', {
    name: `Fsync ${i}`,
    email: `fsync${i}@example.com`,
    password: 'a long enough passphrase',
  });
  users.push(reg.body.token);
}
const movies = (await call('GET', '/api/movies')).body.movies as { id: string }[];
const showIds: string[] = [];
for (const movie of movies) {
  const { shows } = (await call('GET', `/api/movies/${movie.id}/shows`)).body as { shows: { id: string }[] };
  showIds.push(...shows.map((s) => s.id));
}

function countByThread(): Map<number, number> {
  const counts = new Map<number, number>();
  for (const line of fs.readFileSync(traceFile, 'utf8').split('\n')) {
    const match = /^(\d+)\s+f(?:data)?sync\(/.exec(line);
    if (match) counts.set(Number(match[1]), (counts.get(Number(match[1])) ?? 0) + 1);
  }
  return counts;
}

const before = countByThread();
let confirmed = 0;
let next = 0;
await Promise.all(
  users.map(async (token) => {
    while (next < bookings) {
      const showId = showIds[next++ % showIds.length]!;
      const booked = await call('POST', '/api/bookings', { showId, count: 1, paymentMethod: 'card' }, token);
      if (booked.status !== 201) continue;
      const paid = await call(
        'POST',
        '/api/payments',
        {
          bookingId: booked.body.booking.id,
          method: 'card',
          card: TEST_CARD,
        },
        token,
      );
      if (paid.status === 200 && paid.body.booking?.status === 'confirmed') confirmed++;
      await call('GET', `/api/bookings/${booked.body.booking.id}/ticket`, undefined, token);
    }
  }),
);
// Let notifications go out: their claims and sends belong to the bookings too.
await new Promise((resolve) => setTimeout(resolve, 2000));
const after = countByThread();
// The service stops on TERM; strace ends with its tracee.
process.kill(serving.pid, 'SIGTERM');
await new Promise((resolve) => child.on('exit', resolve));

const rows = [...after.entries()].map(([tid, count]) => ({
  thread: tid === serving.pid ? 'main (HTTP)' : `tid ${tid}`,
  perBooking: Math.round(((count - (before.get(tid) ?? 0)) / Math.max(1, confirmed)) * 100) / 100,
}));
console.log(`${confirmed} confirmed bookings, JOURNAL_SYNC=full; fsync+fdatasync per booking, by thread:`);
console.table(rows.filter((r) => r.perBooking > 0 || r.thread.startsWith('main')));
if (process.argv.includes('--keep')) console.log(`trace kept in ${traceFile}`);
else fs.rmSync(dataDir, { recursive: true, force: true });
