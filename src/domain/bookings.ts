/**
 * @module bookings
 * The booking saga: hold (actor) → booking pending_payment (app db) → payment intent (provider) →
 * payment succeeded → confirm(holdId, bookingId) (actor, idempotent) → booking confirmed, ticket and
 * notifications in one app-db transaction. The actor is the truth for seats; the app db for money and
 * people. Every step can be repeated safely, which is what reconciliation after a crash relies on.
 */

import type { Statement } from 'better-sqlite3';
import type { ShardRouter } from '../actors/shard-router.js';
import type { Config } from '../config.js';
import { newId } from '../ids.js';
import { cancelBookingReminders, enqueueNotification } from '../jobs/outbox.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { CreatedIntent, PaymentProvider } from '../payments/payment-provider.js';
import type { AppDb } from '../persistence/app-db.js';
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
  db: AppDb;
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
  /** Called in the cancel transaction: withdraws the rating the booking qualified (CatalogService). */
  withdrawRatings: (userId: string, showId: string) => void;
  /** Test-only fault injection: called right after the actor confirmed, before the app db is updated. */
  afterActorConfirm?: () => void;
}

export class BookingService {
  readonly #get;
  readonly #ticketOf;
  readonly #setStatus;
  readonly #event;
  readonly #payment;
  #isSweeping = false;
  #isSettling = false;

