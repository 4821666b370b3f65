/**
 * @module login-throttle
 * Failed-login limits that an attacker cannot turn on a victim. Three tiers, all counted before the
 * password is checked (so a burst of concurrent guesses cannot slip past while scrypt runs) and given
 * back when the login succeeds:
 * - per (account, address): `freeFailures` misses, then exponential back-off (1 s, 2 s, 4 s, … up to
 *   `maxBackoffMs`). Only the guesser waits: the owner at another address has a counter of their own.
 * - per account, across every address: past `accountSlowdownAfter` misses the account accepts one
 *   attempt from an unknown address per growing delay, capped at `accountMaxDelayMs`. It slows a botnet
 *   spread over many addresses; it never locks: the right password from a fresh address waits at most
 *   the cap, and an address the account logged in from before is not delayed at all.
 * - per address, across every account: `addressMaxFailures` misses per window (a credential-stuffing
 *   run). Addresses are the real client's (TRUSTED_PROXIES), and an address the account is known at
 *   skips it, so a neighbour behind the same NAT spraying other accounts does not lock the owner out.
 * State is in memory and bounded (`MAX_TRACKED_LOGIN_KEYS`): a failed login costs no disk write (an
 * attacker cannot push load onto the journal's disk this way), and a restart only forgets back-offs.
 */

/** Entries tracked at once; past it expired entries are purged, then the oldest dropped. */
export const MAX_TRACKED_LOGIN_KEYS = 100_000;
/** Addresses remembered per account as ones it logged in from (most recent first). */
export const MAX_KNOWN_ADDRESSES = 4;
/** How long an address stays known to an account after its last successful login there. */
export const KNOWN_ADDRESS_TTL_MS = 30 * 24 * 3600 * 1000;
const FIRST_BACKOFF_MS = 1000;
/** 2^30 s is far past any cap: keeps the exponent from overflowing to Infinity. */
const MAX_DOUBLINGS = 30;

export interface LoginThrottleOptions {
  freeFailures: number;
  maxBackoffMs: number;
  accountSlowdownAfter: number;
  accountMaxDelayMs: number;
  addressMaxFailures: number;
  /** Counters are forgotten this long after their last failure; also the per-address window. */
  windowMs: number;
  now: () => number;
}

interface Entry {
  failures: number;
  /** No attempt counted against this key before then. */
  nextAllowedMs: number;
  /** When the entry may be forgotten. */
  forgetAtMs: number;
  /** Account entries only: addresses it logged in from, most recent first. */
  known?: string[];
}

export type ThrottleDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

/** The delay after `failures` misses once `free` were allowed: 1 s, 2 s, 4 s, … capped. */
export function backoffMs(failures: number, free: number, capMs: number): number {
  if (failures < free) return 0;
  return Math.min(capMs, FIRST_BACKOFF_MS * 2 ** Math.min(MAX_DOUBLINGS, failures - free));
}

