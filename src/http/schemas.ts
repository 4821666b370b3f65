/**
 * @module schemas
 * Shared zod pieces for route definitions: the error body, ids, bearer security, JSON helpers, the
 * booking as every route that answers one (bookings, payments, history) shows it, and `createRoute`,
 * which lists the answers every route of a kind can give so that no route has to remember them.
 */
import { createRoute as createOpenApiRoute, type RouteConfig, z } from '@hono/zod-openapi';
import { isAdminOnly } from './auth.js';
import { isIdempotent } from './idempotency.js';

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

type Responses = RouteConfig['responses'];

/**
 * `createRoute` from @hono/zod-openapi, plus the answers that come from what the route is rather than
 * from its handler: 400 for any input (an over-long id, a bad field), 401 behind a token, 403 behind the
 * admin role, 404 for an unknown `{id}`, 409 for a reused Idempotency-Key, 413 and 415 for a body. The
 * route's own entries win, so it can say more precisely what its 404 or 409 means.
 *
 * @example
 * app.openapi(createRoute({ method: 'get', path: '/api/holds/{id}', security: bearer, ... }), handler);
 */
export function createRoute<P extends string, R extends Omit<RouteConfig, 'path'> & { path: P }>(
  config: R,
): ReturnType<typeof createOpenApiRoute<P, R>> {
  const responses: Responses = { ...standardResponses(config), ...config.responses };
  return createOpenApiRoute({ ...config, responses }) as ReturnType<typeof createOpenApiRoute<P, R>>;
}

function standardResponses(config: Omit<RouteConfig, 'path'>): Responses {
  const request = config.request ?? {};
  const middleware = [config.middleware ?? []].flat();
  const isAuthed = (config.security ?? []).length > 0;
  const isAdmin = middleware.some((m) => isAdminOnly(m));
  const hasIdempotencyKey = middleware.some((m) => isIdempotent(m));
  const out: Responses = {};
  if (request.params || request.query || request.body || request.headers || hasIdempotencyKey)
    out[400] = errorResponse(
      'VALIDATION_FAILED or INVALID_JSON: details.fields names each missing or bad field',
    );
  if (isAuthed) out[401] = errorResponse('UNAUTHENTICATED: no token, or a bad, expired or revoked one');
  if (isAdmin) out[403] = errorResponse('FORBIDDEN: this needs the admin role');
  if (request.params) out[404] = errorResponse('No such resource for this id');
  if (hasIdempotencyKey)
    out[409] = errorResponse(
      'IDEMPOTENCY_KEY_REUSED (the key came with another body) or IDEMPOTENCY_KEY_IN_USE (the first request is still running)',
    );
  if (request.body) {
    out[413] = errorResponse('PAYLOAD_TOO_LARGE: the body is over the size limit');
    out[415] = errorResponse(
      'UNSUPPORTED_MEDIA_TYPE: send the body as JSON with Content-Type: application/json',
    );
  }
  // Any route while the service starts or drains; the allocator's routes also while a shard recovers.
  out[503] = errorResponse(
    'NOT_READY, WORKER_FAILED or OVERLOADED: temporarily unable to answer; retry after Retry-After (with the same Idempotency-Key)',
  );
  return out;
}

/**
 * An either/or body: exactly one of the named alternatives, each a strict object so that no body can
 * match two. zod-to-openapi writes every union as `anyOf`; the `oneOf` given here says "exactly one",
 * and `finishOpenApiDocument` drops the `anyOf` beside it.
 */
export function oneOf<const T extends Record<string, z.ZodObject>>(
  name: string,
  alternatives: T,
  description: string,
) {
  const named = Object.entries(alternatives).map(([id, schema]) => schema.openapi(id));
  const refs = Object.keys(alternatives).map((id) => ({ $ref: `#/components/schemas/${id}` }));
  if (named.length < 2) throw new Error(`oneOf ${name} needs two alternatives or more`);
  return z
    .union(named as unknown as readonly [T[keyof T], ...T[keyof T][]])
    .openapi(name, { description, oneOf: refs } as never);
}

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

/** Said on every amount field: clients otherwise guess rupees and are off by a factor of 100. */
export const MINOR_UNITS = 'integer minor units of `currency` (paise for INR: 25000 is ₹250.00)';

/** An amount of money as the API shows it. */
export const MoneyMinor = (what: string) =>
  z
    .number()
    .int()
    .openapi({ description: `${what}, in ${MINOR_UNITS}` });

/** Money of a booking or a priced offer, in minor units. */
export const AmountSchema = z
  .object({
    subtotal: MoneyMinor('Seat prices added up'),
    discount: MoneyMinor('Taken off by the promo code'),
    fees: MoneyMinor('Booking fees'),
    total: MoneyMinor('What the customer pays'),
    currency: z.string().openapi({ example: 'INR' }),
  })
  .openapi('Amount', { description: `Every amount is in ${MINOR_UNITS}.` });

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
    ticket: z.object({ code: z.string() }).optional().openapi({
      description:
        'Once confirmed: the signed ticket code. Its QR image is at GET /api/bookings/{id}/ticket ({code, qr}), kept off the booking so every read stays small.',
    }),
  })
  .openapi('Booking');

/**
 * An optional query parameter that treats `?name=` as not given: clients fill URL templates such as
 * `?status=&cursor=` with empty values, which mean "no filter", not a bad one.
 */
export function queryParam<T extends z.ZodType>(schema: T) {
  return z
    .preprocess((value) => (value === '' ? undefined : value), schema.optional())
    .openapi({ [EMPTY_MEANS_ABSENT]: true } as never);
}

/** Marks a query parameter for `finishOpenApiDocument`: an empty value is documented as allowed. */
export const EMPTY_MEANS_ABSENT = 'x-empty-means-absent';
