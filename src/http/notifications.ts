/**
 * @module http/notifications
 * POST /api/notifications (admin: queue one through the outbox) and GET /api/me/notifications (a user's
 * notifications with their delivery status).
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { enqueueNotification, listNotifications } from '../jobs/outbox.js';
import { requireAdmin, requireUser } from './auth.js';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError } from './errors.js';
import { bearer, errorResponse, json, jsonBody } from './schemas.js';

export const MAX_NOTIFICATION_DATA_BYTES = 8 * 1024;

const Body = z
  .object({
    userId: z.string().min(1).max(200),
    channel: z.enum(['email', 'sms']),
    template: z.enum(['custom', 'booking_confirmed', 'booking_cancelled', 'show_reminder']),
    data: z.record(z.string(), z.unknown()).default({}),
    sendAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export function registerNotificationRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/notifications',
      tags: ['Notifications'],
      summary: 'Queue a notification to a user (admin)',
      security: bearer,
      middleware: [requireAdmin(deps)] as const,
      request: { ...jsonBody(Body) },
      responses: {
        202: json(z.object({ notification: z.object({ id: z.string(), status: z.string() }) }), 'Queued'),
        404: errorResponse('Unknown user'),
        422: errorResponse('The user has no phone number for SMS'),
      },
    }),
    (c) => {
      const body = c.req.valid('json');
      if (JSON.stringify(body.data).length > MAX_NOTIFICATION_DATA_BYTES)
        throw new ApiError('VALIDATION_FAILED', 'data is too large', { fields: { data: 'at most 8 KiB' } });
      const user = deps.db.prepare('SELECT email, phone FROM users WHERE id = ?').get(body.userId) as
        | { email: string; phone: string | null }
        | undefined;
      if (!user) throw new ApiError('USER_NOT_FOUND', `no user ${body.userId}`);
      const recipient = body.channel === 'email' ? user.email : user.phone;
      if (!recipient) throw new ApiError('RULE_VIOLATION', 'this user has no phone number for SMS');
      const id = deps.db.transaction(() =>
        enqueueNotification(deps.db, {
          userId: body.userId,
          channel: body.channel,
          template: body.template,
          recipient,
          data: body.data,
          sendAt: body.sendAt ? new Date(body.sendAt).toISOString() : new Date(deps.now()).toISOString(),
        }),
      )();
      return c.json({ notification: { id, status: 'queued' } }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/me/notifications',
      tags: ['Notifications'],
      summary: 'Your notifications and their delivery status',
      security: bearer,
      middleware: [requireUser(deps)] as const,
      request: { query: z.object({ cursor: z.string().max(200).optional() }) },
      responses: {
        200: json(
          z.object({
            notifications: z.array(z.record(z.string(), z.unknown())),
            nextCursor: z.string().nullable(),
          }),
          'Newest first',
        ),
      },
    }),
    (c) => {
      const page = listNotifications(deps.db, c.get('user').id, {
        cursor: c.req.valid('query').cursor,
        limit: 50,
      });
      return c.json(page as never, 200);
    },
  );
}
