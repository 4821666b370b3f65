/**
 * @module schemas
 * Shared zod pieces for route definitions: the error body, ids, bearer security, JSON helpers, and the
 * booking as every route that answers one (bookings, payments, history) shows it.
 */
import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'SEATS_UNAVAILABLE' }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()),
    }),
  })
  .openapi('Error');

export const bearer = [{ bearerAuth: [] }];

export function jsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return { body: { content: { 'application/json': { schema } }, required: true, description } };
}

export function json<T extends z.ZodType>(schema: T, description: string) {
  return { content: { 'application/json': { schema } }, description };
}

export const errorResponse = (description: string) => json(ErrorSchema, description);

export const IdParam = z.object({
  id: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'id', in: 'path' } }),
});

export const SeatLabel = z.string().regex(/^[A-Z]{1,3}\d{1,3}$/, 'a seat label like "A7"');

export const BookingStatusSchema = z.enum(['pending_payment', 'confirmed', 'cancelled', 'failed', 'expired']);
export const PaymentMethodSchema = z.enum(['card', 'upi', 'wallet']);

/** Money of a booking or a priced offer, in minor units. */
export const AmountSchema = z.object({
  subtotal: z.number(),
  discount: z.number(),
  fees: z.number(),
  total: z.number(),
  currency: z.string(),
});

export const BookingSchema = z
  .object({
    id: z.string(),
    userId: z.string(),
    showId: z.string(),
    holdId: z.string(),
    seats: z.array(z.string()),
    status: BookingStatusSchema,
    amount: AmountSchema,
    promoCode: z.string().nullable(),
    paymentMethod: PaymentMethodSchema,
    createdAt: z.string(),
    confirmedAt: z.string().nullable(),
    cancelledAt: z.string().nullable(),
    holdExpiresAt: z.string(),
    ticket: z.object({ code: z.string(), qrUrl: z.string() }).optional(),
  })
  .openapi('Booking');

/**
 * An optional query parameter that treats `?name=` as not given: clients fill URL templates such as
 * `?status=&cursor=` with empty values, which mean "no filter", not a bad one.
 */
export function queryParam<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => (value === '' ? undefined : value), schema.optional());
}
