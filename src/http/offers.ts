/**
 * @module http/offers
 * Promo codes: GET /api/offers (public ones), POST /api/offers/validate (preview or 422 with the reason),
 * and admin POST/PATCH/DELETE /api/admin/offers.
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Offer } from '../domain/offers.js';
import { requireAdmin } from './auth.js';
import { clientAddressOf } from './client-address.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError, unwrap } from './errors.js';
import { idempotent } from './idempotency.js';
import { RequestLimit } from './request-limit.js';
import {
  AmountSchema,
  bearer,
  createRoute,
  errorResponse,
  IdParam,
  json,
  jsonBody,
  MINOR_UNITS,
  oneOf,
  SeatLabel,
} from './schemas.js';

const OfferSchema = z
  .object({
    id: z.string(),
    code: z.string(),
    description: z.string(),
    kind: z.enum(['percent', 'flat']),
    value: z.number().openapi({ description: `A percent (1–100), or a flat amount in ${MINOR_UNITS}` }),
    maxDiscount: z
      .number()
      .nullable()
      .openapi({ description: `The cap, in ${MINOR_UNITS}` }),
    minAmount: z.number().openapi({ description: `The least subtotal it applies to, in ${MINOR_UNITS}` }),
    validFrom: z.string(),
    validUntil: z.string(),
    totalLimit: z.number().nullable(),
    perUserLimit: z.number().nullable(),
    usedCount: z.number(),
    scope: z.object({
      cities: z.array(z.string()).optional(),
      movieIds: z.array(z.string()).optional(),
      theaterIds: z.array(z.string()).optional(),
      daysOfWeek: z.array(z.number()).optional(),
    }),
    isPublic: z.boolean(),
    isActive: z.boolean(),
    createdAt: z.string(),
  })
  .openapi('Offer');

const Money = z.number().int().min(0).max(100_000_000);
const Iso = z.iso.datetime({ offset: true });
const ScopeInput = z
  .object({
    cities: z.array(z.string().min(1).max(60)).max(50).optional(),
    movieIds: z.array(z.string().min(1).max(200)).max(200).optional(),
    theaterIds: z.array(z.string().min(1).max(200)).max(200).optional(),
    daysOfWeek: z.array(z.number().int().min(0).max(6)).max(7).optional(),
  })
  .strict();

/** An offer's fields as given; a create fills in the defaults, a PATCH changes only what it names. */
const OfferFields = z
  .object({
    code: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9_-]{3,40}$/, '3 to 40 letters, digits, _ or -'),
    description: z.string().max(500),
    kind: z.enum(['percent', 'flat']),
    value: z.number().int().min(1).max(100_000_000),
    maxDiscount: Money.nullable().optional(),
    minAmount: Money,
    validFrom: Iso,
    validUntil: Iso,
    totalLimit: z.number().int().min(1).max(10_000_000).nullable().optional(),
    perUserLimit: z.number().int().min(1).max(1000).nullable().optional(),
    scope: ScopeInput,
    isPublic: z.boolean(),
    isActive: z.boolean(),
  })
  .strict();

const OfferInput = OfferFields.extend({
  description: OfferFields.shape.description.default(''),
  minAmount: Money.default(0),
  scope: ScopeInput.default({}),
  isPublic: z.boolean().default(true),
  isActive: z.boolean().default(true),
}).strict();

// Built from the fields without defaults: `.partial()` keeps a default, which would reset every field
// a PATCH leaves out.
const OfferPatch = OfferFields.omit({ code: true, kind: true }).partial().strict();

const ValidateTarget = { code: z.string().trim().min(1).max(40), showId: z.string().min(1).max(200) };
const ValidateBody = oneOf(
  'OfferCheck',
  {
    OfferCheckForSeats: z.object({ ...ValidateTarget, seats: z.array(SeatLabel).min(1).max(50) }).strict(),
    OfferCheckForAmount: z
      .object({ ...ValidateTarget, amount: Money.openapi({ description: `In ${MINOR_UNITS}` }) })
      .strict(),
  },
  'The code and show, with either the seats to price or an amount.',
  // One shape for the handler, which branches on which of the two it got.
) as unknown as z.ZodType<{ code: string; showId: string; seats?: string[]; amount?: number }>;

const iso = (s: string) => new Date(s).toISOString();

