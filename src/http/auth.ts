/**
 * @module auth
 * Bearer-token middleware: `requireUser` admits any live token, `requireAdmin` only the admin role.
 * A forged, expired or revoked token is 401; a valid token without the role is 403.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppDeps, AppEnv } from './context.js';
import { ApiError } from './errors.js';
import { requestHeader } from './request-context.js';

export function requireUser(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = requestHeader(c, 'authorization');
    if (!header?.startsWith('Bearer '))
      throw new ApiError('UNAUTHENTICATED', 'send Authorization: Bearer <token>');
    const user = await deps.tokens.verify(header.slice(7).trim());
    if (!user) throw new ApiError('UNAUTHENTICATED', 'the token is invalid, expired or revoked');
    c.set('user', user);
    await next();
  };
}

export function requireAdmin(deps: AppDeps): MiddlewareHandler<AppEnv> {
  const user = requireUser(deps);
  const admin: MiddlewareHandler<AppEnv> = (c, next) =>
    user(c, async () => {
      if (c.get('user').role !== 'admin') throw new ApiError('FORBIDDEN', 'this needs the admin role');
      await next();
    });
  ADMIN_ONLY.add(admin);
  return admin;
}

/** Lets a route definition document the 403 that this middleware can answer. */
const ADMIN_ONLY = new WeakSet<object>();
export const isAdminOnly = (middleware: unknown): boolean =>
  typeof middleware === 'function' && ADMIN_ONLY.has(middleware);
