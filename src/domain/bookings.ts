/**
 * @module bookings
 * The booking saga: hold (actor) → booking pending_payment (app db) → payment intent (provider) →
 * payment succeeded → confirm(holdId, bookingId) (actor, idempotent) → booking confirmed, ticket and
 * notifications in one app-db transaction. The actor is the truth for seats; the app db for money and
 * people. Every step can be repeated safely, which is what reconciliation after a crash relies on.
 */

import type { ShardRouter } from '../actors/shard-router.js';
import type { Config } from '../config.js';
import { newId } from '../ids.js';
import { cancelBookingReminders, enqueueNotifications, type NotificationInput } from '../jobs/outbox.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { CreatedIntent, PaymentProvider } from '../payments/payment-provider.js';
import type { Queryable, Store } from '../persistence/store.js';
import type { TicketSigner } from '../tickets/ticket-signer.js';
import { type Failure, failure } from './failure.js';
import { type HoldService, refusal } from './holds.js';
import type { OfferService } from './offers.js';
import type { ShowInfo, ShowInfoCache } from './show-info.js';

export type BookingStatus = 'pending_payment' | 'confirmed' | 'cancelled' | 'failed' | 'expired';
export type PaymentMethod = 'card' | 'upi' | 'wallet';

export interface Booking {
  id: string;
  userId: string;
  showId: string;
  holdId: string;
  seats: string[];
  status: BookingStatus;
  amount: { subtotal: number; discount: number; fees: number; total: number; currency: string };
  promoCode: string | null;
  paymentMethod: PaymentMethod;
  createdAt: string;
  confirmedAt: string | null;
  cancelledAt: string | null;
  holdExpiresAt: string;
  /** The signed code only: its QR image is drawn on request by GET /api/bookings/:id/ticket. */
  ticket?: { code: string };
}

export interface BookingRow {
  id: string;
  user_id: string;
  show_id: string;
  hold_id: string;
  hold_expires_at: string;
  seats: string;
  status: BookingStatus;
  subtotal: number;
  discount: number;
  fees: number;
  total: number;
  currency: string;
  promo_code: string | null;
  offer_id: string | null;
  payment_method: PaymentMethod;
  created_at: string;
  updated_at: string;
  confirmed_at: string | null;
  cancelled_at: string | null;
}

export interface PaymentProof {
  method: PaymentMethod;
  card?: { number: string; expiry: string; cvc: string };
  upiId?: string;
  walletId?: string;
  paymentMethodId?: string;
}

export type CreateBookingInput = {
  promoCode?: string;
  paymentMethod: PaymentMethod;
} & ({ holdId: string } | { showId: string; seats?: string[]; count?: number; category?: string });

export interface PaymentView {
  provider: string;
  intentId: string;
  clientSecret?: string;
  status: string;
  amount: number;
  currency: string;
}

/** How long a pending booking outlives its hold before the sweeper marks it expired. */
export const PENDING_GRACE_MS = 60_000;
export const MAX_SWEEP_BATCH = 500;
/** The booking history's reason when the theater cancels a show. */
const SHOW_CANCELLED = 'the show was cancelled';
/** What the customer reads in the cancellation message. */
const SHOW_CANCELLED_NOTICE = 'The show was cancelled by the theater; your payment is refunded in full.';

export function toBooking(row: BookingRow, ticketCode?: string): Booking {
  return {
    id: row.id,
    userId: row.user_id,
    showId: row.show_id,
    holdId: row.hold_id,
    seats: JSON.parse(row.seats) as string[],
    status: row.status,
    amount: {
      subtotal: row.subtotal,
      discount: row.discount,
      fees: row.fees,
      total: row.total,
      currency: row.currency,
    },
    promoCode: row.promo_code,
    paymentMethod: row.payment_method,
    createdAt: row.created_at,
    confirmedAt: row.confirmed_at,
    cancelledAt: row.cancelled_at,
    holdExpiresAt: row.hold_expires_at,
    ...(ticketCode ? { ticket: { code: ticketCode } } : {}),
  };
}

export interface BookingDeps {
  store: Store;
  router: ShardRouter;
  holds: HoldService;
  shows: ShowInfoCache;
  offers: OfferService;
  payments: PaymentProvider;
  tickets: TicketSigner;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  now: () => number;
  /**
   * Called in the cancel transaction, with it: withdraws the rating the booking qualified
   * (CatalogService). Only statements on `tx`, no other await.
   */
  withdrawRatings: (tx: Queryable, userId: string, showId: string) => unknown;
  /** Test-only fault injection: called right after the actor confirmed, before the app db is updated. */
  afterActorConfirm?: () => void;
}

const SET_STATUS = 'UPDATE bookings SET status = ?, updated_at = ? WHERE id = ? AND status = ?';
const INSERT_EVENT = 'INSERT INTO booking_events (booking_id, status, at, detail) VALUES (?, ?, ?, ?)';
const LATEST_PAYMENT = 'SELECT * FROM payments WHERE booking_id = ? ORDER BY created_at DESC LIMIT 1';
const LIVE_STATUSES = "('pending_payment', 'confirmed')";
/** A booking's latest payment (LATEST_PAYMENT), joined where a read of the booking needs it too. */
const JOIN_LATEST_PAYMENT = `LEFT JOIN payments p ON p.id = (
  SELECT id FROM payments WHERE booking_id = b.id ORDER BY created_at DESC LIMIT 1)`;
/** POST /api/payments' first read: the booking and the intent to confirm, in one round trip. */
const BOOKING_TO_PAY = `SELECT b.*, p.intent_id AS payment_intent_id, p.status AS payment_status
  FROM bookings b ${JOIN_LATEST_PAYMENT} WHERE b.id = ?`;