  constructor(private readonly d: BookingDeps) {
    const { db } = d;
    this.#get = db.prepare('SELECT * FROM bookings WHERE id = ?');
    this.#ticketOf = db
      .prepare('SELECT code FROM tickets WHERE booking_id = ? AND revoked_at IS NULL')
      .pluck();
    this.#setStatus = db.prepare(
      'UPDATE bookings SET status = ?, updated_at = ? WHERE id = ? AND status = ?',
    );
    this.#event = db.prepare(
      'INSERT INTO booking_events (booking_id, status, at, detail) VALUES (?, ?, ?, ?)',
    );
    this.#payment = db.prepare(
      'SELECT * FROM payments WHERE booking_id = ? ORDER BY created_at DESC LIMIT 1',
    );
  }

  /**
   * The booking path's other statements, prepared on first use and kept: better-sqlite3 compiles the SQL
   * on every `prepare`, which cost the HTTP thread ~2.5% of a full booking's samples. Keyed by SQL text,
   * all literals of this file, so the map stays small. A statement's `pluck` mode sticks to it: a text is
   * always used the same way here.
   */
  readonly #statements = new Map<string, Statement>();

  #sql(source: string): Statement {
    let statement = this.#statements.get(source);
    if (!statement) {
      statement = this.d.db.prepare(source);
      this.#statements.set(source, statement);
    }
    return statement;
  }

  #iso(): string {
    return new Date(this.d.now()).toISOString();
  }

  row(id: string): BookingRow | undefined {
    return this.#get.get(id) as BookingRow | undefined;
  }

  view(row: BookingRow): Booking {
    return toBooking(
      row,
      row.status === 'confirmed' ? (this.#ticketOf.get(row.id) as string | undefined) : undefined,
    );
  }

  /** The caller's booking, or NOT_FOUND / FORBIDDEN (admins may read any). */
  get(
    user: { id: string; role: string },
    id: string,
  ): { ok: true; booking: Booking; row: BookingRow } | Failure {
    const row = this.row(id);
    if (!row) return failure('BOOKING_NOT_FOUND', `no booking ${id}`);
    if (row.user_id !== user.id && user.role !== 'admin')
      return failure('FORBIDDEN', 'this booking is not yours');
    return { ok: true, booking: this.view(row), row };
  }

  /** Prices the seats from the show's categories, then the promo code, then fees, in minor units. */
  price(show: ShowInfo, seats: string[], promoCode: string | undefined, userId: string | undefined) {
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
      const evaluated = this.d.offers.evaluate(promoCode, userId, show, subtotal);
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
    const priced = this.price(show, hold.seats, input.promoCode, userId);
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
    const taken = this.d.db.transaction(() => {
      // One booking per hold: a second booking of the same hold would pay twice for the same seats.
      const existing = this.#sql(
        "SELECT id FROM bookings WHERE hold_id = ? AND status IN ('pending_payment', 'confirmed')",
      )
        .pluck()
        .get(hold.id) as string | undefined;
      if (existing)
        return failure('CONFLICT', `hold ${hold.id} already has booking ${existing}`, {
          bookingId: existing,
        });
      this.#sql(
        `INSERT INTO bookings (id, user_id, show_id, hold_id, hold_expires_at, seats, status, subtotal, discount, fees,
             total, currency, promo_code, offer_id, payment_method, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'pending_payment', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
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
      );
      this.#event.run(id, 'pending_payment', now, null);
      if (priced.offer) {
        const refused = this.d.offers.takeUse(priced.offer, userId, id);
        if (refused) throw new RollbackWith(refused);
      }
      // A ledger in this database: the intent and its payment row commit with the booking, one commit.
      if (ledger) {
        intent = ledger.createIntent(intentInput);
        if (intent.ok) this.#insertPayment(id, input.paymentMethod, priced.amount, intent, now);
      }
      return undefined;
    });
    let refused: Failure | undefined;
    try {
      refused = taken();
    } catch (err) {
      if (!(err instanceof RollbackWith)) throw err;
      refused = err.failure;
    }
    if (refused) {
      await releaseOurHold();
      return refused;
    }
    if (!intent) {
      // A remote provider: its intent follows the booking's commit, and its payment row follows it.
      intent = await this.d.payments.createIntent(intentInput);
      if (intent.ok) this.#insertPayment(id, input.paymentMethod, priced.amount, intent, now);
    }
    if (!intent.ok) {
      this.#finish(id, 'failed', `payment intent: ${intent.message}`);
      await this.#releaseHold(this.row(id)!);
      return failure('PROVIDER_UNAVAILABLE', 'the payment provider is unavailable; try again');
    }
    this.d.metrics.bookings.inc({ status: 'pending_payment' });
    const created = this.row(id)!;
    // The show was cancelled while the intent was being made: the booking has already failed, and a
    // 201 would hand out a payable intent for it.
    if (created.status !== 'pending_payment')
      return failure('RULE_VIOLATION', 'this show has been cancelled');
    return {
      ok: true,
      booking: this.view(created),
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
    const found = this.get(user, bookingId);
    if (!found.ok) return found;
    const { row } = found;
    if (row.status === 'confirmed') return { ok: true as const, booking: found.booking };
    if (row.status === 'cancelled' || row.status === 'failed')
      return failure('INVALID_STATE', `booking ${bookingId} is ${row.status}`);
    const payment = this.#payment.get(bookingId) as { intent_id: string; status: string } | undefined;
    if (!payment) return failure('INVALID_STATE', 'this booking has no payment intent');
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
      const refused = this.d.offers.retakeUse(bookingId, row.offer_id, row.user_id);
      if (refused) return refused;
    }
    const confirmInput = { intentId: payment.intent_id, ...proof, idempotencyKey: `confirm-${bookingId}` };
    const ledger = this.d.payments.inTransaction;
    // A ledger in this database: the capture and the payment row commit together, before the actor's
    // confirm (a crash after it finds the money recorded as captured, which reconciliation settles).
    const isRecorded = ledger !== undefined;
    const outcome = ledger
      ? this.d.db.transaction(() => {
          const state = ledger.confirm(confirmInput);
          if (state.ok && isRecordedHere(state.status)) this.#recordPayment(bookingId, state.status, state);
          return state;
        })()
      : await this.d.payments.confirm(confirmInput);
    if (!outcome.ok) {
      if (outcome.code === 'PAYMENT_FAILED') {
        await this.fail(bookingId, outcome.message);
        return failure('PAYMENT_FAILED', outcome.message, outcome.details);
      }
      if (isLate) this.d.offers.giveBackUse(bookingId);
      return outcome;
    }
    if (outcome.status === 'failed') {
      await this.fail(bookingId, outcome.failureReason ?? 'payment failed');
      return failure('PAYMENT_FAILED', `the payment failed: ${outcome.failureReason ?? 'declined'}`, {
        reason: outcome.failureReason,
      });
    }
    if (outcome.status === 'refunded' || outcome.status === 'canceled') {
      if (isLate) this.d.offers.giveBackUse(bookingId);
      return failure('INVALID_STATE', `the payment of booking ${bookingId} was ${outcome.status}`);
    }
    if (outcome.status !== 'succeeded') {
      // Processing (a UPI collect request, a pending wallet): the provider's webhook settles it.
      if (!isRecorded) this.#recordPayment(bookingId, outcome.status, outcome);
      return { ok: true as const, booking: this.view(this.row(bookingId)!), paymentStatus: outcome.status };
    }
    if (!isRecorded) this.#recordPayment(bookingId, 'succeeded', outcome);
    return this.settleSucceeded(bookingId);
  }

  /**
   * The payment succeeded: confirm the seats with the actor (re-holding them if the hold lapsed), then
   * the booking, ticket and notifications in one transaction. If the seats are gone: refund, 410.
   * Idempotent: webhooks, retries and reconciliation all call it.
   */
  async settleSucceeded(bookingId: string): Promise<{ ok: true; booking: Booking } | Failure> {
    const row = this.row(bookingId);
    if (!row) return failure('BOOKING_NOT_FOUND', `no booking ${bookingId}`);
    if (row.status === 'confirmed') return { ok: true, booking: this.view(row) };
    if (row.status === 'cancelled') {
      // Cancelled before payment, then captured anyway (a UPI collect approved late): give it back.
      const late = this.#payment.get(bookingId) as { status: string } | undefined;
      if (row.confirmed_at === null && late?.status === 'succeeded')
        await this.refund(bookingId, 'cancelled before payment');
      return failure('INVALID_STATE', 'this booking was cancelled');
    }
    const seats = JSON.parse(row.seats) as string[];
    // Only captured money books seats: a replayed success webhook after a refund must not.
    const payment = this.#payment.get(bookingId) as { status: string } | undefined;
    if (payment?.status !== 'succeeded') {
      if (row.status === 'expired' && payment?.status === 'refunded') return seatsLost(seats);
      return failure(
        'INVALID_STATE',
        `the payment of booking ${bookingId} is ${payment?.status ?? 'missing'}`,
      );
    }
    // The theater cancelled the show while the payment was in flight: nothing is confirmed, and the
    // captured money goes back (a late webhook or POST /api/payments, or reconciliation at start).
    if (this.d.shows.get(row.show_id)?.status === 'cancelled') {
      await this.refund(bookingId, SHOW_CANCELLED);
      if (row.status === 'pending_payment') this.#finish(bookingId, 'failed', SHOW_CANCELLED);
      else this.d.offers.giveBackUse(bookingId);
      return failure('RULE_VIOLATION', 'the show was cancelled; your payment has been refunded');
    }
    // Money captured for a lapsed booking (a late webhook, reconciliation): its discount stands only if
    // the offer grants the use again, as POST /api/payments checks before charging; else it is refunded.
    if (row.status !== 'pending_payment' && row.offer_id) {
      const refused = this.d.offers.retakeUse(bookingId, row.offer_id, row.user_id);
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
        this.#finish(bookingId, 'expired', 'seats lost before payment; refunded');
        // A late payment took its promo use again; with the seats gone it goes back.
        this.d.offers.giveBackUse(bookingId);
        return seatsLost(reply.seats ?? seats);
      }
      return refusal(reply);
    }
    this.d.holds.forget(row.hold_id);
    this.d.afterActorConfirm?.();
    return { ok: true, booking: this.#confirmInDb(bookingId) };
  }

  #confirmInDb(bookingId: string): Booking {
    const db = this.d.db;
    const row = this.row(bookingId)!;
    const show = this.d.shows.get(row.show_id);
    const user = this.#sql('SELECT name, email, phone FROM users WHERE id = ?').get(row.user_id) as {
      name: string;
      email: string;
      phone: string | null;
    };
    const seats = JSON.parse(row.seats) as string[];
    const code = this.d.tickets.sign({
      bookingId,
      showId: row.show_id,
      seats,
      holderName: user.name,
      userId: row.user_id,
      startTime: show?.startTime ?? new Date(this.d.now()).toISOString(),
    });
    const now = this.#iso();
    db.transaction(() => {
      const changed = this.#sql(
        "UPDATE bookings SET status = 'confirmed', confirmed_at = ?, updated_at = ? WHERE id = ? AND status IN ('pending_payment', 'expired', 'failed')",
      ).run(now, now, bookingId).changes;
      if (changed === 0) return;
      this.#event.run(bookingId, 'confirmed', now, null);
      // A late-paid booking's promo use was taken again, within the limits, by settleSucceeded.
      this.#sql(
        'INSERT OR REPLACE INTO tickets (booking_id, code, kid, issued_at, revoked_at, checked_in_at) VALUES (?, ?, ?, ?, NULL, NULL)',
      ).run(bookingId, code.code, code.kid, now);
      const data = {
        bookingId,
        userName: user.name,
        movieTitle: show?.movieTitle ?? '',
        theaterName: show?.theaterName ?? '',
        screenName: show?.screenName ?? '',
        city: show?.city ?? '',
        startTime: show?.startTime ?? '',
        seats,
        amount: { total: row.total, currency: row.currency },
        ticketCode: code.code,
      };
      const notify = (channel: 'email' | 'sms', template: string, recipient: string, sendAt: string) =>
        enqueueNotification(db, {
          userId: row.user_id,
          bookingId,
          channel,
          template,
          recipient,
          data,
          sendAt,
        });
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
    })();
    this.d.metrics.bookings.inc({ status: 'confirmed' });
    return this.view(this.row(bookingId)!);
  }

  /** Payment failed: the booking fails, its seats go back on sale, its promo use is returned. */
  async fail(bookingId: string, reason: string, status: 'failed' | 'cancelled' = 'failed'): Promise<void> {
    const row = this.row(bookingId);
    // A late payment of a lapsed booking that failed: the promo use it took again goes back.
    if (row?.status === 'expired' || row?.status === 'failed') this.d.offers.giveBackUse(bookingId);
    if (row?.status !== 'pending_payment') return;
    // One commit: a crash between the payment's failure and the booking's end would leave a pending
    // booking that reconciliation skips (its payment is already failed) until its hold lapses.
    this.d.db.transaction(() => {
      this.#recordPayment(bookingId, 'failed', { failureReason: reason });
      this.#finish(bookingId, status, reason);
    })();
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
  #finish(bookingId: string, status: 'failed' | 'expired' | 'cancelled', detail: string): void {
    const now = this.#iso();
    const isChanged = this.d.db.transaction(() => {
      const row = this.row(bookingId);
      if (row?.status !== 'pending_payment') return false;
      this.#setStatus.run(status, now, bookingId, row.status);
      if (status === 'cancelled')
        this.#sql('UPDATE bookings SET cancelled_at = ? WHERE id = ?').run(now, bookingId);
      this.#event.run(bookingId, status, now, detail);
      this.d.offers.giveBackUse(bookingId);
      return true;
    })();
    if (isChanged) this.d.metrics.bookings.inc({ status });
  }

  async refund(bookingId: string, reason: string): Promise<void> {
    const payment = this.#payment.get(bookingId) as { intent_id: string; status: string } | undefined;
    if (payment?.status !== 'succeeded') return;
    const refunded = await this.d.payments.refund({
      intentId: payment.intent_id,
      idempotencyKey: `refund-${bookingId}`,
    });
    if (refunded.ok) {
      // Racing callers (two cancels, a cancel and a webhook) get the same refund from the provider, by
      // its idempotency key; only the first records it.
      const changes = this.#sql(
        "UPDATE payments SET status = 'refunded', refund_id = ?, refunded_amount = amount, updated_at = ? WHERE booking_id = ? AND status <> 'refunded'",
      ).run(refunded.refundId ?? null, this.#iso(), bookingId).changes;
      if (changes > 0) this.#event.run(bookingId, 'refunded', this.#iso(), reason);
    } else
      this.d.logger.error({ bookingId, code: refunded.code }, 'refund failed; reconciliation will retry');
  }

  #insertPayment(
    bookingId: string,
    method: PaymentMethod,
    amount: { total: number; currency: string },
    intent: CreatedIntent,
    now: string,
  ): void {
    this.#sql(
      `INSERT INTO payments (id, booking_id, provider, intent_id, method, amount, currency, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
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
    );
  }

  #recordPayment(
    bookingId: string,
    status: string,
    outcome: { cardBrand?: string; cardLast4?: string; failureReason?: string },
  ): void {
    this.#sql(
      `UPDATE payments SET status = ?, card_brand = COALESCE(?, card_brand), card_last4 = COALESCE(?, card_last4),
         failure_reason = ?, updated_at = ? WHERE booking_id = ? AND status NOT IN ('refunded')`,
    ).run(
      status,
      outcome.cardBrand ?? null,
      outcome.cardLast4 ?? null,
      outcome.failureReason ?? null,
      this.#iso(),
      bookingId,
    );
    this.d.metrics.payments.inc({ provider: this.d.payments.name, outcome: status });
  }

  /** Cancels a confirmed booking before the cut-off: seats back on sale, refund, ticket revoked. */
  async cancel(
    user: { id: string; role: string },
    bookingId: string,
  ): Promise<{ ok: true; booking: Booking } | Failure> {
    const found = this.get(user, bookingId);
    if (!found.ok) return found;
    const { row } = found;
    if (row.status === 'cancelled') return { ok: true, booking: found.booking };
    if (row.status === 'pending_payment') {
      // API.md's cancel row answers `cancelled` whether or not the booking was paid: the customer
      // ended it, which a `failed` booking (the provider or the rules ended it) would not say.
      await this.fail(bookingId, 'cancelled before payment', 'cancelled');
      return { ok: true, booking: this.view(this.row(bookingId)!) };
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
    return { ok: true, booking: this.view(this.row(bookingId)!) };
  }

  /**
   * Recorded first, released second: a crash in between leaves the seats off sale (the sweep releases
   * them), never a valid ticket for seats someone else can buy. Then the refund (retried at start).
   */
  async #cancelConfirmed(row: BookingRow, reason: string, notice?: string): Promise<void> {
    this.#cancelInDb(row, notice);
    await this.#releaseCancelledSeats(row.id, row.show_id);
    await this.refund(row.id, reason);
  }

  /**
   * The theater cancelled the show: every confirmed booking is cancelled and refunded whatever the
   * cut-off (the customer is told why), and every unpaid one fails. Idempotent, and safe to race with
   * itself, a customer's cancel or a payment: each step is conditional on the booking's status.
   */
  async cancelForShow(showId: string): Promise<{ cancelled: number; failed: number }> {
    const rows = this.#sql(
      "SELECT * FROM bookings WHERE show_id = ? AND status IN ('confirmed', 'pending_payment')",
    ).all(showId) as BookingRow[];
    let cancelled = 0;
    let failed = 0;
    for (const row of rows) {
      if (row.status === 'pending_payment') {
        // The booking ends, but its payment row keeps the provider's state: a UPI or wallet payment
        // may still be captured, and then it is refunded (settleSucceeded, reconciliation).
        this.#finish(row.id, 'failed', SHOW_CANCELLED);
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
    const showIds = this.#sql(
      `SELECT DISTINCT b.show_id FROM bookings b JOIN shows s ON s.id = b.show_id
         WHERE s.status = 'cancelled' AND b.status IN ('confirmed', 'pending_payment') LIMIT ?`,
    )
      .pluck()
      .all(MAX_SWEEP_BATCH) as string[];
    let settled = 0;
    for (const showId of showIds) {
      const { cancelled, failed } = await this.cancelForShow(showId);
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
    this.#sql('UPDATE bookings SET seats_released_at = ? WHERE id = ?').run(this.#iso(), bookingId);
    return true;
  }

  /** Cancelled bookings whose seats the actor has not yet released (a crash or a failed worker between). */
  async releasePendingSeats(): Promise<number> {
    const rows = this.#sql(
      "SELECT id, show_id FROM bookings WHERE status = 'cancelled' AND seats_released_at IS NULL LIMIT ?",
    ).all(MAX_SWEEP_BATCH) as { id: string; show_id: string }[];
    let released = 0;
    for (const row of rows) if (await this.#releaseCancelledSeats(row.id, row.show_id)) released++;
    return released;
  }

  /** Records the cancellation (ticket revoked, promo use back, reminder withdrawn, customer told). */
  #cancelInDb(row: BookingRow, notice?: string): void {
    const db = this.d.db;
    const now = this.#iso();
    const isChanged = db.transaction(() => {
      if (this.#setStatus.run('cancelled', now, row.id, 'confirmed').changes === 0) return false;
      this.#sql('UPDATE bookings SET cancelled_at = ? WHERE id = ?').run(now, row.id);
      this.#event.run(row.id, 'cancelled', now, null);
      this.#sql('UPDATE tickets SET revoked_at = ? WHERE booking_id = ?').run(now, row.id);
      this.d.offers.giveBackUse(row.id);
      this.d.withdrawRatings(row.user_id, row.show_id);
      cancelBookingReminders(db, row.id, this.d.now());
      const user = this.#sql('SELECT email, phone FROM users WHERE id = ?').get(row.user_id) as {
        email: string;
        phone: string | null;
      };
      const show = this.d.shows.get(row.show_id);
      const data = {
        bookingId: row.id,
        movieTitle: show?.movieTitle ?? '',
        theaterName: show?.theaterName ?? '',
        startTime: show?.startTime ?? '',
        seats: JSON.parse(row.seats),
        amount: { total: row.total, currency: row.currency },
        ...(notice ? { reason: notice } : {}),
      };
      const enqueue = (channel: 'email' | 'sms', recipient: string) =>
        enqueueNotification(db, {
          userId: row.user_id,
          bookingId: row.id,
          channel,
          template: 'booking_cancelled',
          recipient,
          data,
          sendAt: now,
        });
      enqueue('email', user.email);
      if (user.phone) enqueue('sms', user.phone);
      return true;
    })();
    if (isChanged) this.d.metrics.bookings.inc({ status: 'cancelled' });
  }

  /** Webhook events drive the same transitions as POST /api/payments. */
  async onPaymentEvent(event: { type: string; intentId: string; failureReason?: string }): Promise<void> {
    const payment = this.#sql('SELECT booking_id FROM payments WHERE intent_id = ?')
      .pluck()
      .get(event.intentId) as string | undefined;
    if (!payment) {
      this.d.logger.warn({ intentId: event.intentId }, 'webhook for an unknown payment intent');
      return;
    }
    if (event.type === 'payment_succeeded') {
      this.#recordPayment(payment, 'succeeded', {});
      await this.settleSucceeded(payment);
    } else if (event.type === 'payment_failed')
      await this.fail(payment, event.failureReason ?? 'payment failed');
    else if (event.type === 'refunded') {
      // Usually our own refund reported back (already recorded); else one made at the provider directly.
      const changes = this.#sql(
        "UPDATE payments SET status = 'refunded', refunded_amount = amount, updated_at = ? WHERE intent_id = ? AND status <> 'refunded'",
      ).run(this.#iso(), event.intentId).changes;
      if (changes > 0) this.#event.run(payment, 'refunded', this.#iso(), 'reported by the payment provider');
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
      const rows = this.#sql(
        "SELECT id, show_id, hold_id FROM bookings WHERE status = 'pending_payment' AND hold_expires_at < ? LIMIT ?",
      ).all(new Date(nowMs - PENDING_GRACE_MS).toISOString(), MAX_SWEEP_BATCH) as {
        id: string;
        show_id: string;
        hold_id: string;
      }[];
      let expired = 0;
      for (const row of rows) {
        const hold = await this.d.router.getHold(row.show_id, row.hold_id);
        if (hold && hold.expiresAtMs > this.d.now()) {
          this.#sql(
            "UPDATE bookings SET hold_expires_at = ?, updated_at = ? WHERE id = ? AND status = 'pending_payment'",
          ).run(new Date(hold.expiresAtMs).toISOString(), this.#iso(), row.id);
          continue;
        }
        this.#finish(row.id, 'expired', 'hold expired before payment');
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
  async reconcile(): Promise<{
    settled: number;
    failed: number;
    refunded: number;
    released: number;
    ofCancelledShows: number;
  }> {
    const rows = this.#sql(
      `SELECT b.id, p.intent_id FROM bookings b JOIN payments p ON p.booking_id = b.id
         WHERE (b.status = 'pending_payment' AND p.status NOT IN ('refunded', 'failed'))
            OR (b.status IN ('expired', 'failed') AND p.status IN ('succeeded', 'processing', 'requires_action'))`,
    ).all() as { id: string; intent_id: string }[];
    let settled = 0;
    let failed = 0;
    for (const { id, intent_id } of rows) {
      const state = await this.d.payments.retrieve(intent_id);
      if (!state.ok) continue;
      if (state.status === 'succeeded') {
        this.#recordPayment(id, 'succeeded', state);
        if ((await this.settleSucceeded(id)).ok) settled++;
      } else if (state.status === 'failed') {
        if (this.row(id)?.status === 'pending_payment')
          await this.fail(id, state.failureReason ?? 'payment failed');
        else this.#recordPayment(id, 'failed', state);
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
    const unrefunded = this.#sql(
      `SELECT b.id FROM bookings b JOIN payments p ON p.booking_id = b.id
         WHERE b.status = 'cancelled' AND p.status = 'succeeded' LIMIT ?`,
    )
      .pluck()
      .all(limit) as string[];
    for (const id of unrefunded) await this.refund(id, 'cancelled; refund retried');
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
