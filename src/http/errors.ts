/**
 * @module errors
 * The one table that turns error codes into HTTP statuses, and the contract's error body
 * `{"error": {"code", "message", "details"}}`. Use cases return codes; only this edge knows statuses.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorCode, Failure } from '../domain/failure.js';

export { type ErrorCode, type Failure, failure } from '../domain/failure.js';

export const STATUS_BY_CODE = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  UNKNOWN_SEAT: 400,
  INVALID_COMMAND: 400,
  INVALID_LAYOUT: 400,
  INVALID_CARD: 400,
  INVALID_SIGNATURE: 400,
  UNAUTHENTICATED: 401,
  INVALID_CREDENTIALS: 401,
  PAYMENT_FAILED: 402,
  FORBIDDEN: 403,
  ADMISSION_REQUIRED: 403,
  HOLD_NOT_OWNED: 403,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  SHOW_NOT_FOUND: 404,
  MOVIE_NOT_FOUND: 404,
  THEATER_NOT_FOUND: 404,
  SCREEN_NOT_FOUND: 404,
  HOLD_NOT_FOUND: 404,
  BOOKING_NOT_FOUND: 404,
  OFFER_NOT_FOUND: 404,
  ONSALE_NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  NOT_ACCEPTABLE: 406,
  CONFLICT: 409,
  EMAIL_TAKEN: 409,
  SEATS_UNAVAILABLE: 409,
  SINGLE_SEAT_STRANDED: 409,
  SHOW_EXISTS: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  ALREADY_CHECKED_IN: 409,
  BOOKING_CONFLICT: 409,
  INVALID_STATE: 409,
  HOLD_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RULE_VIOLATION: 422,
  SEAT_LIMIT_EXCEEDED: 422,
  OFFER_INVALID: 422,
  CANCELLATION_CLOSED: 422,
  NOT_ELIGIBLE: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  NOT_READY: 503,
  OVERLOADED: 503,
  WORKER_FAILED: 503,
  PROVIDER_UNAVAILABLE: 503,
  STORE_UNAVAILABLE: 503,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;

export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

/** Thrown inside route handlers to answer with a contract error; caught by the app's onError. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  static from(f: Failure): ApiError {
    return new ApiError(f.code, f.message, f.details);
  }
}

export function statusOf(code: string): ContentfulStatusCode {
  return (STATUS_BY_CODE as Record<string, ContentfulStatusCode>)[code] ?? 500;
}

export function errorBody(code: string, message: string, details: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, details } };
}

export function sendError(
  c: Context,
  code: ErrorCode,
  message: string,
  details: Record<string, unknown> = {},
) {
  return c.json(errorBody(code, message, details), statusOf(code));
}

/** Unwraps a use-case result: the value when ok, else an ApiError for the edge to answer. */
export function unwrap<T extends { ok: true }>(result: T | Failure): T {
  if (!result.ok) throw ApiError.from(result);
  return result;
}
