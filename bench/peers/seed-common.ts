/**
 * @module bench/peers/seed-common
 * What the two seed-design peers share: their environment, the bearer check (the service's own tokens,
 * HS256 with the run's secret, verified on every request as the seed design did), Redis keys and the
 * reply bodies. Routes: `POST /api/shows/:id/lock-seat` `{seatNumber}` or `{seatNumbers}` (a hold of
 * several seats, all or nothing), `DELETE /api/shows/:id/lock-seat/:seat`, `GET /healthz`.
 */
import { jwtVerify } from 'jose';

export const PORT = Number(process.env.PORT);
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const LOCK_TTL_SECONDS = 300;
/** Most seats one lock request may name, as in the service. */
export const MAX_SEATS_PER_LOCK = 50;

const key = new TextEncoder().encode(process.env.JWT_SECRET ?? '');

/** The user id of a live token, or undefined. */
export async function userOf(authorization: string | undefined): Promise<string | undefined> {
  if (!authorization?.startsWith('Bearer ')) return undefined;
  try {
    const { payload } = await jwtVerify(authorization.slice(7), key, {
      issuer: 'boxoffice',
      algorithms: ['HS256'],
    });
    return typeof payload.sub === 'string' ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

export function lockKey(showId: string, seat: string): string {
  return `seat_lock:${showId}:${seat}`;
}

/** The seats a lock request names, or undefined when the body is not one. */
export function seatsOf(body: unknown): string[] | undefined {
  const b = body as { seatNumber?: unknown; seatNumbers?: unknown } | undefined;
  const seats = typeof b?.seatNumber === 'string' ? [b.seatNumber] : b?.seatNumbers;
  if (!Array.isArray(seats) || seats.length === 0 || seats.length > MAX_SEATS_PER_LOCK) return undefined;
  return seats.every((s) => typeof s === 'string' && /^[A-Z]{1,3}\d{1,3}$/.test(s)) ? seats : undefined;
}

export function lockedReply(showId: string, seats: string[], userId: string) {
  const expiresAt = new Date(Date.now() + LOCK_TTL_SECONDS * 1000).toISOString();
  return {
    message: `seats ${seats.join(', ')} locked until ${expiresAt}`,
    hold: { id: `${showId}:${seats.join(',')}`, showId, seats, userId, expiresAt },
  };
}

export function errorReply(code: string, message: string) {
  return { error: { code, message, details: {} } };
}
