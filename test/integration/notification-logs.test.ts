/**
 * With no SMTP_URL or SMS_WEBHOOK_URL set, emails and texts are written to the log instead. The log is
 * read by more people than the customer, so it carries the recipient masked and never a full ticket
 * code (a full code passes the gate). Read from the real server's own log output.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const WAIT_MS = 15_000;
const PHONE = '+919876543210';

let server: TestServer;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const logger = pino(
    { level: 'info', base: undefined },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  server = await startTestServer({ ...ADMIN_ENV, LOG_LEVEL: 'info' }, { logger });
});

afterAll(() => server?.destroy());

async function logged(message: string, bookingId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const line = lines.find(
      (l) => String(l.msg).startsWith(message) && JSON.stringify(l).includes(bookingId),
    );
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`timed out waiting for "${message}" about ${bookingId}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('notifications written to the log', () => {
  it('mask the recipient and never carry the full ticket code', async () => {
    const { showId } = await createShow(server.api);
    const rita = await newUser(server.api, { email: `rita${Date.now()}@example.com`, phone: PHONE });
    const booked = await server.api('POST', '/api/bookings', {
      token: rita.token,
      body: { showId, seats: ['A1'], paymentMethod: 'upi' },
    });
    expect(booked.status).toBe(201);
    const paid = await server.api('POST', '/api/payments', {
      token: rita.token,
      body: { bookingId: booked.body.booking.id, method: 'upi', upiId: 'success@upi' },
    });
    expect(paid.body.booking.status).toBe('confirmed');
    const { id: bookingId, ticket } = paid.body.booking as { id: string; ticket: { code: string } };

    const email = await logged('email (log transport', bookingId);
    expect(email.to).toBe('r***@example.com');
    expect(String(email.text)).toContain('Ticket code: ');
    const sms = await logged('sms (log transport', bookingId);
    expect(sms.to).toBe('+91******3210');

    const output = lines.map((l) => JSON.stringify(l)).join('\n');
    expect(output).not.toContain(ticket.code);
    expect(output).not.toContain(rita.email);
    expect(output).not.toContain(PHONE);
  });
});
