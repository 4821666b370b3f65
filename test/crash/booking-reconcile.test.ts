/**
 * Crash test of the booking saga: a real child process runs the real server and is killed with SIGKILL
 * between the show actor's confirm and the booking row's update (the saga's fault hook). Restarted on the
 * same data directory, reconciliation settles the booking from the actor's record and the provider's
 * state before anyone is served: the booking is confirmed, its ticket exists, the seats are booked
 * exactly once and the payment is kept, not refunded. A second restart changes nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import type { SimulatedPaymentProvider } from '../../src/payments/simulated-provider.js';
import { ADMIN, ADMIN_ENV, createShow, GOOD_CARD, login, newUser } from '../helpers/catalog.js';
import { testDatabaseEnv } from '../helpers/postgres.js';
import { bookingEventCount } from '../helpers/records.js';
import { client, startTestServer, type TestServer } from '../helpers/server.js';

const CHILD = path.join(import.meta.dirname, 'booking-child.ts');
const JWT_SECRET = 'test-secret-test-secret-test-secret-0123';

async function startChild(dataDir: string) {
  // The database the restart below gets for this data directory too (none outside the PostgreSQL pass).
  const { DATABASE_URL } = await testDatabaseEnv({}, dataDir);
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      ...(DATABASE_URL ? { CHILD_DATABASE_URL: DATABASE_URL } : {}),
      BOOKING_CRASH_AFTER_ACTOR_CONFIRM: '1',
      CHILD_JWT_SECRET: JWT_SECRET,
      CHILD_ADMIN_EMAIL: ADMIN.email,
      CHILD_ADMIN_PASSWORD: ADMIN.password,
    },
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_c, signal) => resolve(signal)),
  );
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) {
      if (line.startsWith(w.prefix)) w.resolve(line);
      else waiters.push(w);
    }
  });
  const waitFor = (prefix: string) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen) return resolve(seen);
      waiters.push({ prefix, resolve });
      void exited.then(() => reject(new Error(`child exited before printing ${prefix}`)));
    });
  return { child, exited, waitFor, lines };
}

function kill(child: ChildProcess) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

describe('booking reconciliation after a crash', () => {
  it('confirms a booking killed between the actor confirm and the booking row, exactly once', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-booking-crash-'));
    const { child, exited, waitFor, lines } = await startChild(dataDir);
    let restarted: TestServer | undefined;
    try {
      const url = (await waitFor('READY ')).split(' ')[1]!;
      const api = client(url);
      const adminToken = await login(api, ADMIN.email, ADMIN.password);
      const { showId } = await createShow(api, { adminToken });
      const alice = await newUser(api, { name: 'Alice Crash' });
      const created = await api('POST', '/api/bookings', {
        body: { showId, seats: ['B4', 'B5'], paymentMethod: 'card' },
        token: alice.token,
      });
      expect(created.status).toBe(201);
      const { booking, payment } = created.body;
      // A second booking, left pending: reconciliation must leave it alone (nothing was paid).
      const other = await newUser(api);
      const pending = await api('POST', '/api/bookings', {
        body: { showId, seats: ['C1'], paymentMethod: 'card' },
        token: other.token,
      });
      expect(pending.status).toBe(201);

      await expect(
        api('POST', '/api/payments', {
          body: { bookingId: booking.id, method: 'card', card: GOOD_CARD },
          token: alice.token,
        }),
      ).rejects.toThrow();
      expect(await exited).toBe('SIGKILL');
      expect(lines).toContain('CRASHING');

      // Restart on the same data directory, without the fault: reconcile runs before serving.
      restarted = await startTestServer({ ...ADMIN_ENV, DATA_DIR: dataDir });
      const confirmed = await restarted.api('GET', `/api/bookings/${booking.id}`, { token: alice.token });
      expect(confirmed.status).toBe(200);
      expect(confirmed.body.booking).toMatchObject({ status: 'confirmed', seats: ['B4', 'B5'] });
      expect(confirmed.body.booking.ticket.code).toEqual(expect.any(String));
      const verdict = await restarted.api('POST', '/api/tickets/verify', {
        body: { code: confirmed.body.booking.ticket.code },
      });
      expect(verdict.body).toMatchObject({ valid: true, booking: { id: booking.id, seats: ['B4', 'B5'] } });
      const ticket = await restarted.api('GET', `/api/bookings/${booking.id}/ticket`, { token: alice.token });
      expect(ticket.status).toBe(200);

      const map = await restarted.api('GET', `/api/shows/${showId}/seats`);
      const status = Object.fromEntries(
        map.body.seats.map((s: { id: string; status: string }) => [s.id, s.status]),
      );
      expect([status.B4, status.B5, status.C1]).toEqual(['booked', 'booked', 'held']);
      expect(map.body.counts).toMatchObject({ booked: 2, held: 1, available: 27 });
      const bob = await newUser(restarted.api);
      const clash = await restarted.api('POST', `/api/shows/${showId}/holds`, {
        body: { seats: ['B5'] },
        token: bob.token,
      });
      expect(clash.status).toBe(409);

      const provider = restarted.deps.payments as SimulatedPaymentProvider;
      expect(await provider.retrieve(payment.intentId)).toMatchObject({ ok: true, status: 'succeeded' });
      const { store } = restarted.deps;
      expect(await store.get('SELECT COUNT(*) AS n FROM tickets WHERE booking_id = ?', [booking.id])).toEqual(
        {
          n: 1,
        },
      );
      expect(await bookingEventCount(store, booking.id, 'confirmed')).toBe(1);
      expect(await store.get('SELECT status FROM payments WHERE booking_id = ?', [booking.id])).toEqual({
        status: 'succeeded',
      });
      const history = await restarted.api('GET', '/api/me/bookings', { token: other.token });
      expect(history.body.bookings.map((b: { status: string }) => b.status)).toEqual(['pending_payment']);

      // The client's retry after the crash answers the confirmed booking; nothing is booked twice.
      const retry = await restarted.api('POST', '/api/payments', {
        body: { bookingId: booking.id, method: 'card', card: GOOD_CARD },
        token: alice.token,
      });
      expect(retry.status).toBe(200);
      expect(retry.body.booking).toEqual(confirmed.body.booking);

      // Another restart: reconciliation has nothing left to do and changes nothing.
      await restarted.close();
      restarted = await startTestServer({ ...ADMIN_ENV, DATA_DIR: dataDir });
      const again = await restarted.api('GET', `/api/bookings/${booking.id}`, { token: alice.token });
      expect(again.body.booking).toEqual(confirmed.body.booking);
      const mapAgain = await restarted.api('GET', `/api/shows/${showId}/seats`);
      expect(mapAgain.body.counts).toMatchObject({ booked: 2, held: 1 });
    } finally {
      kill(child);
      await exited;
      if (restarted) await restarted.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
