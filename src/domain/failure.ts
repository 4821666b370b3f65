/**
 * @module failure
 * The failure vocabulary every layer below HTTP speaks: a use case, a payment adapter or a store answers
 * `{ ok: false, code, message, details? }` with one of these codes. Only the HTTP edge (`http/errors.ts`)
 * knows which status each code gets, so dependencies point one way: http → domain → actors/persistence.
 */

export const ERROR_CODES = [
  'VALIDATION_FAILED',
  'INVALID_JSON',
  'UNKNOWN_SEAT',
  'INVALID_COMMAND',
  'INVALID_LAYOUT',
  'INVALID_CARD',
  'INVALID_SIGNATURE',
  'UNAUTHENTICATED',
  'INVALID_CREDENTIALS',
  'PAYMENT_FAILED',
  'FORBIDDEN',
  'ADMISSION_REQUIRED',
  'HOLD_NOT_OWNED',
  'NOT_FOUND',
  'ROUTE_NOT_FOUND',
  'SHOW_NOT_FOUND',
  'MOVIE_NOT_FOUND',
  'THEATER_NOT_FOUND',
  'SCREEN_NOT_FOUND',
  'HOLD_NOT_FOUND',
  'BOOKING_NOT_FOUND',
  'OFFER_NOT_FOUND',
  'ONSALE_NOT_FOUND',
  'USER_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'NOT_ACCEPTABLE',
  'CONFLICT',
  'EMAIL_TAKEN',
  'SEATS_UNAVAILABLE',
  'SINGLE_SEAT_STRANDED',
  'SHOW_EXISTS',
  'IDEMPOTENCY_KEY_REUSED',
  'IDEMPOTENCY_KEY_IN_USE',
  'ALREADY_CHECKED_IN',
  'BOOKING_CONFLICT',
  'INVALID_STATE',
  'HOLD_EXPIRED',
  'PAYLOAD_TOO_LARGE',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'UNSUPPORTED_MEDIA_TYPE',
  'RULE_VIOLATION',
  'SEAT_LIMIT_EXCEEDED',
  'OFFER_INVALID',
  'CANCELLATION_CLOSED',
  'NOT_ELIGIBLE',
  'RATE_LIMITED',
  'INTERNAL',
  'NOT_READY',
  'OVERLOADED',
  'WORKER_FAILED',
  'PROVIDER_UNAVAILABLE',
  'STORE_UNAVAILABLE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A failure a use case reports; the HTTP layer answers it with its table's status. */
export interface Failure {
  ok: false;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export function failure(code: ErrorCode, message: string, details?: Record<string, unknown>): Failure {
  return details ? { ok: false, code, message, details } : { ok: false, code, message };
}
