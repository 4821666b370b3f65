/**
 * How many app-database commits a booking costs, counted from the database's own statement log
 * (`onAppDbCommit`) while a real server books and pays over HTTP. Every commit is a WAL append that a
 * flush must cover, so the saga writes what belongs together in one transaction: the booking with its
 * provider intent and payment row, the capture with the payment row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeCommit } from '../../src/persistence/app-db.js';
import { ADMIN_ENV, createShow, GOOD_CARD, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const SAGA_TABLES = /\b(bookings|payments|simulated_payment_intents)\b/;

describe('commits per booking', () => {
  let server: TestServer;
  let commits: string[][] = [];
  let isCounting = false;

  beforeAll(async () => {
    server = await startTestServer(ADMIN_ENV, {
      onAppDbCommit: (statements) => {
        if (isCounting) commits.push(statements);
      },
    });
  });
  afterAll(() => server.destroy());

  it('books and pays in three saga commits: booking with intent, capture with payment, confirmation', async () => {
    const { showId } = await createShow(server.api);
    const user = await newUser(server.api);
    commits = [];
    isCounting = true;
    const created = await server.api('POST', '/api/bookings', {
      body: { showId, seats: ['A1', 'A2'], paymentMethod: 'card' },
      token: user.token,
    });
    expect(created.status).toBe(201);
    const bookingCommits = commits.filter((c) => c.some((sql) => SAGA_TABLES.test(sql)));
    expect(bookingCommits.map(describeCommit)).toEqual([
      'INSERT bookings + INSERT booking_events + INSERT simulated_payment_intents + INSERT payments',
    ]);

    commits = [];
    const paid = await server.api('POST', '/api/payments', {
      body: { bookingId: created.body.booking.id, method: 'card', card: GOOD_CARD },
      token: user.token,
    });
    isCounting = false;
    expect(paid.status).toBe(200);
    expect(paid.body.booking.status).toBe('confirmed');
    const paymentCommits = commits.filter((c) => c.some((sql) => SAGA_TABLES.test(sql)));
    expect(paymentCommits.map(describeCommit)).toEqual([
      'UPDATE simulated_payment_intents + UPDATE payments',
      'UPDATE bookings + INSERT booking_events + INSERT tickets + INSERT notifications + INSERT outbox',
    ]);
  });
});
