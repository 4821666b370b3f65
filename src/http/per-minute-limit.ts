/**
 * @module per-minute-limit
 * Per-key request budgets kept in memory (per client address, per user), for the abuse limits on hold
 * creation and promo-code validation. Past its budget a key is answered 429 RATE_LIMITED with
 * `retry-after` until its one-minute window ends.
 *
 * ```ts
 * const limit = sharedPerMinuteLimit(deps, 'holds-by-address', deps.config.HOLDS_PER_ADDRESS_PER_MINUTE);
 * await limit.take(clientAddressOf(c, deps.config.trustedProxies), 'holds from this address');
 * ```
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { ApiError } from './errors.js';

const WINDOW_SECONDS = 60;

export class PerMinuteLimit {
  readonly #limiter: RateLimiterMemory;

  constructor(
    readonly name: string,
    readonly perMinute: number,
  ) {
    // The limiter forgets a key when its window ends, so memory is bounded by the keys seen in a minute.
    this.#limiter = new RateLimiterMemory({ keyPrefix: name, points: perMinute, duration: WINDOW_SECONDS });
  }

  /** Spends one unit of `key`'s budget, or throws 429 RATE_LIMITED naming `what` was limited. */
  async take(key: string, what: string): Promise<void> {
    try {
      await this.#limiter.consume(key);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      const retryAfterSeconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw new ApiError(
        'RATE_LIMITED',
        `too many ${what}: at most ${this.perMinute} a minute; try again in ${retryAfterSeconds} s`,
        { limit: this.perMinute, windowSeconds: WINDOW_SECONDS, retryAfterSeconds },
        { 'retry-after': String(retryAfterSeconds) },
      );
    }
  }
}

const limitsByApp = new WeakMap<object, Map<string, PerMinuteLimit>>();

/**
 * The one limit of this name for this app: routes in different modules (the holds routes and the
 * hold-and-book form of POST /api/bookings) spend the same budget. Keyed by the app's deps, so two
 * servers in one process (tests) do not share budgets.
 */
export function sharedPerMinuteLimit(app: object, name: string, perMinute: number): PerMinuteLimit {
  let limits = limitsByApp.get(app);
  if (!limits) {
    limits = new Map();
    limitsByApp.set(app, limits);
  }
  let limit = limits.get(name);
  if (!limit) {
    limit = new PerMinuteLimit(name, perMinute);
    limits.set(name, limit);
  }
  return limit;
}
