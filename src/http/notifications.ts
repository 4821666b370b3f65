/**
 * @module http/notifications
 * POST /api/notifications (admin: queue one through the outbox) and GET /api/me/notifications (a user's
 * notifications with their delivery status and every delivery attempt).
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  enqueueNotification,
  getNotification,
  isNotificationCursor,
  listNotifications,
  MAX_LIST_LIMIT,
  NOTIFICATION_TEMPLATES,
} from '../jobs/outbox.js';
import { MAX_SMS_LENGTH } from '../jobs/sms.js';
import { MAX_QR_TEXT_CHARS } from '../tickets/qr.js';
import { requireAdmin, requireUser } from './auth.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError } from './errors.js';
import { idempotent } from './idempotency.js';
import { bearer, createRoute, errorResponse, json, jsonBody, queryParam } from './schemas.js';

export const MAX_NOTIFICATION_DATA_BYTES = 8 * 1024;
export const MAX_SUBJECT_CHARS = 200;
/** A few screens of text: an email body, or an SMS that the sender cuts to its own limit. */
export const MAX_BODY_CHARS = 4_000;
/** A notification scheduled further ahead than this is almost certainly a mistyped date. */
export const MAX_SEND_AHEAD_MS = 366 * 24 * 3600_000;
const LIST_PAGE_SIZE = 50;
const MAX_SEATS_IN_DATA = 100;

const Line = z.string().min(1).max(200);

/**
 * What the templates render (jobs/outbox NotificationData). Strict: a field no template reads (`message`
 * for `body`, say) would be silently dropped from the message, so it is refused instead.
 */
const NotificationDataBody = z
  .object({
    subject: z.string().trim().min(1).max(MAX_SUBJECT_CHARS).optional(),
    body: z.string().trim().min(1).max(MAX_BODY_CHARS).optional(),
    bookingId: Line.optional(),
    userName: Line.optional(),
    movieTitle: Line.optional(),
    theaterName: Line.optional(),
    screenName: Line.optional(),
    city: Line.optional(),
    startTime: z.iso.datetime({ offset: true }).optional(),
    seats: z.array(z.string().min(1).max(10)).max(MAX_SEATS_IN_DATA).optional(),
    amount: z
      .object({
        total: z.number().int().min(0).max(99_999_999),
        currency: z.string().regex(/^[A-Z]{3}$/, 'a currency code like "INR"'),
      })
      .strict()
      .optional(),
    ticketCode: z.string().min(1).max(MAX_QR_TEXT_CHARS).optional(),
    reason: Line.optional(),
  })
  .strict();

const Body = z
  .object({
    userId: z.string().min(1).max(200),
    channel: z.enum(['email', 'sms']),
    template: z.enum(NOTIFICATION_TEMPLATES),
    data: NotificationDataBody.default({}),
    sendAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.template === 'custom' && body.data.body === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'body'],
        message: 'the custom template needs the text to send',
      });
    // An SMS longer than the sender sends would be cut without anyone noticing.
    if (body.channel === 'sms' && (body.data.body?.length ?? 0) > MAX_SMS_LENGTH)
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'body'],
        message: `an SMS is at most ${MAX_SMS_LENGTH} characters`,
      });
  })
  .openapi('NotificationRequest');

const DeliveryAttemptSchema = z.object({ at: z.string(), ok: z.boolean(), error: z.string().nullable() });

const NotificationSchema = z
  .object({
    id: z.string(),
    channel: z.enum(['email', 'sms']),
    template: z.string(),
    status: z.enum(['queued', 'sent', 'failed', 'cancelled']),
    recipient: z.string().openapi({ description: 'Masked: enough to recognise, not to harvest' }),
    bookingId: z.string().nullable(),
    sendAt: z.string(),
    sentAt: z.string().nullable(),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    deliveryAttempts: z.array(DeliveryAttemptSchema),
    createdAt: z.string(),
  })
  .openapi('Notification');

export function registerNotificationRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/notifications',
      tags: ['Notifications'],
      summary: 'Queue a notification to a user (admin)',
      description:
        'Delivered by the notifier at `sendAt` (now when omitted). The `custom` template sends `data.body` ' +
        '(and `data.subject` as the email subject); the booking templates render the booking fields in `data`.',
      security: bearer,
      middleware: [requireAdmin(deps), idempotent(deps)] as const,
      request: { ...jsonBody(Body) },
      responses: {
        202: json(z.object({ notification: NotificationSchema }), 'Queued'),
        400: errorResponse('Invalid body'),
        403: errorResponse('Not an admin'),
        404: errorResponse('Unknown user'),
        422: errorResponse('The user has no phone number for SMS'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      if (Buffer.byteLength(JSON.stringify(body.data)) > MAX_NOTIFICATION_DATA_BYTES)
        throw new ApiError('VALIDATION_FAILED', 'data is too large', { fields: { data: 'at most 8 KiB' } });
      const nowMs = deps.now();
      const sendAtMs = body.sendAt ? Date.parse(body.sendAt) : nowMs;
      if (sendAtMs > nowMs + MAX_SEND_AHEAD_MS)
        throw new ApiError('VALIDATION_FAILED', 'sendAt is too far ahead', {
          fields: { sendAt: 'at most 366 days from now' },
        });
      const user = await deps.store.get<{ email: string; phone: string | null }>(
        'SELECT email, phone FROM users WHERE id = ?',
        [body.userId],
      );
      if (!user) throw new ApiError('USER_NOT_FOUND', `no user ${body.userId}`);
      const recipient = body.channel === 'email' ? user.email : user.phone;
      if (!recipient) throw new ApiError('RULE_VIOLATION', 'this user has no phone number for SMS');
      const id = await deps.store.transaction((tx) =>
        enqueueNotification(tx, {
          userId: body.userId,
          channel: body.channel,
          template: body.template,
          recipient,
          data: body.data,
          sendAt: new Date(Math.max(sendAtMs, nowMs)).toISOString(),
          now: nowMs,
        }),
      );
      const notification = await getNotification(deps.store, id);
      if (!notification) throw new Error(`notification ${id} vanished after its insert`);
      return c.json({ notification }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/me/notifications',
      tags: ['Notifications'],
      summary: 'Your notifications, their delivery status and every delivery attempt',
      security: bearer,
      middleware: [requireUser(deps)] as const,
      request: {
        query: z.object({
          cursor: queryParam(
            z
              .string()
              .max(200)
              .refine(isNotificationCursor, 'not a cursor this API gave out: pass nextCursor back unchanged'),
          ),
          limit: queryParam(z.coerce.number().int().min(1).max(MAX_LIST_LIMIT)),
        }),
      },
      responses: {
        200: json(
          z.object({ notifications: z.array(NotificationSchema), nextCursor: z.string().nullable() }),
          'Newest first; pass nextCursor back as cursor for the next page',
        ),
      },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const page = await listNotifications(deps.store, c.get('user').id, {
        ...(query.cursor ? { cursor: query.cursor } : {}),
        limit: query.limit ?? LIST_PAGE_SIZE,
      });
      return c.json(page, 200);
    },
  );
}