export class LoginThrottle {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly options: LoginThrottleOptions) {}

  get size(): number {
    return this.#entries.size;
  }

  /** Counts an attempt by `address` on `account` as a failure, or answers how long to wait first. */
  take(account: string, address: string): ThrottleDecision {
    const nowMs = this.options.now();
    const pairKey = `pair:${account}\n${address}`;
    const accountKey = `account:${account}`;
    const addressKey = `address:${address}`;
    const isKnown = this.isKnownAddress(account, address);
    let waitMs = this.#waitMs(pairKey, nowMs);
    if (!isKnown) {
      waitMs = Math.max(waitMs, this.#waitMs(accountKey, nowMs));
      const byAddress = this.#live(addressKey, nowMs);
      if (byAddress && byAddress.failures >= this.options.addressMaxFailures)
        waitMs = Math.max(waitMs, byAddress.forgetAtMs - nowMs);
    }
    if (waitMs > 0) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    const { freeFailures, maxBackoffMs, accountSlowdownAfter, accountMaxDelayMs, windowMs } = this.options;
    this.#count(pairKey, nowMs, (n) => backoffMs(n, freeFailures, maxBackoffMs));
    // A known address's misses still count towards the account (they are misses), but it is not delayed.
    this.#count(accountKey, nowMs, (n) =>
      isKnown ? undefined : backoffMs(n, accountSlowdownAfter, accountMaxDelayMs),
    );
    const byAddress = this.#live(addressKey, nowMs) ?? this.#open(addressKey, nowMs);
    byAddress.failures++;
    // The address window is fixed from its first failure, not slid by each one.
    if (byAddress.failures === 1) byAddress.forgetAtMs = nowMs + windowMs;
    return { ok: true };
  }

  /** The password was right: the pair starts again, the other tiers get this attempt back. */
  succeeded(account: string, address: string): void {
    const nowMs = this.options.now();
    this.#entries.delete(`pair:${account}\n${address}`);
    this.#giveBack(`address:${address}`);
    const accountKey = `account:${account}`;
    const entry = this.#live(accountKey, nowMs) ?? this.#open(accountKey, nowMs);
    if (entry.failures > 0) entry.failures--;
    entry.known = [address, ...(entry.known ?? []).filter((a) => a !== address)].slice(
      0,
      MAX_KNOWN_ADDRESSES,
    );
    entry.forgetAtMs = Math.max(entry.forgetAtMs, nowMs + KNOWN_ADDRESS_TTL_MS);
  }

  /** The attempt was never judged (the server was too busy to hash): it counts against nobody. */
  refund(account: string, address: string): void {
    this.#giveBack(`pair:${account}\n${address}`);
    this.#giveBack(`account:${account}`);
    this.#giveBack(`address:${address}`);
  }

  isKnownAddress(account: string, address: string): boolean {
    return this.#live(`account:${account}`, this.options.now())?.known?.includes(address) ?? false;
  }

  #waitMs(key: string, nowMs: number): number {
    const entry = this.#live(key, nowMs);
    return entry ? Math.max(0, entry.nextAllowedMs - nowMs) : 0;
  }

  /** `delayAfter` answers undefined to leave the key's current delay as it is. */
  #count(key: string, nowMs: number, delayAfter: (failures: number) => number | undefined): void {
    const entry = this.#live(key, nowMs) ?? this.#open(key, nowMs);
    entry.failures++;
    const delayMs = delayAfter(entry.failures) ?? 0;
    entry.nextAllowedMs = Math.max(entry.nextAllowedMs, nowMs + delayMs);
    entry.forgetAtMs = Math.max(entry.forgetAtMs, nowMs + delayMs + this.options.windowMs);
  }

  #giveBack(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry || entry.failures === 0) return;
    entry.failures--;
    // The back-off the given-back attempt started is lifted only when it was the one that started it.
    if (entry.failures < this.#freeFor(key)) entry.nextAllowedMs = 0;
    if (entry.failures === 0 && !entry.known) this.#entries.delete(key);
  }

  #freeFor(key: string): number {
    if (key.startsWith('pair:')) return this.options.freeFailures;
    if (key.startsWith('account:')) return this.options.accountSlowdownAfter;
    return Number.POSITIVE_INFINITY;
  }

  #live(key: string, nowMs: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.forgetAtMs <= nowMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #open(key: string, nowMs: number): Entry {
    if (this.#entries.size >= MAX_TRACKED_LOGIN_KEYS) this.#makeRoom(nowMs);
    const entry: Entry = { failures: 0, nextAllowedMs: 0, forgetAtMs: nowMs };
    this.#entries.set(key, entry);
    return entry;
  }

  #makeRoom(nowMs: number): void {
    for (const [key, entry] of this.#entries) if (entry.forgetAtMs <= nowMs) this.#entries.delete(key);
    // Insertion order is first-seen order: the oldest entries go first.
    for (const key of this.#entries.keys()) {
      if (this.#entries.size < MAX_TRACKED_LOGIN_KEYS) break;
      this.#entries.delete(key);
    }
  }
}