/** settleSucceeded's read: the booking, whether its money is captured, and whom to tell, in one. */
const BOOKING_TO_SETTLE = `SELECT b.*, p.status AS payment_status, u.name AS user_name, u.email AS user_email,
    u.phone AS user_phone
  FROM bookings b JOIN users u ON u.id = b.user_id ${JOIN_LATEST_PAYMENT} WHERE b.id = ?`;

interface PaymentRow {
  intent_id: string;
  status: string;
}

interface BookingToPay extends BookingRow {
  payment_intent_id: string | null;
  payment_status: string | null;
}

interface BookingToSettle extends BookingRow {
  payment_status: string | null;
  user_name: string;
  user_email: string;
  user_phone: string | null;
}

export class BookingService {
  #isSweeping = false;
  #isSettling = false;

  constructor(private readonly d: BookingDeps) {}

  #iso(): string {
    return new Date(this.d.now()).toISOString();
  }

  row(id: string): Promise<BookingRow | undefined> {
    return this.#rowOn(this.d.store, id);
  }

  #rowOn(q: Queryable, id: string): Promise<BookingRow | undefined> {
    return q.get<BookingRow>('SELECT * FROM bookings WHERE id = ?', [id]);
  }

  #paymentOf(q: Queryable, bookingId: string): Promise<PaymentRow | undefined> {
    return q.get<PaymentRow>(LATEST_PAYMENT, [bookingId]);
  }

  async view(row: BookingRow): Promise<Booking> {
    if (row.status !== 'confirmed') return toBooking(row);
    const ticket = await this.d.store.get<{ code: string }>(
      'SELECT code FROM tickets WHERE booking_id = ? AND revoked_at IS NULL',
      [row.id],
    );
    return toBooking(row, ticket?.code);
  }

  /** The caller's booking, or NOT_FOUND / FORBIDDEN (admins may read any). */
  async get(
    user: { id: string; role: string },
    id: string,
  ): Promise<{ ok: true; booking: Booking; row: BookingRow } | Failure> {
    const row = await this.row(id);
    if (!row) return failure('BOOKING_NOT_FOUND', `no booking ${id}`);
    if (row.user_id !== user.id && user.role !== 'admin')
      return failure('FORBIDDEN', 'this booking is not yours');
    return { ok: true, booking: await this.view(row), row };
  }

  /** Prices the seats from the show's categories, then the promo code, then fees, in minor units. */
  async price(show: ShowInfo, seats: string[], promoCode: string | undefined, userId: string | undefined) {
    let subtotal = 0;
    for (const label of seats) {
      const index = show.layout.indexOf.get(label);
      if (index === undefined) return failure('UNKNOWN_SEAT', `no seat ${label}`, { seats: [label] });
      const category = show.layout.categories[show.layout.categoryOf[index]!]!;
      const price = show.prices[category];
      if (price === undefined) return failure('INTERNAL', `show ${show.id} has no price for ${category}`);
      subtotal += price;
    }
    let discount = 0;
    let offer: import('./offers.js').Offer | undefined;
    if (promoCode) {
      const evaluated = await this.d.offers.evaluate(promoCode, userId, show, subtotal);
      if (!evaluated.ok) return evaluated;
      discount = evaluated.discount;
      offer = evaluated.offer;
    }
    const fees = Math.round(((subtotal - discount) * this.d.config.CONVENIENCE_FEE_PERCENT) / 100);
    return {
      ok: true as const,
      amount: { subtotal, discount, fees, total: subtotal - discount + fees, currency: show.currency },
      offer,
    };
  }

  async create(
    userId: string,
    input: CreateBookingInput,
  ): Promise<{ ok: true; booking: Booking; payment: PaymentView } | Failure> {
    const { holds } = this.d;
    let hold: { id: string; showId: string; seats: string[]; expiresAt: string };
    let isOurHold = false;
    if ('holdId' in input) {
      const found = await holds.get(userId, input.holdId);
      if (!found.ok) return found;
      hold = found.hold;
    } else {
      const request =
        input.seats !== undefined
          ? { seats: input.seats }
          : { count: input.count ?? 0, category: input.category };
      const created = await holds.create(userId, input.showId, request);
      if (!created.ok) return created;
      hold = created.hold;
      isOurHold = true;
    }
    const releaseOurHold = async () => {
      if (isOurHold) await holds.release(userId, hold.id).catch(() => undefined);
    };
    const closed = holds.checkOnSale(hold.showId);
    const show = this.d.shows.get(hold.showId);
    if (closed || !show) {
      await releaseOurHold();
      return closed ?? failure('SHOW_NOT_FOUND', 'no such show');
    }
    const priced = await this.price(show, hold.seats, input.promoCode, userId);
    if (!priced.ok) {
      await releaseOurHold();
      return priced;
    }
    const id = newId('bkg');
    const now = this.#iso();
    const ledger = this.d.payments.inTransaction;
    const intentInput = {
      amountMinor: priced.amount.total,
      currency: priced.amount.currency,
      method: input.paymentMethod,
      bookingId: id,
      idempotencyKey: `intent-${id}`,
    };
    let intent: CreatedIntent | Failure | undefined;
    let refused: Failure | undefined;
    let inserted: BookingRow | undefined;
    try {
      refused = await this.d.store.transaction(async (tx) => {
        // One live booking per hold (a second would pay twice for the same seats): the partial unique
        // index bookings_live_hold (migration 010) lets one of racing inserts win; a loser inserts nothing
        // (and gets no row back). RETURNING gives the answer's row without reading it again.
        inserted = await tx.get<BookingRow>(
          `INSERT INTO bookings (id, user_id, show_id, hold_id, hold_expires_at, seats, status, subtotal, discount, fees,
               total, currency, promo_code, offer_id, payment_method, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, 'pending_payment', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING RETURNING *`,
          [
            id,
            userId,
            hold.showId,
            hold.id,
            hold.expiresAt,
            JSON.stringify(hold.seats),
            priced.amount.subtotal,
            priced.amount.discount,
            priced.amount.fees,
            priced.amount.total,
            priced.amount.currency,
            priced.offer?.code ?? null,
            priced.offer?.id ?? null,
            input.paymentMethod,
            now,
            now,
          ],
        );
        if (inserted === undefined) {
          const existing = await tx.get<{ id: string }>(
            `SELECT id FROM bookings WHERE hold_id = ? AND status IN ${LIVE_STATUSES}`,
            [hold.id],
          );
          return failure('CONFLICT', `hold ${hold.id} already has booking ${existing?.id ?? ''}`.trim(), {
            bookingId: existing?.id,
          });
        }
        if (priced.offer) {
          const taken = await this.d.offers.takeUse(tx, priced.offer, userId, id);
          if (taken) throw new RollbackWith(taken);
        }
        // A ledger in this database: the intent and its payment row commit with the booking, one commit.
        // The event and the intent need no answer from each other: made together, one round trip.
        const [, created] = await Promise.all([
          tx.run(INSERT_EVENT, [id, 'pending_payment', now, null]),
          ledger?.createIntent(tx, intentInput),
        ]);
        intent = created;
        if (intent?.ok) await this.#insertPayment(tx, id, input.paymentMethod, priced.amount, intent, now);
        return undefined;
      });
    } catch (err) {
      if (!(err instanceof RollbackWith)) throw err;
      refused = err.failure;
    }
    if (refused) {
      await releaseOurHold();
      return refused;
    }
    let created = inserted!;
    if (!intent) {
      // A remote provider: its intent follows the booking's commit, and its payment row follows it.
      intent = await this.d.payments.createIntent(intentInput);
      if (intent.ok)
        await this.#insertPayment(this.d.store, id, input.paymentMethod, priced.amount, intent, now);
      // The show may have been cancelled while the intent was being made: read the booking again. (A
      // ledger in this database made the intent in the booking's own transaction: nothing to re-read.)
      created = (await this.row(id))!;
    }
    if (!intent.ok) {
      await this.#finish(id, 'failed', `payment intent: ${intent.message}`);
      await this.#releaseHold(created);
      return failure('PROVIDER_UNAVAILABLE', 'the payment provider is unavailable; try again');
    }
    this.d.metrics.bookings.inc({ status: 'pending_payment' });
    // The show was cancelled while the intent was being made: the booking has already failed, and a
    // 201 would hand out a payable intent for it.
    if (created.status !== 'pending_payment')
      return failure('RULE_VIOLATION', 'this show has been cancelled');
    return {
      ok: true,
      booking: toBooking(created),
      payment: {
        provider: intent.provider,
        intentId: intent.intentId,
        ...(intent.clientSecret ? { clientSecret: intent.clientSecret } : {}),
        status: intent.status,
        amount: priced.amount.total,
        currency: priced.amount.currency,
      },
    };
  }

  /** POST /api/payments: confirms the payment with the provider, then settles the booking. */
  async pay(user: { id: string; role: string }, bookingId: string, proof: PaymentProof) {
    const row = await this.d.store.get<BookingToPay>(BOOKING_TO_PAY, [bookingId]);
    if (!row) return failure('BOOKING_NOT_FOUND', `no booking ${bookingId}`);
    if (row.user_id !== user.id && user.role !== 'admin')
      return failure('FORBIDDEN', 'this booking is not yours');
    if (row.status === 'confirmed') return { ok: true as const, booking: await this.view(row) };
    if (row.status === 'cancelled' || row.status === 'failed')
      return failure('INVALID_STATE', `booking ${bookingId} is ${row.status}`);
    if (row.payment_intent_id === null || row.payment_status === null)
      return failure('INVALID_STATE', 'this booking has no payment intent');
    const payment: PaymentRow = { intent_id: row.payment_intent_id, status: row.payment_status };
    // A booking whose seats were lost after the capture was refunded: the same answer as the first time.
    if (row.status === 'expired' && payment.status === 'refunded') return seatsLost(JSON.parse(row.seats));
    if (proof.method !== row.payment_method)
      return failure('VALIDATION_FAILED', `this booking is paid by ${row.payment_method}`, {
        fields: { method: `must be ${row.payment_method}` },
      });
    // A lapsed booking gave its promo use back. Paid late, it keeps its discount only if the offer still
    // grants that use now; otherwise nothing is charged and the booking stays as it is.
    const isLate = row.status !== 'pending_payment';
    if (isLate && row.offer_id) {
      const refused = await this.d.offers.retakeUse(bookingId, row.offer_id, row.user_id);
      if (refused) return refused;
    }
    const confirmInput = { intentId: payment.intent_id, ...proof, idempotencyKey: `confirm-${bookingId}` };
    const ledger = this.d.payments.inTransaction;
    // A ledger in this database: the capture and the payment row commit together, before the actor's
    // confirm (a crash after it finds the money recorded as captured, which reconciliation settles).
    const isRecorded = ledger !== undefined;
    const outcome = ledger
      ? await this.d.store.transaction(async (tx) => {
          const state = await ledger.confirm(tx, confirmInput);
          if (state.ok && isRecordedHere(state.status))
            await this.#recordPayment(tx, bookingId, state.status, state);
          return state;
        })
      : await this.d.payments.confirm(confirmInput);
    if (!outcome.ok) {
      if (outcome.code === 'PAYMENT_FAILED') {
        await this.fail(bookingId, outcome.message);
        return failure('PAYMENT_FAILED', outcome.message, outcome.details);
      }
      if (isLate) await this.#giveBackUse(bookingId);
      return outcome;
    }
    if (outcome.status === 'failed') {
      await this.fail(bookingId, outcome.failureReason ?? 'payment failed');
      return failure('PAYMENT_FAILED', `the payment failed: ${outcome.failureReason ?? 'declined'}`, {
        reason: outcome.failureReason,
      });
    }
    if (outcome.status === 'refunded' || outcome.status === 'canceled') {
      if (isLate) await this.#giveBackUse(bookingId);
      return failure('INVALID_STATE', `the payment of booking ${bookingId} was ${outcome.status}`);
    }
    if (outcome.status !== 'succeeded') {
      // Processing (a UPI collect request, a pending wallet): the provider's webhook settles it.
      if (!isRecorded) await this.#recordPayment(this.d.store, bookingId, outcome.status, outcome);
      return {
        ok: true as const,
        booking: await this.view((await this.row(bookingId))!),
        paymentStatus: outcome.status,
      };
    }
    if (!isRecorded) await this.#recordPayment(this.d.store, bookingId, 'succeeded', outcome);
    return this.settleSucceeded(bookingId);
  }

  /**
   * The payment succeeded: confirm the seats with the actor (re-holding them if the hold lapsed), then
   * the booking, ticket and notifications in one transaction. If the seats are gone: refund, 410.
   * Idempotent: webhooks, retries and reconciliation all call it, concurrently too (`#confirmInDb`).
   */
  async settleSucceeded(bookingId: string): Promise<{ ok: true; booking: Booking } | Failure> {
    // Read after the capture was recorded (POST /api/payments, a webhook, reconciliation): the booking
    // and its payment as they are now, in one round trip, with the contact the confirmation goes to.
    const row = await this.d.store.get<BookingToSettle>(BOOKING_TO_SETTLE, [bookingId]);
    if (!row) return failure('BOOKING_NOT_FOUND', `no booking ${bookingId}`);
    if (row.status === 'confirmed') return { ok: true, booking: await this.view(row) };
    const paymentStatus = row.payment_status;
    if (row.status === 'cancelled') {
      // Cancelled before payment, then captured anyway (a UPI collect approved late): give it back.
      if (row.confirmed_at === null && paymentStatus === 'succeeded')
        await this.refund(bookingId, 'cancelled before payment');
      return failure('INVALID_STATE', 'this booking was cancelled');
    }
    const seats = JSON.parse(row.seats) as string[];
    // Only captured money books seats: a replayed success webhook after a refund must not.
    if (paymentStatus !== 'succeeded') {
      if (row.status === 'expired' && paymentStatus === 'refunded') return seatsLost(seats);
      return failure('INVALID_STATE', `the payment of booking ${bookingId} is ${paymentStatus ?? 'missing'}`);
    }
    // The theater cancelled the show while the payment was in flight: nothing is confirmed, and the
    // captured money goes back (a late webhook or POST /api/payments, or reconciliation at start).
    if (this.d.shows.get(row.show_id)?.status === 'cancelled') {
      await this.refund(bookingId, SHOW_CANCELLED);
      if (row.status === 'pending_payment') await this.#finish(bookingId, 'failed', SHOW_CANCELLED);
      else await this.#giveBackUse(bookingId);
      return failure('RULE_VIOLATION', 'the show was cancelled; your payment has been refunded');
    }
    // Money captured for a lapsed booking (a late webhook, reconciliation): its discount stands only if
    // the offer grants the use again, as POST /api/payments checks before charging; else it is refunded.
    if (row.status !== 'pending_payment' && row.offer_id) {
      const refused = await this.d.offers.retakeUse(bookingId, row.offer_id, row.user_id);
      if (refused) {
        await this.refund(bookingId, 'the promo code no longer applied when the payment arrived');
        return { ...refused, message: `${refused.message}; your payment has been refunded` };
      }
    }
    const reply = await this.d.router.send(row.show_id, {
      type: 'confirm',
      holdId: row.hold_id,
      bookingId,
      ownerId: row.user_id,
      seats,
      allowRehold: true,
      nowMs: this.d.now(),
    });
    if (!reply.ok) {
      if (
        reply.code === 'HOLD_EXPIRED' ||
        reply.code === 'SEATS_UNAVAILABLE' ||
        reply.code === 'HOLD_NOT_FOUND'
      ) {
        await this.refund(bookingId, 'the seats were lost before payment completed');
        await this.#finish(bookingId, 'expired', 'seats lost before payment; refunded');
        // A late payment took its promo use again; with the seats gone it goes back.
        await this.#giveBackUse(bookingId);
        return seatsLost(reply.seats ?? seats);
      }
      return refusal(reply);
    }
    this.d.holds.forget(row.hold_id);
    this.d.afterActorConfirm?.();
    return { ok: true, booking: await this.#confirmInDb(row) };
  }

  /**
   * `row`: the booking as settleSucceeded read it (its user, show, seats and amount do not change), with
   * its user's name and contact as they were then.
   */
  async #confirmInDb(row: BookingToSettle): Promise<Booking> {
    const { store } = this.d;
    const bookingId = row.id;
    const show = this.d.shows.get(row.show_id);
    const user = { name: row.user_name, email: row.user_email, phone: row.user_phone };
    const seats = JSON.parse(row.seats) as string[];
    // Signed before the transaction: it holds only statements.
    const code = this.d.tickets.sign({
      bookingId,
      showId: row.show_id,
      seats,
      holderName: user.name,
      userId: row.user_id,
      startTime: show?.startTime ?? new Date(this.d.now()).toISOString(),
    });
    const now = this.#iso();
    const confirmed = await store.transaction(async (tx) => {
      // Confirmed exactly once, whoever races (POST /api/payments, the webhook, reconciliation): the
      // conditional UPDATE changes the row for one of them (a row comes back), and only that one issues
      // the ticket and sends the confirmation. RETURNING gives the answer's row without another read.
      const updated = await tx.get<BookingRow>(
        "UPDATE bookings SET status = 'confirmed', confirmed_at = ?, updated_at = ? WHERE id = ? AND status IN ('pending_payment', 'expired', 'failed') RETURNING *",
        [now, now, bookingId],
      );
      if (!updated) return undefined;
      const data = {
        bookingId,
        userName: user.name,
        movieTitle: show?.movieTitle ?? '',
        theaterName: show?.theaterName ?? '',
        screenName: show?.screenName ?? '',
        city: show?.city ?? '',
        startTime: show?.startTime ?? '',
        // The show cache's zone spares a read per message; without the show, the outbox reads it.
        ...(show ? { timeZone: show.timeZone } : {}),
        seats,
        amount: { total: row.total, currency: row.currency },
        ticketCode: code.code,
      };
      const messages: NotificationInput[] = [];
      const notify = (channel: 'email' | 'sms', template: string, recipient: string, sendAt: string) =>
        messages.push({ userId: row.user_id, bookingId, channel, template, recipient, data, sendAt });
      notify('email', 'booking_confirmed', user.email, now);
      if (user.phone) notify('sms', 'booking_confirmed', user.phone, now);
      if (show) {
        const remindAtMs = show.startMs - this.d.config.REMINDER_MINUTES_BEFORE * 60_000;
        if (remindAtMs > this.d.now()) {
          const at = new Date(remindAtMs).toISOString();
          notify('email', 'show_reminder', user.email, at);
          if (user.phone) notify('sms', 'show_reminder', user.phone, at);
        }
      }
      // The event, the ticket and the notifications (two statements for all of them) need no answer
      // from each other: made together, they share one round trip on PostgreSQL.
      // A late-paid booking's promo use was taken again, within the limits, by settleSucceeded.
      await Promise.all([
        tx.run(INSERT_EVENT, [bookingId, 'confirmed', now, null]),
        tx.run(
          `INSERT INTO tickets (booking_id, code, kid, issued_at, revoked_at, checked_in_at) VALUES (?, ?, ?, ?, NULL, NULL)
           ON CONFLICT (booking_id) DO UPDATE SET code = excluded.code, kid = excluded.kid, issued_at = excluded.issued_at,
             revoked_at = NULL, checked_in_at = NULL`,
          [bookingId, code.code, code.kid, now],
        ),
        enqueueNotifications(tx, messages),
      ]);
      return updated;
    });
    this.d.metrics.bookings.inc({ status: 'confirmed' });
    // The ticket just issued is the one a read would find; someone else confirmed it first: their row
    // (and ticket) is the one to show.
    return confirmed ? toBooking(confirmed, code.code) : this.view((await this.row(bookingId))!);
  }

  /** Payment failed: the booking fails, its seats go back on sale, its promo use is returned. */
  async fail(bookingId: string, reason: string, status: 'failed' | 'cancelled' = 'failed'): Promise<void> {
    const row = await this.row(bookingId);
    // A late payment of a lapsed booking that failed: the promo use it took again goes back.
    if (row?.status === 'expired' || row?.status === 'failed') await this.#giveBackUse(bookingId);
    if (row?.status !== 'pending_payment') return;
    // One commit: a crash between the payment's failure and the booking's end would leave a pending
    // booking that reconciliation skips (its payment is already failed) until its hold lapses.
    const isChanged = await this.d.store.transaction(async (tx) => {
      await this.#recordPayment(tx, bookingId, 'failed', { failureReason: reason });
      return this.#finishOn(tx, bookingId, status, reason);
    });
    if (isChanged) this.d.metrics.bookings.inc({ status });
    await this.#releaseHold(row);
  }

  async #releaseHold(row: BookingRow): Promise<void> {
    const reply = await this.d.router
      .send(row.show_id, { type: 'release', holdId: row.hold_id, ownerId: row.user_id, nowMs: this.d.now() })
      .catch((err: unknown) => {
        this.d.logger.warn({ err, bookingId: row.id }, 'could not release hold; it will expire');
        return undefined;
      });
    if (reply?.ok) this.d.holds.forget(row.hold_id);
    if (reply && !reply.ok && reply.code !== 'HOLD_NOT_FOUND' && reply.code !== 'HOLD_EXPIRED')
      this.d.logger.warn({ bookingId: row.id, code: reply.code }, 'hold release refused');
  }

  /** Moves a pending booking to a final state and gives its promo use back; any other status stays. */
  async #finish(
    bookingId: string,
    status: 'failed' | 'expired' | 'cancelled',
    detail: string,
  ): Promise<void> {
    const isChanged = await this.d.store.transaction((tx) => this.#finishOn(tx, bookingId, status, detail));
    if (isChanged) this.d.metrics.bookings.inc({ status });
  }

  async #finishOn(
    tx: Queryable,
    bookingId: string,
    status: 'failed' | 'expired' | 'cancelled',
    detail: string,
  ): Promise<boolean> {
    const now = this.#iso();
    // Racing ends (a payment failing while the sweep expires it): the conditional UPDATE lets one
    // change the status, and only that one records the event and gives the promo use back.
    const changed = await tx.run(SET_STATUS, [status, now, bookingId, 'pending_payment']);
    if (changed.changes !== 1) return false;
    if (status === 'cancelled')
      await tx.run('UPDATE bookings SET cancelled_at = ? WHERE id = ?', [now, bookingId]);
    await tx.run(INSERT_EVENT, [bookingId, status, now, detail]);
    await this.d.offers.giveBackUse(tx, bookingId);
    return true;
  }

  /** A booking's promo use back, in a transaction of its own (the DELETE and the count together). */
  #giveBackUse(bookingId: string): Promise<void> {
    return this.d.store.transaction((tx) => this.d.offers.giveBackUse(tx, bookingId));
  }

  async refund(bookingId: string, reason: string): Promise<void> {
    const payment = await this.#paymentOf(this.d.store, bookingId);
    if (payment?.status !== 'succeeded') return;
    const refunded = await this.d.payments.refund({
      intentId: payment.intent_id,
      idempotencyKey: `refund-${bookingId}`,
    });
    if (refunded.ok) {
      // Racing callers (two cancels, a cancel and a webhook) get the same refund from the provider, by
      // its idempotency key; the conditional UPDATE lets only the first record it.
      await this.d.store.transaction(async (tx) => {
        const changed = await tx.run(
          "UPDATE payments SET status = 'refunded', refund_id = ?, refunded_amount = amount, updated_at = ? WHERE booking_id = ? AND status <> 'refunded'",
          [refunded.refundId ?? null, this.#iso(), bookingId],
        );
        if (changed.changes > 0) await tx.run(INSERT_EVENT, [bookingId, 'refunded', this.#iso(), reason]);
      });
    } else
      this.d.logger.error({ bookingId, code: refunded.code }, 'refund failed; reconciliation will retry');
  }

  async #insertPayment(
    q: Queryable,
    bookingId: string,
    method: PaymentMethod,
    amount: { total: number; currency: string },
    intent: CreatedIntent,
    now: string,
  ): Promise<void> {
    await q.run(
      `INSERT INTO payments (id, booking_id, provider, intent_id, method, amount, currency, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        newId('pay'),
        bookingId,
        this.d.payments.name,
        intent.intentId,
        method,
        amount.total,
        amount.currency,
        intent.status,
        now,
        now,
      ],
    );
  }

  async #recordPayment(
    q: Queryable,
    bookingId: string,
    status: string,
    outcome: { cardBrand?: string; cardLast4?: string; failureReason?: string },
  ): Promise<void> {
    await q.run(
      `UPDATE payments SET status = ?, card_brand = COALESCE(?, card_brand), card_last4 = COALESCE(?, card_last4),
         failure_reason = ?, updated_at = ? WHERE booking_id = ? AND status NOT IN ('refunded')`,
      [
        status,
        outcome.cardBrand ?? null,
        outcome.cardLast4 ?? null,
        outcome.failureReason ?? null,
        this.#iso(),
        bookingId,
      ],
    );
    this.d.metrics.payments.inc({ provider: this.d.payments.name, outcome: status });
  }

  /** Cancels a confirmed booking before the cut-off: seats back on sale, refund, ticket revoked. */
  async cancel(
    user: { id: string; role: string },
    bookingId: string,
  ): Promise<{ ok: true; booking: Booking } | Failure> {
    const found = await this.get(user, bookingId);
    if (!found.ok) return found;
    const { row } = found;
    if (row.status === 'cancelled') return { ok: true, booking: found.booking };
    if (row.status === 'pending_payment') {
      // API.md's cancel row answers `cancelled` whether or not the booking was paid: the customer
      // ended it, which a `failed` booking (the provider or the rules ended it) would not say.
      await this.fail(bookingId, 'cancelled before payment', 'cancelled');
      return { ok: true, booking: await this.view((await this.row(bookingId))!) };
    }
    if (row.status !== 'confirmed') return failure('INVALID_STATE', `booking ${bookingId} is ${row.status}`);
    const show = this.d.shows.get(row.show_id);
    const cutoffMs = (show?.startMs ?? 0) - this.d.config.CANCELLATION_CUTOFF_MINUTES * 60_000;
    if (this.d.now() >= cutoffMs)
      return failure(
        'CANCELLATION_CLOSED',
        `bookings can be cancelled until ${this.d.config.CANCELLATION_CUTOFF_MINUTES} minutes before the show`,
        { cutoff: new Date(cutoffMs).toISOString() },
      );
    await this.#cancelConfirmed(row, 'cancelled by the customer');
    return { ok: true, booking: await this.view((await this.row(bookingId))!) };
  }

  /**
   * Recorded first, released second: a crash in between leaves the seats off sale (the sweep releases
   * them), never a valid ticket for seats someone else can buy. Then the refund (retried at start).
   */
  async #cancelConfirmed(row: BookingRow, reason: string, notice?: string): Promise<void> {
    await this.#cancelInDb(row, notice);
    await this.#releaseCancelledSeats(row.id, row.show_id);
    await this.refund(row.id, reason);
  }

  /**
   * The theater cancelled the show: every confirmed booking is cancelled and refunded whatever the
   * cut-off (the customer is told why), and every unpaid one fails. Idempotent, and safe to race with
   * itself, a customer's cancel or a payment: each step is conditional on the booking's status.
   */
  async cancelForShow(showId: string): Promise<{ cancelled: number; failed: number }> {
    const rows = await this.d.store.all<BookingRow>(
      "SELECT * FROM bookings WHERE show_id = ? AND status IN ('confirmed', 'pending_payment')",
      [showId],
    );
    let cancelled = 0;
    let failed = 0;
    for (const row of rows) {
      if (row.status === 'pending_payment') {
        // The booking ends, but its payment row keeps the provider's state: a UPI or wallet payment
        // may still be captured, and then it is refunded (settleSucceeded, reconciliation).
        await this.#finish(row.id, 'failed', SHOW_CANCELLED);
        await this.#releaseHold(row);
        failed++;
      } else {
        await this.#cancelConfirmed(row, SHOW_CANCELLED, SHOW_CANCELLED_NOTICE);
        cancelled++;
      }
    }
    if (rows.length > 0)
      this.d.logger.info({ showId, cancelled, failed }, 'bookings of a cancelled show settled');
    return { cancelled, failed };
  }

  /** Bookings still open on cancelled shows (a crash during `cancelForShow`): settled by the sweep. */
  async settleCancelledShows(): Promise<number> {
    const shows = await this.d.store.all<{ show_id: string }>(
      `SELECT DISTINCT b.show_id FROM bookings b JOIN shows s ON s.id = b.show_id
         WHERE s.status = 'cancelled' AND b.status IN ('confirmed', 'pending_payment') LIMIT ?`,
      [MAX_SWEEP_BATCH],
    );
    let settled = 0;
    for (const { show_id } of shows) {
      const { cancelled, failed } = await this.cancelForShow(show_id);
      settled += cancelled + failed;
    }
    return settled;
  }

  /** Puts a cancelled booking's seats back on sale through its actor; false if the actor could not. */
  async #releaseCancelledSeats(bookingId: string, showId: string): Promise<boolean> {
    const reply = await this.d.router.send(showId, { type: 'cancel', bookingId, nowMs: this.d.now() });
    if (!reply.ok && reply.code !== 'BOOKING_NOT_FOUND') {
      this.d.logger.warn({ bookingId, code: reply.code }, 'seats of a cancelled booking not yet released');
      return false;
    }
    await this.d.store.run('UPDATE bookings SET seats_released_at = ? WHERE id = ?', [
      this.#iso(),
      bookingId,
    ]);
    return true;
  }

  /** Cancelled bookings whose seats the actor has not yet released (a crash or a failed worker between). */
  async releasePendingSeats(): Promise<number> {
    const rows = await this.d.store.all<{ id: string; show_id: string }>(
      "SELECT id, show_id FROM bookings WHERE status = 'cancelled' AND seats_released_at IS NULL LIMIT ?",
      [MAX_SWEEP_BATCH],
    );
    let released = 0;
    for (const row of rows) if (await this.#releaseCancelledSeats(row.id, row.show_id)) released++;
    return released;
  }

  /** Records the cancellation (ticket revoked, promo use back, reminder withdrawn, customer told). */
  async #cancelInDb(row: BookingRow, notice?: string): Promise<void> {
    const now = this.#iso();
    const isChanged = await this.d.store.transaction(async (tx) => {
      // Racing cancels (the customer and the theater): the conditional UPDATE lets one of them cancel,
      // and only that one revokes, gives back and tells the customer.
      const changed = await tx.run(SET_STATUS, ['cancelled', now, row.id, 'confirmed']);
      if (changed.changes === 0) return false;
      await tx.run('UPDATE bookings SET cancelled_at = ? WHERE id = ?', [now, row.id]);
      await tx.run(INSERT_EVENT, [row.id, 'cancelled', now, null]);
      await tx.run('UPDATE tickets SET revoked_at = ? WHERE booking_id = ?', [now, row.id]);
      await this.d.offers.giveBackUse(tx, row.id);
      await this.d.withdrawRatings(tx, row.user_id, row.show_id);
      await cancelBookingReminders(tx, row.id, this.d.now());
      const user = (await tx.get<{ email: string; phone: string | null }>(
        'SELECT email, phone FROM users WHERE id = ?',
        [row.user_id],
      ))!;
      const show = this.d.shows.get(row.show_id);
      const data = {
        bookingId: row.id,
        movieTitle: show?.movieTitle ?? '',
        theaterName: show?.theaterName ?? '',
        startTime: show?.startTime ?? '',
        ...(show ? { timeZone: show.timeZone } : {}),
        seats: JSON.parse(row.seats),
        amount: { total: row.total, currency: row.currency },
        ...(notice ? { reason: notice } : {}),
      };
      const message = (channel: 'email' | 'sms', recipient: string): NotificationInput => ({
        userId: row.user_id,
        bookingId: row.id,
        channel,
        template: 'booking_cancelled',
        recipient,
        data,
        sendAt: now,
      });
      await enqueueNotifications(tx, [
        message('email', user.email),
        ...(user.phone ? [message('sms', user.phone)] : []),
      ]);
      return true;
    });
    if (isChanged) this.d.metrics.bookings.inc({ status: 'cancelled' });
  }

  /** Webhook events drive the same transitions as POST /api/payments. */
  async onPaymentEvent(event: { type: string; intentId: string; failureReason?: string }): Promise<void> {
    const payment = await this.d.store.get<{ booking_id: string }>(
      'SELECT booking_id FROM payments WHERE intent_id = ?',
      [event.intentId],
    );
    if (!payment) {
      this.d.logger.warn({ intentId: event.intentId }, 'webhook for an unknown payment intent');
      return;
    }
    const bookingId = payment.booking_id;
    if (event.type === 'payment_succeeded') {
      await this.#recordPayment(this.d.store, bookingId, 'succeeded', {});
      await this.settleSucceeded(bookingId);
    } else if (event.type === 'payment_failed')
      await this.fail(bookingId, event.failureReason ?? 'payment failed');
    else if (event.type === 'refunded') {
      // Usually our own refund reported back (already recorded); else one made at the provider directly.
      // A replayed webhook: the conditional UPDATE records it once.
      await this.d.store.transaction(async (tx) => {
        const changed = await tx.run(
          "UPDATE payments SET status = 'refunded', refunded_amount = amount, updated_at = ? WHERE intent_id = ? AND status <> 'refunded'",
          [this.#iso(), event.intentId],
        );
        if (changed.changes > 0)
          await tx.run(INSERT_EVENT, [
            bookingId,
            'refunded',
            this.#iso(),
            'reported by the payment provider',
          ]);
      });
    }
  }

  /**
   * Pending bookings whose hold lapsed long ago become expired; their seats were freed by the actor. The
   * actor is asked first, because a hold extended after booking lives past the expiry the row recorded.
   * Never rejects (the server calls it from a timer); one sweep at a time.
   */
  async expireStale(): Promise<number> {
    if (this.#isSweeping) return 0;
    this.#isSweeping = true;
    try {
      const nowMs = this.d.now();
      const rows = await this.d.store.all<{ id: string; show_id: string; hold_id: string }>(
        "SELECT id, show_id, hold_id FROM bookings WHERE status = 'pending_payment' AND hold_expires_at < ? LIMIT ?",
        [new Date(nowMs - PENDING_GRACE_MS).toISOString(), MAX_SWEEP_BATCH],
      );
      let expired = 0;
      for (const row of rows) {
        const hold = await this.d.router.getHold(row.show_id, row.hold_id);
        if (hold && hold.expiresAtMs > this.d.now()) {
          await this.d.store.run(
            "UPDATE bookings SET hold_expires_at = ?, updated_at = ? WHERE id = ? AND status = 'pending_payment'",
            [new Date(hold.expiresAtMs).toISOString(), this.#iso(), row.id],
          );
          continue;
        }
        await this.#finish(row.id, 'expired', 'hold expired before payment');
        expired++;
      }
      return expired;
    } catch (err) {
      this.d.logger.error({ err }, 'booking expiry sweep failed; the next one retries');
      return 0;
    } finally {
      this.#isSweeping = false;
    }
  }

  /**
   * After a crash: every booking left pending asks the provider what happened. Succeeded → settle
   * (the actor's confirm is idempotent, so a confirm that reached the actor but not the db completes);
   * failed → fail. Bookings expired by the sweeper whose payment was captured or still in flight are
   * settled too (re-held, or refunded). Expired bookings that were never paid are not asked about: there
   * are as many of them as abandoned checkouts, and a provider call each would make every start slower.
   * Cancelled bookings whose refund did not go through are refunded.
   */
  async reconcile(options: { untouchedSince?: string } = {}): Promise<{
    settled: number;
    failed: number;
    refunded: number;
    released: number;
    ofCancelledShows: number;
  }> {
    // In a cluster the sweeper reconciles while other nodes serve: only bookings nobody has touched for
    // a while (their node died), so it does not ask the provider about every payment in flight.
    const untouched = options.untouchedSince === undefined ? '' : ' AND b.updated_at < ?';
    const rows = await this.d.store.all<{ id: string; intent_id: string }>(
      `SELECT b.id, p.intent_id FROM bookings b JOIN payments p ON p.booking_id = b.id
         WHERE ((b.status = 'pending_payment' AND p.status NOT IN ('refunded', 'failed'))
            OR (b.status IN ('expired', 'failed') AND p.status IN ('succeeded', 'processing', 'requires_action')))${untouched}`,
      options.untouchedSince === undefined ? [] : [options.untouchedSince],
    );
    let settled = 0;
    let failed = 0;
    for (const { id, intent_id } of rows) {
      const state = await this.d.payments.retrieve(intent_id);
      if (!state.ok) continue;
      if (state.status === 'succeeded') {
        await this.#recordPayment(this.d.store, id, 'succeeded', state);
        if ((await this.settleSucceeded(id)).ok) settled++;
      } else if (state.status === 'failed') {
        if ((await this.row(id))?.status === 'pending_payment')
          await this.fail(id, state.failureReason ?? 'payment failed');
        else await this.#recordPayment(this.d.store, id, 'failed', state);
        failed++;
      }
    }
    const refunded = await this.#retryRefunds(Number.MAX_SAFE_INTEGER);
    const released = await this.releasePendingSeats();
    const ofCancelledShows = await this.settleCancelledShows();
    return { settled, failed, refunded, released, ofCancelledShows };
  }

  /** Cancelled bookings whose refund failed (the provider was down): tried again. */
  async #retryRefunds(limit: number): Promise<number> {
    const unrefunded = await this.d.store.all<{ id: string }>(
      `SELECT b.id FROM bookings b JOIN payments p ON p.booking_id = b.id
         WHERE b.status = 'cancelled' AND p.status = 'succeeded' LIMIT ?`,
      [limit],
    );
    for (const { id } of unrefunded) await this.refund(id, 'cancelled; refund retried');
    return unrefunded.length;
  }

  /**
   * The periodic sweep's settling of what an interruption left: seats of cancelled bookings not yet
   * released, bookings still open on cancelled shows, refunds that failed. One pass at a time: a slow
   * provider must not stack passes repeating the same calls.
   */
  async settleStragglers(): Promise<void> {
    if (this.#isSettling) return;
    this.#isSettling = true;
    try {
      await this.releasePendingSeats();
      await this.settleCancelledShows();
      await this.#retryRefunds(MAX_SWEEP_BATCH);
    } finally {
      this.#isSettling = false;
    }
  }
}

/**
 * The outcomes POST /api/payments records as they are (captured, or still in flight); a decline is
 * recorded by `fail`, with the booking's own change.
 */
function isRecordedHere(status: string): boolean {
  return status !== 'failed' && status !== 'refunded' && status !== 'canceled';
}

/** 410: the hold lapsed and someone else took (some of) the seats; any capture has been refunded. */
function seatsLost(seats: string[]): Failure {
  return failure(
    'HOLD_EXPIRED',
    'the hold expired and the seats were taken; your payment has been refunded',
    {
      seats,
    },
  );
}

class RollbackWith extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}
