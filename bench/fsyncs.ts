/**
 * `npm run bench -- fsyncs [--bookings N]`: counts the fsync/fdatasync calls each thread of the service
 * makes per confirmed booking (hold, book, pay with the test card, fetch the ticket), by running the
 * service under `strace -f` (apt-get install strace) with JOURNAL_SYNC=full. The figure that matters is
 * the main (HTTP) thread's: group commit keeps it at zero. Bookings run 8 at a time, as an on-sale would.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerUsers, startBenchService, upcomingShowIds } from './booking-client.js';
import { TEST_CARD } from './http/cycles.js';

const bookings = Number(process.argv[process.argv.indexOf('--bookings') + 1]) || 200;
const CONCURRENCY = 8;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-fsyncs-'));
const traceFile = path.join(dataDir, 'strace.txt');

const service = await startBenchService({
  env: { DATA_DIR: path.join(dataDir, 'data'), JOURNAL_SYNC: 'full' },
  wrapper: ['strace', '-f', '-qq', '-y', '-e', 'trace=fsync,fdatasync', '-o', traceFile],
});
const { call } = service;
const users = await registerUsers(call, CONCURRENCY, 'Fsync');
const showIds = await upcomingShowIds(call);

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
await service.stop();

const rows = [...after.entries()].map(([tid, count]) => ({
  thread: tid === service.nodePid ? 'main (HTTP)' : `tid ${tid}`,
  perBooking: Math.round(((count - (before.get(tid) ?? 0)) / Math.max(1, confirmed)) * 100) / 100,
}));
console.log(`${confirmed} confirmed bookings, JOURNAL_SYNC=full; fsync+fdatasync per booking, by thread:`);
console.table(rows.filter((r) => r.perBooking > 0 || r.thread.startsWith('main')));
if (process.argv.includes('--keep')) console.log(`trace kept in ${traceFile}`);
else fs.rmSync(dataDir, { recursive: true, force: true });
