/**
 * `npm run bench -- commits [--bookings N]`: counts the app database's commits per confirmed booking
 * (book, pay with the test card, fetch the ticket, and the notifications that booking sends), by running
 * the service in this process with better-sqlite3's statement log (`onAppDbCommit`). Each commit is
 * named by what it wrote ("INSERT bookings + INSERT booking_events"), so the table says which step
 * costs which commit. A count, not a time: it is the same on a busy machine as on a quiet one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { describeCommit } from '../src/persistence/app-db.js';
import { startServer } from '../src/server.js';
import { jsonClient, registerUsers, upcomingShowIds } from './booking-client.js';
import { TEST_CARD } from './http/cycles.js';

const bookings = Number(process.argv[process.argv.indexOf('--bookings') + 1]) || 20;
const MAX_SETTLE_MS = 15_000;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-commits-'));
let isCounting = false;
const kinds = new Map<string, number>();
let commits = 0;
const config = loadConfig({
  HOST: '127.0.0.1',
  PORT: '0',
  DATA_DIR: dataDir,
  LOG_LEVEL: 'silent',
  SEED_DEMO: 'true',
  REGISTER_MAX_PER_ADDRESS: '100000',
  HOLDS_PER_ADDRESS_PER_MINUTE: '100000',
});
const server = await startServer(config, {
  onAppDbCommit: (statements) => {
    if (!isCounting) return;
    commits++;
    const kind = describeCommit(statements);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  },
});

const call = jsonClient(server.url);

try {
  const [token] = await registerUsers(call, 1, 'Commit Counter');
  const showIds = await upcomingShowIds(call);
  isCounting = true;
  let confirmed = 0;
  for (let i = 0; i < bookings; i++) {
    const showId = showIds[i % showIds.length]!;
    const booked = await call('POST', '/api/bookings', { showId, count: 1, paymentMethod: 'card' }, token);
    if (booked.status !== 201) throw new Error(`booking: ${booked.status} ${JSON.stringify(booked.body)}`);
    const id = booked.body.booking.id as string;
    const paid = await call(
      'POST',
      '/api/payments',
      { bookingId: id, method: 'card', card: TEST_CARD },
      token,
    );
    if (paid.body.booking?.status === 'confirmed') confirmed++;
    await call('GET', `/api/bookings/${id}/ticket`, undefined, token);
  }
  // The notifications a booking sends now (not its reminders) are part of its cost: wait for them.
  const due = async (at: string) =>
    (
      await server.deps.store.get<{ n: number }>(
        "SELECT count(*) AS n FROM notifications WHERE status = 'queued' AND send_at <= ?",
        [at],
      )
    )?.n ?? 0;
  const deadline = Date.now() + MAX_SETTLE_MS;
  while ((await due(new Date().toISOString())) > 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  await new Promise((resolve) => setTimeout(resolve, 500));
  isCounting = false;
  const per = (n: number) => Math.round((n / Math.max(1, confirmed)) * 100) / 100;
  console.log(`${confirmed} confirmed bookings: ${per(commits)} app-database commits per booking`);
  console.table(
    [...kinds.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([kind, count]) => ({ commit: kind.slice(0, 110), perBooking: per(count) })),
  );
} finally {
  await server.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
