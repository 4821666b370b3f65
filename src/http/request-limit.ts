/**
 * @module request-limit
 * Per-key request budgets kept in memory (per client address, per user), for the abuse limits on
 * registration, hold creation and promo-code validation. Past its budget a key is answered 429
 * RATE_LIMITED with `retry-after` until its window (a minute unless said otherwise) ends.
 *
 * ```ts
 * const limit = sharedRequestLimit(deps, 'holds-by-address', deps.config.HOLDS_PER_ADDRESS_PER_MINUTE);
 * await limit.take(clientAddressOf(c, deps.config.trustedProxies), 'holds from this address');
 * ```
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { ApiError } from './errors.js';

const MINUTE_SECONDS = 60;

export class RequestLimit {
  readonly #limiter: RateLimiterMemory;

  constructor(
    readonly name: string,
    readonly perWindow: number,
    readonly windowSeconds = MINUTE_SECONDS,
  ) {
    // The limiter forgets a key when its window ends, so memory is bounded by the keys seen in a window.
    this.#limiter = new RateLimiterMemory({ keyPrefix: name, points: perWindow, duration: windowSeconds });
  }

  /** Spends one unit of `key`'s budget, or throws 429 RATE_LIMITED naming `what` was limited. */
  async take(key: string, what: string): Promise<void> {
    try {
      await this.#limiter.consume(key);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      const retryAfterSeconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      const window = this.windowSeconds === MINUTE_SECONDS ? 'a minute' : `in ${this.windowSeconds} s`;
      throw new ApiError(
        'RATE_LIMITED',
        `too many ${what}: at most ${this.perWindow} ${window}; try again in ${retryAfterSeconds} s`,
        { limit: this.perWindow, windowSeconds: this.windowSeconds, retryAfterSeconds },
        { 'retry-after': String(retryAfterSeconds) },
      );
    }
  }
}

const limitsByApp = new WeakMap<object, Map<string, RequestLimit>>();

/**
 * The one limit of this name for this app: routes in different modules (the holds routes and the
 * hold-and-book form of POST /api/bookings) spend the same budget. Keyed by the app's deps, so two
 * servers in one process (tests) do not share budgets.
 */
export function sharedRequestLimit(app: object, name: string, perMinute: number): RequestLimit {
  let limits = limitsByApp.get(app);
  if (!limits) {
    limits = new Map();
    limitsByApp.set(app, limits);
  }
  let limit = limits.get(name);
  if (!limit) {
    limit = new RequestLimit(name, perMinute);
    limits.set(name, limit);
  }
  return limit;
}
