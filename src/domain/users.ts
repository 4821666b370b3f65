/**
 * @module users
 * Accounts: registration, login (scrypt password hashes, failed-login limits per account and per
 * address), profile changes, the admin account from the environment, and the booking history read.
 * Tokens come from TokenService; this module never sees HTTP.
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import { newId } from '../ids.js';
import type { AppDb } from '../persistence/app-db.js';
import type { AuthUser, Role, TokenService } from './auth-tokens.js';
import type { BookingRow, BookingStatus } from './bookings.js';
import { type Failure, failure } from './failure.js';

export interface PublicUser {
  id: string;
  name: string;
  email: string;
  phone: string | null;
  role: Role;
  createdAt: string;
}

interface UserRow {
  id: string;
  name: string;
  email: string;
  phone: string | null;
  password_hash: string;
  role: Role;
  created_at: string;
  session_generation: number;
}

export interface Session {
  ok: true;
  user: PublicUser;
  token: string;
  expiresAtMs: number;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

function toUser(row: UserRow): PublicUser {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    phone: row.phone,
    role: row.role,
    createdAt: row.created_at,
  };
}

// ---------------------------------------------------------------------------------------------------
// Password hashes: `scrypt$<logN>$<r>$<p>$<salt b64url>$<key b64url>`. The parameters travel with the
// hash so they can be raised later: a login with an older hash re-hashes it with the current ones.

/**
 * N=2^14, r=8, p=1 (16 MiB, ~70 ms on a small server core): Django's scrypt defaults. Stronger settings
 * cost a login hundreds of milliseconds of a core; raise them here and old hashes upgrade at next login.
 */
export const SCRYPT_LOG_N = 14;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** Stored parameters above these are refused, so a tampered row cannot make a login eat the machine. */
const MAX_LOG_N = 20;
const MAX_R = 32;
const MAX_P = 4;

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  // scrypt needs 128 * N * r bytes; Node refuses anything above maxmem (32 MiB by default).
  const maxmem = 256 * (options.N ?? 1) * (options.r ?? 8);
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_BYTES, { ...options, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(password, salt, { N: 2 ** SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P });
  return [
    'scrypt',
    SCRYPT_LOG_N,
    SCRYPT_R,
    SCRYPT_P,
    salt.toString('base64url'),
    key.toString('base64url'),
  ].join('$');
}

interface ParsedHash {
  logN: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): ParsedHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [logN, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const isSane = (v: number, max: number) => Number.isInteger(v) && v >= 1 && v <= max;
  if (!isSane(logN, MAX_LOG_N) || !isSane(r, MAX_R) || !isSane(p, MAX_P)) return undefined;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const key = Buffer.from(parts[5]!, 'base64url');
  if (salt.length < 8 || key.length !== KEY_BYTES) return undefined;
  return { logN, r, p, salt, key };
}

/** Whether `password` matches `stored`; an unparsable hash (a locked account) never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await scryptAsync(password, parsed.salt, { N: 2 ** parsed.logN, r: parsed.r, p: parsed.p });
  return timingSafeEqual(key, parsed.key);
}

export function isHashCurrent(stored: string): boolean {
  const parsed = parseHash(stored);
  return parsed?.logN === SCRYPT_LOG_N && parsed.r === SCRYPT_R && parsed.p === SCRYPT_P;
}

// ---------------------------------------------------------------------------------------------------
// Failed-login limits.

/** Keys tracked at once; past it expired entries are purged, then the oldest dropped. */
export const MAX_TRACKED_LOGIN_KEYS = 100_000;
/**
 * An address may fail this many times the per-account limit: many people share one address (an office,
 * a mobile carrier's NAT, a reverse proxy in front of the service), while one account has one owner.
 * 20 × 5 = 100 failures per window still stops a credential-stuffing run from one address.
 */
export const ADDRESS_FAILURE_FACTOR = 20;

interface Window {
  count: number;
  endsAtMs: number;
}

export interface LimitKey {
  key: string;
  max: number;
}

/**
 * Fixed-window failure counters. An attempt is counted before the password is checked and forgiven on
 * success, so a burst of concurrent guesses cannot all slip past the check while scrypt runs.
 */