export function registerOfferRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const admin = requireAdmin(deps);
  const { offers } = deps;
  const perMinute = deps.config.OFFER_VALIDATE_MAX_PER_MINUTE;
  const validationsByAddress = new RequestLimit('offer-validate-address', perMinute);
  const validationsByUser = new RequestLimit('offer-validate-user', perMinute);

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/offers',
      tags: ['Offers'],
      summary: 'Public offers that can be used now',
      responses: { 200: json(z.object({ offers: z.array(OfferSchema) }), 'Offers') },
    }),
    async (c) => c.json({ offers: await offers.listPublic() }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/offers/validate',
      tags: ['Offers'],
      summary: 'Preview the discount a promo code gives for a show and seats (or an amount)',
      request: { ...jsonBody(ValidateBody) },
      responses: {
        200: json(
          z.object({
            valid: z.literal(true),
            offer: OfferSchema,
            amount: AmountSchema,
          }),
          'The discount',
        ),
        400: errorResponse('Bad input or unknown seat'),
        401: errorResponse('A bearer token was given but is invalid'),
        404: errorResponse('Unknown show'),
        422: errorResponse(
          'OFFER_INVALID with details.reason (a private code given without a token answers unknown_code)',
        ),
        429: errorResponse(
          'RATE_LIMITED (OFFER_VALIDATE_MAX_PER_MINUTE per user and per address), with retry-after',
        ),
      },
    }),
    async (c) => {
      // Budgets per address and per user: codes cannot be enumerated fast from one place or one account.
      await validationsByAddress.take(
        clientAddressOf(c, deps.config.trustedProxies),
        'promo code checks from this address',
      );
      const body = c.req.valid('json');
      const show = deps.shows.get(body.showId);
      if (!show) throw new ApiError('SHOW_NOT_FOUND', `no show ${body.showId}`);
      const header = c.req.header('authorization');
      // Optional: with a token the per-user limit is checked for its holder; a bad token is refused,
      // not quietly previewed as anonymous (which would hide that limit).
      const user = header ? await deps.tokens.verify(header.replace(/^Bearer\s+/i, '')) : undefined;
      if (header && !user) throw new ApiError('UNAUTHENTICATED', 'the bearer token is invalid or expired');
      if (user) await validationsByUser.take(user.id, 'promo code checks');
      if (body.seats) {
        const priced = unwrap(await deps.bookings.price(show, body.seats, body.code, user?.id));
        return c.json({ valid: true as const, offer: priced.offer!, amount: priced.amount }, 200);
      }
      const evaluated = unwrap(await offers.evaluate(body.code, user?.id, show, body.amount!));
      const subtotal = body.amount!;
      const fees = Math.round(((subtotal - evaluated.discount) * deps.config.CONVENIENCE_FEE_PERCENT) / 100);
      return c.json(
        {
          valid: true as const,
          offer: evaluated.offer,
          amount: {
            subtotal,
            discount: evaluated.discount,
            fees,
            total: subtotal - evaluated.discount + fees,
            currency: show.currency,
          },
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/admin/offers',
      tags: ['Admin'],
      summary: 'Create an offer',
      security: bearer,
      middleware: [admin, idempotent(deps)] as const,
      request: { ...jsonBody(OfferInput) },
      responses: {
        201: json(z.object({ offer: OfferSchema }), 'Created'),
        409: errorResponse('Code exists'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const created = unwrap(
        await offers.create({ ...body, validFrom: iso(body.validFrom), validUntil: iso(body.validUntil) }),
      );
      return c.json({ offer: created.offer }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/admin/offers/{id}',
      tags: ['Admin'],
      summary: 'Change an offer',
      security: bearer,
      middleware: [admin] as const,
      request: { params: IdParam, ...jsonBody(OfferPatch) },
      responses: {
        200: json(z.object({ offer: OfferSchema }), 'Changed'),
        404: errorResponse('Unknown offer'),
      },
    }),
    async (c) => {
      const patch = c.req.valid('json') as Partial<Offer>;
      if (patch.validFrom) patch.validFrom = iso(patch.validFrom);
      if (patch.validUntil) patch.validUntil = iso(patch.validUntil);
      return c.json({ offer: unwrap(await offers.update(c.req.valid('param').id, patch)).offer }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/admin/offers/{id}',
      tags: ['Admin'],
      summary: 'Withdraw an offer (it stays on record for the bookings that used it)',
      security: bearer,
      middleware: [admin] as const,
      request: { params: IdParam },
      responses: { 204: { description: 'Withdrawn' }, 404: errorResponse('Unknown offer') },
    }),
    async (c) => {
      unwrap(await offers.update(c.req.valid('param').id, { isActive: false }));
      return c.body(null, 204);
    },
  );
}
