/**
 * The gate's checks on both app stores: a signed ticket is valid while its booking is confirmed and the
 * code is the booking's current one, and check-in admits once, even when gates race (PostgreSQL: one
 * connection per racing check-in).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TicketDesk } from '../../src/domain/ticket-desk.js';
import type { Store } from '../../src/persistence/store.js';
import { TicketSigner } from '../../src/tickets/ticket-signer.js';
import { APP_STORES } from '../helpers/app-stores.js';

const NOW = Date.now();
const AT = new Date(NOW).toISOString();
const START = new Date(NOW + 86_400_000).toISOString();
const GATES = 8;

describe.each(APP_STORES)('the ticket desk on $name', (fixture) => {
  let store: Store;
  let signer: TicketSigner;
  let desk: TicketDesk;

  beforeEach(async () => {
    store = await fixture.open('ticket-desk');
    signer = TicketSigner.ephemeral(() => NOW);
    desk = new TicketDesk(store, signer, () => NOW);
    const rows: [string, unknown[]][] = [
      [
        'INSERT INTO users (id, name, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
        ['usr_1', 'Asha', 'asha@example.com', '!locked', AT, AT],
      ],
      [
        `INSERT INTO movies (id, title, language, duration_min, certificate, release_date, created_at, updated_at)
         VALUES ('mov_1', 'The Long Night', 'en', 120, 'UA', '2030-01-01', ?, ?)`,
        [AT, AT],
      ],
      [
        "INSERT INTO theaters (id, name, city, created_at, updated_at) VALUES ('thr_1', 'Lumiere', 'Pune', ?, ?)",
        [AT, AT],
      ],
      [
        `INSERT INTO screens (id, theater_id, name, layout, seat_count, categories, created_at, updated_at)
         VALUES ('scr_1', 'thr_1', 'Screen 1', '{}', 1, '["STANDARD"]', ?, ?)`,
        [AT, AT],
      ],
      [
        `INSERT INTO shows (id, movie_id, screen_id, theater_id, city, start_time, end_time, language, prices, currency,
           created_at, updated_at) VALUES ('shw_1', 'mov_1', 'scr_1', 'thr_1', 'Pune', ?, ?, 'en', '{}', 'INR', ?, ?)`,
        [START, START, AT, AT],
      ],
    ];
    for (const [sql, params] of rows) await store.run(sql, params as string[]);
  });

  afterEach(async () => {
    await store.close();
  });

  /** A confirmed booking with its ticket; returns the ticket's code. */
  async function confirmedBooking(id: string): Promise<string> {
    await store.run(
      `INSERT INTO bookings (id, user_id, show_id, hold_id, hold_expires_at, seats, status, subtotal, discount, fees,
         total, currency, payment_method, created_at, updated_at, confirmed_at)
       VALUES (?, 'usr_1', 'shw_1', ?, ?, '["A1","A2"]', 'confirmed', 100, 0, 0, 100, 'INR', 'card', ?, ?, ?)`,
      [id, `hld_${id}`, AT, AT, AT, AT],
    );
    const code = signer.sign({
      bookingId: id,
      showId: 'shw_1',
      seats: ['A1', 'A2'],
      holderName: 'Asha',
      userId: 'usr_1',
      startTime: START,
    });
    await store.run('INSERT INTO tickets (booking_id, code, kid, issued_at) VALUES (?, ?, ?, ?)', [
      id,
      code.code,
      code.kid,
      AT,
    ]);
    return code.code;
  }

  it('finds a ticket valid while its booking is confirmed, and not once it is cancelled or reissued', async () => {
    const code = await confirmedBooking('bkg_1');
    expect(await desk.verify(code)).toMatchObject({
      valid: true,
      booking: { id: 'bkg_1', seats: ['A1', 'A2'], status: 'confirmed', checkedInAt: null },
    });
    const reissued = signer.sign({
      bookingId: 'bkg_1',
      showId: 'shw_1',
      seats: ['A1', 'A2'],
      holderName: 'Asha',
      userId: 'usr_1',
      startTime: new Date(NOW + 2 * 86_400_000).toISOString(),
    });
    await store.run('UPDATE tickets SET code = ? WHERE booking_id = ?', [reissued.code, 'bkg_1']);
    expect(await desk.verify(code)).toMatchObject({ valid: false, reason: 'superseded ticket code' });
    await store.run("UPDATE bookings SET status = 'cancelled' WHERE id = ?", ['bkg_1']);
    expect(await desk.verify(reissued.code)).toMatchObject({ valid: false, reason: 'booking is cancelled' });
    expect(await desk.checkIn(await desk.verify(reissued.code))).toMatchObject({
      ok: false,
      code: 'RULE_VIOLATION',
    });
  });

  it('admits a ticket once when gates check it in at the same time', async () => {
    const code = await confirmedBooking('bkg_2');
    const verdicts = await Promise.all(Array.from({ length: GATES }, () => desk.verify(code)));
    const results = await Promise.all(verdicts.map((verdict) => desk.checkIn(verdict)));
    const admitted = results.filter((r) => r.ok);
    expect(admitted).toHaveLength(1);
    for (const r of results.filter((x) => !x.ok)) expect(r).toMatchObject({ code: 'ALREADY_CHECKED_IN' });
    expect(await desk.verify(code)).toMatchObject({ booking: { checkedInAt: AT } });
  });
});