export class LoginLimiter {
  readonly #windows = new Map<string, Window>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** Counts an attempt against every key, or answers the seconds to wait when any key is spent. */
  take(keys: LimitKey[]): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const nowMs = this.now();
    let waitMs = 0;
    for (const { key, max } of keys) {
      const window = this.#live(key, nowMs);
      if (window && window.count >= max) waitMs = Math.max(waitMs, window.endsAtMs - nowMs);
    }
    if (waitMs > 0) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    for (const { key } of keys) {
      const window = this.#live(key, nowMs) ?? this.#open(key, nowMs);
      window.count++;
    }
    return { ok: true };
  }

  /** Takes back one counted attempt (the login succeeded). */
  forgive(key: string): void {
    const window = this.#windows.get(key);
    if (window && --window.count <= 0) this.#windows.delete(key);
  }

  clear(key: string): void {
    this.#windows.delete(key);
  }

  #live(key: string, nowMs: number): Window | undefined {
    const window = this.#windows.get(key);
    if (window && window.endsAtMs <= nowMs) {
      this.#windows.delete(key);
      return undefined;
    }
    return window;
  }

  #open(key: string, nowMs: number): Window {
    if (this.#windows.size >= MAX_TRACKED_LOGIN_KEYS) this.#makeRoom(nowMs);
    const window = { count: 0, endsAtMs: nowMs + this.windowMs };
    this.#windows.set(key, window);
    return window;
  }

  #makeRoom(nowMs: number): void {
    for (const [key, window] of this.#windows) if (window.endsAtMs <= nowMs) this.#windows.delete(key);
    // Insertion order is window-opening order: the oldest windows go first.
    for (const key of this.#windows.keys()) {
      if (this.#windows.size < MAX_TRACKED_LOGIN_KEYS) break;
      this.#windows.delete(key);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Booking history cursor: `(created_at, id)` of the last booking on the page, base64url JSON.

export const DEFAULT_HISTORY_PAGE = 20;
export const MAX_HISTORY_PAGE = 100;

export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: string; id: string } | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [createdAt, id] = value as unknown[];
    if (typeof createdAt !== 'string' || typeof id !== 'string') return undefined;
    return { createdAt, id };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------

export interface UserServiceOptions {
  loginMaxFailures: number;
  loginWindowSeconds: number;
  now: () => number;
}

export interface Registration {
  name: string;
  email: string;
  password: string;
  phone?: string | null;
}

export interface ProfilePatch {
  name?: string;
  phone?: string | null;
  password?: string;
}

export class UserService {
  readonly limiter: LoginLimiter;
  readonly #byId;
  readonly #byEmail;
  readonly #insert;
  readonly #setHash;
  /** Computed at start so the first login with an unknown email takes no longer than the others. */
  readonly #dummyHash: Promise<string>;

  constructor(
    private readonly db: AppDb,
    private readonly tokens: TokenService,
    private readonly options: UserServiceOptions,
  ) {
    this.limiter = new LoginLimiter(options.loginWindowSeconds * 1000, options.now);
    this.#byId = db.prepare('SELECT * FROM users WHERE id = ?');
    this.#byEmail = db.prepare('SELECT * FROM users WHERE email = ?');
    this.#insert = db.prepare(
      `INSERT INTO users (id, name, email, phone, password_hash, role, created_at, updated_at)
       VALUES (@id, @name, @email, @phone, @hash, @role, @now, @now)`,
    );
    // Conditional on the hash it replaces: a password changed meanwhile is never overwritten.
    this.#setHash = db.prepare(
      'UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?',
    );
    this.#dummyHash = hashPassword(randomBytes(16).toString('hex'));
  }

  #iso(): string {
    return new Date(this.options.now()).toISOString();
  }

  async register(input: Registration): Promise<Session | Failure> {
    const email = normaliseEmail(input.email);
    if (this.#byEmail.get(email)) return failure('EMAIL_TAKEN', 'an account with this email already exists');
    const hash = await hashPassword(input.password);
    const id = newId('usr');
    try {
      this.#insert.run({
        id,
        name: input.name,
        email,
        phone: input.phone ?? null,
        hash,
        role: 'user',
        now: this.#iso(),
      });
    } catch (err) {
      // Two registrations racing for one email: the unique index decides.
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        return failure('EMAIL_TAKEN', 'an account with this email already exists');
      throw err;
    }
    return this.#session(this.#byId.get(id) as UserRow);
  }

  /**
   * Same answer and similar timing for an unknown email and a wrong password: an unknown email still
   * costs one scrypt, against a dummy hash.
   */
  async login(emailInput: string, password: string, address: string): Promise<Session | Failure> {
    const email = normaliseEmail(emailInput);
    const accountKey = `account:${email}`;
    const limit = this.options.loginMaxFailures;
    const taken = this.limiter.take([
      { key: accountKey, max: limit },
      { key: `address:${address}`, max: limit * ADDRESS_FAILURE_FACTOR },
    ]);
    if (!taken.ok)
      return failure('RATE_LIMITED', 'too many failed logins; try again later', {
        retryAfterSeconds: taken.retryAfterSeconds,
      });
    const row = this.#byEmail.get(email) as UserRow | undefined;
    const isMatch = await verifyPassword(password, row?.password_hash ?? (await this.#dummyHash));
    if (!row || !isMatch) return failure('INVALID_CREDENTIALS', 'the email or password is wrong');
    // The owner got in: their account's count starts again; the address keeps its other failures.
    this.limiter.clear(accountKey);
    this.limiter.forgive(`address:${address}`);
    if (!isHashCurrent(row.password_hash))
      this.#setHash.run(await hashPassword(password), this.#iso(), row.id, row.password_hash);
    return this.#session(row);
  }

  /**
   * The token carries the session generation read with the row the password was checked against: a
   * password change that lands while scrypt runs makes this token one of the sessions it ends.
   */
  async #session(row: UserRow): Promise<Session> {
    const { token, expiresAtMs } = await this.tokens.issue({
      id: row.id,
      role: row.role,
      generation: row.session_generation,
    });
    return { ok: true, user: toUser(row), token, expiresAtMs };
  }

  get(userId: string): { ok: true; user: PublicUser } | Failure {
    const row = this.#byId.get(userId) as UserRow | undefined;
    return row ? { ok: true, user: toUser(row) } : failure('USER_NOT_FOUND', 'this account no longer exists');
  }

  /** A new password ends every other session of the user; `session` (the caller's) is kept. */
  async update(
    userId: string,
    patch: ProfilePatch,
    session?: AuthUser,
  ): Promise<{ ok: true; user: PublicUser } | Failure> {
    const found = this.get(userId);
    if (!found.ok) return found;
    const hash = patch.password === undefined ? undefined : await hashPassword(patch.password);
    // The new password and the end of the other sessions commit together.
    this.db.transaction(() => {
      this.db
        .prepare(
          `UPDATE users SET name = COALESCE(@name, name), phone = CASE WHEN @setPhone THEN @phone ELSE phone END,
         password_hash = COALESCE(@hash, password_hash), updated_at = @now WHERE id = @id`,
        )
        .run({
          id: userId,
          name: patch.name ?? null,
          setPhone: patch.phone === undefined ? 0 : 1,
          phone: patch.phone ?? null,
          hash: hash ?? null,
          now: this.#iso(),
        });
      if (hash !== undefined) this.tokens.endOtherSessions(userId, session);
    })();
    return this.get(userId);
  }

  /**
   * Creates the admin account from the environment, or makes an existing account with that email an
   * admin with that password, so changing ADMIN_PASSWORD and restarting rotates it.
   */
  async ensureAdmin(emailInput: string, password: string): Promise<PublicUser> {
    const email = normaliseEmail(emailInput);
    const row = this.#byEmail.get(email) as UserRow | undefined;
    if (!row) {
      const id = newId('usr');
      const hash = await hashPassword(password);
      this.#insert.run({
        id,
        name: 'Administrator',
        email,
        phone: null,
        hash,
        role: 'admin',
        now: this.#iso(),
      });
      return toUser(this.#byId.get(id) as UserRow);
    }
    const isSamePassword = await verifyPassword(password, row.password_hash);
    const hash =
      isSamePassword && isHashCurrent(row.password_hash) ? row.password_hash : await hashPassword(password);
    this.db.transaction(() => {
      this.db
        .prepare("UPDATE users SET role = 'admin', password_hash = ?, updated_at = ? WHERE id = ?")
        .run(hash, this.#iso(), row.id);
      // A rotated ADMIN_PASSWORD ends every session opened with the old one (a mere rehash does not).
      if (!isSamePassword) this.tokens.endOtherSessions(row.id);
    })();
    return toUser(this.#byId.get(row.id) as UserRow);
  }

  /** One page of a user's bookings, newest first; keyset paging on (created_at, id). */
  bookingHistory(
    userId: string,
    query: { status?: BookingStatus; cursor?: string; limit?: number },
  ): { ok: true; rows: BookingRow[]; nextCursor: string | null } | Failure {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    if (query.cursor !== undefined && !after)
      return failure('VALIDATION_FAILED', 'the cursor is not one this API gave out', {
        fields: { cursor: 'invalid' },
      });
    const limit = Math.min(query.limit ?? DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE);
    const rows = this.db
      .prepare(
        `SELECT * FROM bookings WHERE user_id = @userId
           AND (@status IS NULL OR status = @status)
           AND (@afterAt IS NULL OR (created_at, id) < (@afterAt, @afterId))
         ORDER BY created_at DESC, id DESC LIMIT @take`,
      )
      .all({
        userId,
        status: query.status ?? null,
        afterAt: after?.createdAt ?? null,
        afterId: after?.id ?? null,
        take: limit + 1,
      }) as BookingRow[];
    const hasMore = rows.length > limit;
    const page = hasMore ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    return {
      ok: true,
      rows: page,
      nextCursor: hasMore && last ? encodeCursor(last.created_at, last.id) : null,
    };
  }
}
