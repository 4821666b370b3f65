/**
 * @module http/bookings
 * Bookings, payments and e-tickets: POST /api/bookings, GET /api/bookings/:id, POST /api/bookings/:id/cancel,
 * POST /api/payments, POST /api/payments/webhook, GET /api/bookings/:id/ticket, POST /api/tickets/verify,
 * POST /api/tickets/checkin (admin), GET /.well-known/jwks.json, and the seed design's book-seat.
 */
import { createRoute as createPlainRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { qrPng, qrSvgDataUrl } from '../tickets/qr.js';
import { requireAdmin, requireUser } from './auth.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, unwrap } from './errors.js';
import { admitHoldCreation } from './holds.js';
import { idempotent } from './idempotency.js';
import { ADMISSION_HEADER_DESCRIPTION, requireAdmission } from './onsales.js';
import {
  BookingSchema,
  bearer,
  createRoute,
  errorResponse,
  IdParam,
  json,
  jsonBody,
  MoneyMinor,
  oneOf,
  PaymentMethodSchema,
  SeatLabel,
} from './schemas.js';

export const MAX_SEATS_PER_BOOKING = 50;
export const MAX_WEBHOOK_BYTES = 256 * 1024;

const PromoCode = z.string().trim().min(1).max(40);

const PaymentSchema = z
  .object({
    provider: z.string(),
    intentId: z.string(),
    clientSecret: z.string().optional(),
    status: z.string(),
    amount: MoneyMinor('The amount to pay'),
    currency: z.string(),
  })
  .openapi('PaymentIntent');

const BookingChoices = {
  paymentMethod: PaymentMethodSchema,
  promoCode: PromoCode.optional(),
};

const CreateBookingBody = oneOf(
  'CreateBooking',
  {
    BookingFromHold: z.object({ holdId: z.string().min(1).max(200), ...BookingChoices }).strict(),
    BookingOfSeats: z
      .object({
        showId: z.string().min(1).max(200),
        seats: z.array(SeatLabel).min(1).max(MAX_SEATS_PER_BOOKING),
        ...BookingChoices,
      })
      .strict(),
    BookingOfCount: z
      .object({
        showId: z.string().min(1).max(200),
        count: z.number().int().min(1).max(MAX_SEATS_PER_BOOKING),
        category: z.string().min(1).max(20).optional(),
        ...BookingChoices,
      })
      .strict(),
  },
  'Book a hold you have, or hold and book in one call: named seats, or a count for the best available.',
);

const PayBody = z
  .object({
    bookingId: z.string().min(1).max(200),
    method: PaymentMethodSchema,
    card: z
      .object({
        number: z.string().min(12).max(23),
        expiry: z.string().min(4).max(7),
        cvc: z.string().min(3).max(4),
      })
      .optional(),
    upiId: z.string().min(3).max(100).optional(),
    walletId: z.string().min(1).max(100).optional(),
    paymentMethodId: z.string().min(1).max(200).optional(),
  })
  .strict()
  .openapi('PaymentProof');

const BookingAndPayment = z.object({ booking: BookingSchema, payment: PaymentSchema });

export function registerBookingRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const auth = requireUser(deps);
  const once = idempotent(deps);
  const { bookings } = deps;

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/bookings',
      tags: ['Bookings'],
      summary: 'Create a booking from a hold, or hold and book in one call',
      security: bearer,
      middleware: [auth, once] as const,
      request: { ...jsonBody(CreateBookingBody) },
      responses: {
        201: json(BookingAndPayment, 'Booking pending payment, and how to pay'),
        400: errorResponse('Bad input'),
        403: errorResponse(
          `HOLD_NOT_OWNED: the hold is someone else’s; ADMISSION_REQUIRED (hold-and-book form): ${ADMISSION_HEADER_DESCRIPTION}`,
        ),
        404: errorResponse('Unknown show or hold'),
        409: errorResponse('Seats taken, or the hold is already booked'),
        410: errorResponse('HOLD_EXPIRED: the hold lapsed'),
        422: errorResponse('Promo code refused, SEAT_LIMIT_EXCEEDED, or the show is not on sale'),
        429: errorResponse(
          'RATE_LIMITED: the hold-and-book form counts against HOLDS_PER_ADDRESS_PER_MINUTE',
        ),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      if ('showId' in body) {
        await admitHoldCreation(c, deps);
        requireAdmission(c, deps, body.showId);
      }
      const result = unwrap(await bookings.create(c.get('user').id, body));
      // A booking ends the buyer's admission to an on-sale of this show: the place does not return.
      await deps.onsales.endAdmission(c.get('user').id, result.booking.showId);
      return c.json({ booking: result.booking, payment: result.payment }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/shows/{id}/book-seat',
      tags: ['Bookings'],
      summary: "Book your held seat (the seed design's route)",
      security: bearer,
      middleware: [auth, once] as const,
      request: {
        params: IdParam,
        ...jsonBody(
          z.object({
            seatNumber: SeatLabel,
            paymentMethod: PaymentMethodSchema.optional(),
            promoCode: PromoCode.optional(),
          }),
        ),
      },
      responses: {
        201: json(BookingAndPayment, 'Booking pending payment'),
        403: errorResponse('HOLD_NOT_OWNED'),
        404: errorResponse('HOLD_NOT_FOUND: you hold no such seat on this show'),
        409: errorResponse('The hold is already booked'),
        410: errorResponse('HOLD_EXPIRED: the hold lapsed'),
        422: errorResponse('Promo code refused, or the show is not on sale'),
      },
    }),
    async (c) => {
      const user = c.get('user');
      const { seatNumber, paymentMethod, promoCode } = c.req.valid('json');
      const holdId = await deps.router.findHoldOf(c.req.valid('param').id, user.id, seatNumber);
      if (!holdId)
        throw new ApiError('HOLD_NOT_FOUND', `you hold no seat ${seatNumber} on this show; lock it first`);
      const result = unwrap(
        await bookings.create(user.id, { holdId, paymentMethod: paymentMethod ?? 'card', promoCode }),
      );
      await deps.onsales.endAdmission(user.id, result.booking.showId);
      return c.json({ booking: result.booking, payment: result.payment }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/bookings/{id}',
      tags: ['Bookings'],
      summary: 'One of your bookings',
      security: bearer,
      middleware: [auth] as const,
      request: { params: IdParam },
      responses: {
        200: json(z.object({ booking: BookingSchema }), 'The booking'),
        403: errorResponse('Not yours'),
        404: errorResponse('BOOKING_NOT_FOUND'),
      },
    }),
    async (c) =>
      c.json({ booking: unwrap(await bookings.get(c.get('user'), c.req.valid('param').id)).booking }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/bookings/{id}/cancel',
      tags: ['Bookings'],
      summary: 'Cancel a booking before the cut-off: seats back on sale, refund, ticket revoked',
      security: bearer,
      middleware: [auth, once] as const,
      request: { params: IdParam },
      responses: {
        200: json(
          z.object({ booking: BookingSchema }),
          'Cancelled (status `cancelled`): a paid booking is refunded, an unpaid one just ends; seats back on sale',
        ),
        403: errorResponse('Not yours'),
        404: errorResponse('BOOKING_NOT_FOUND'),
        409: errorResponse('INVALID_STATE: the booking already failed or expired'),
        422: errorResponse('CANCELLATION_CLOSED: after the cancellation cut-off'),
      },
    }),
    async (c) =>
      c.json({ booking: unwrap(await bookings.cancel(c.get('user'), c.req.valid('param').id)).booking }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/payments',
      tags: ['Payments'],
      summary: "Pay for a booking with the provider's proof",
      description:
        'Simulated provider: card 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined, 4000 0000 0000 9995 has insufficient funds; UPI success@upi / failure@upi; wallet wallet_success / wallet_failure.',
      security: bearer,
      middleware: [auth, once] as const,
      request: { ...jsonBody(PayBody) },
      responses: {
        200: json(z.object({ booking: BookingSchema }), 'Confirmed, with its ticket'),
        202: json(
          z.object({ booking: BookingSchema, payment: z.object({ status: z.string() }) }),
          "Accepted but still processing (a UPI collect request, a pending wallet): the provider's webhook confirms or fails the booking",
        ),
        400: errorResponse(
          'Bad input, or invalid card details (INVALID_CARD names the fields); nothing changed',
        ),
        403: errorResponse('Not your booking'),
        404: errorResponse('BOOKING_NOT_FOUND'),
        402: errorResponse('PAYMENT_FAILED: the seats are released'),
        409: errorResponse('The booking can no longer be paid (failed, cancelled, refunded)'),
        410: errorResponse('HOLD_EXPIRED: the seats were lost; any capture is refunded'),
        422: errorResponse(
          'OFFER_INVALID (details.reason): a lapsed booking paid late whose promo code no longer grants the use; nothing is charged',
        ),
      },
    }),
    async (c) => {
      const { bookingId, ...proof } = c.req.valid('json');
      const result = unwrap(await bookings.pay(c.get('user'), bookingId, proof));
      if ('paymentStatus' in result && result.paymentStatus)
        return c.json({ booking: result.booking, payment: { status: result.paymentStatus } }, 202);
      return c.json({ booking: result.booking }, 200);
    },
  );

  // Plain createRoute: the webhook reads the raw body whatever its Content-Type, so it never answers 415.
  app.openAPIRegistry.registerPath(
    createPlainRoute({
      method: 'post',
      path: '/api/payments/webhook',
      tags: ['Payments'],
      summary: "The payment provider's events, signature checked",
      description:
        'Drives the same transitions as POST /api/payments, idempotently. Signed with `Stripe-Signature` (Stripe) or `BoxOffice-Signature` (the simulated provider).',
      request: {
        body: {
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
          required: true,
        },
      },
      responses: {
        200: json(z.object({ received: z.literal(true) }), 'Applied, or already applied'),
        400: errorResponse('INVALID_SIGNATURE: missing or wrong signature, or not an event'),
        413: errorResponse(`PAYLOAD_TOO_LARGE: over ${MAX_WEBHOOK_BYTES} bytes`),
      },
    }),
  );
  app.post('/api/payments/webhook', async (c) => {
    const raw = await c.req.text();
    if (raw.length > MAX_WEBHOOK_BYTES) throw new ApiError('PAYLOAD_TOO_LARGE', 'webhook body too large');
    const signature = c.req.header('stripe-signature') ?? c.req.header('boxoffice-signature');
    const event = deps.payments.parseWebhook(raw, signature);
    if (!event.ok) throw new ApiError('INVALID_SIGNATURE', event.message);
    await bookings.onPaymentEvent(event.event);
    return c.json({ received: true }, 200);
  });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/bookings/{id}/ticket',
      tags: ['Tickets'],
      summary: 'The e-ticket: a signed code and its QR (Accept: image/png for the PNG itself)',
      security: bearer,
      middleware: [auth] as const,
      request: { params: IdParam },
      responses: {
        200: {
          description: 'The ticket; with `Accept: image/png`, the QR image itself',
          content: {
            'application/json': {
              schema: z.object({
                ticket: z.object({
                  code: z.string().openapi({ description: 'A signed token a gate verifies offline (JWKS)' }),
                  qr: z.string().openapi({ description: 'The code as a QR image: an SVG data URL' }),
                }),
              }),
            },
            'image/png': { schema: z.string().openapi({ format: 'binary' }) },
          },
        },
        403: errorResponse('Not yours'),
        404: errorResponse('BOOKING_NOT_FOUND'),
        409: errorResponse('INVALID_STATE: the booking is not confirmed'),
      },
    }),
    async (c) => {
      const { booking } = unwrap(await bookings.get(c.get('user'), c.req.valid('param').id));
      if (booking.status !== 'confirmed' || !booking.ticket)
        throw new ApiError('INVALID_STATE', `booking ${booking.id} is ${booking.status}: it has no ticket`);
      if ((c.req.header('accept') ?? '').includes('image/png')) {
        const png = await qrPng(booking.ticket.code);
        return c.body(new Uint8Array(png), 200, { 'content-type': 'image/png' }) as never;
      }
      return c.json(
        { ticket: { code: booking.ticket.code, qr: await qrSvgDataUrl(booking.ticket.code) } },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/tickets/verify',
      tags: ['Tickets'],
      summary: 'Verify a ticket code: signature, and that the booking is still confirmed',
      request: { ...jsonBody(z.object({ code: z.string().min(1).max(4096) })) },
      responses: {
        200: json(
          z.object({
            valid: z.boolean(),
            booking: z.record(z.string(), z.unknown()).optional(),
            reason: z.string().optional(),
          }),
          'The verdict',
        ),
      },
    }),
    async (c) => c.json(await deps.ticketDesk.verify(c.req.valid('json').code), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/tickets/checkin',
      tags: ['Tickets'],
      summary: 'Admit a ticket once (gate staff)',
      security: bearer,
      middleware: [requireAdmin(deps)] as const,
      request: { ...jsonBody(z.object({ code: z.string().min(1).max(4096) })) },
      responses: {
        200: json(
          z.object({ admitted: z.boolean(), booking: z.record(z.string(), z.unknown()) }),
          'Admitted',
        ),
        409: errorResponse('ALREADY_CHECKED_IN'),
        422: errorResponse('Invalid ticket'),
      },
    }),
    async (c) => {
      const result = unwrap(
        await deps.ticketDesk.checkIn(await deps.ticketDesk.verify(c.req.valid('json').code)),
      );
      return c.json({ admitted: true, booking: result.booking }, 200);
    },
  );

  app.openAPIRegistry.registerPath(
    createRoute({
      method: 'get',
      path: '/.well-known/jwks.json',
      tags: ['Tickets'],
      summary: 'The public keys that verify ticket codes offline',
      responses: {
        200: json(
          z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
          'A JSON Web Key Set; a ticket code names its key in `kid`',
        ),
      },
    }),
  );
  app.get('/.well-known/jwks.json', (c) =>
    c.json(deps.tickets.jwks(), 200, { 'cache-control': 'public, max-age=300' }),
  );
}
