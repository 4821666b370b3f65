/**
 * @module users
 * Accounts: registration, login (scrypt password hashes, at most `hashConcurrency` at once; failed-login
 * limits from login-throttle.ts), profile changes, the admin account from the environment, and the
 * booking history read. Tokens come from TokenService; this module never sees HTTP.
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import { newId } from '../ids.js';
import type { SqlValue, Store } from '../persistence/store.js';
import type { AuthUser, Role, TokenService } from './auth-tokens.js';
import type { BookingRow, BookingStatus } from './bookings.js';
import { type Failure, failure } from './failure.js';
import { HashGate, type HashLoad } from './hash-gate.js';
import { LoginThrottle } from './login-throttle.js';
import { passwordProblem } from './password-policy.js';

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
  /** Misses per (account, address) before back-off starts. */
  loginMaxFailures: number;
  /** Counters are forgotten this long after their last failure; the per-address window. */
  loginWindowSeconds: number;
  loginMaxBackoffSeconds: number;
  loginAccountSlowdownAfter: number;
  loginAccountMaxDelaySeconds: number;
  loginMaxFailuresPerAddress: number;
  hashConcurrency: number;
  hashQueueMax: number;
  onHashLoad?: (load: HashLoad) => void;
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
  /** Required with `password`: a stolen token alone must not be enough to take the account over. */
  currentPassword?: string;
}

function weakPassword(password: string, email: string): Failure | undefined {
  const problem = passwordProblem(password, email);
  return problem === undefined
    ? undefined
    : failure('VALIDATION_FAILED', `the password ${problem}`, { fields: { password: problem } });
}

/**
 * A unique index refused the row: SQLite's SQLITE_CONSTRAINT_UNIQUE (or PRIMARYKEY), PostgreSQL's
 * SQLSTATE 23505. How two writers racing for one email (or one load-test index) get a clean refusal.
 */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

const INSERT_USER = `INSERT INTO users (id, name, email, phone, password_hash, role, created_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`;

export class UserService {
  readonly throttle: LoginThrottle;
  readonly hashGate: HashGate;
  /** Computed at start so the first login with an unknown email takes no longer than the others. */
  readonly #dummyHash: Promise<string>;

  constructor(
    private readonly store: Store,
    private readonly tokens: TokenService,
    private readonly options: UserServiceOptions,
  ) {
    this.throttle = new LoginThrottle({
      freeFailures: options.loginMaxFailures,
      maxBackoffMs: options.loginMaxBackoffSeconds * 1000,
      accountSlowdownAfter: options.loginAccountSlowdownAfter,
      accountMaxDelayMs: options.loginAccountMaxDelaySeconds * 1000,
      addressMaxFailures: options.loginMaxFailuresPerAddress,
      windowMs: options.loginWindowSeconds * 1000,
      now: options.now,
    });
    this.hashGate = new HashGate(options.hashConcurrency, options.hashQueueMax, options.onHashLoad);
    this.#dummyHash = hashPassword(randomBytes(16).toString('hex'));
  }

  #iso(): string {
    return new Date(this.options.now()).toISOString();
  }

  #byId(id: string): Promise<UserRow | undefined> {
    return this.store.get<UserRow>('SELECT * FROM users WHERE id = ?', [id]);
  }

  /** `email` is normalised; the column is NOCASE on SQLite and citext on PostgreSQL anyway. */
  #byEmail(email: string): Promise<UserRow | undefined> {
    return this.store.get<UserRow>('SELECT * FROM users WHERE email = ?', [email]);
  }

  /** The new row, or undefined when the email is taken (the unique index decides a race). */
  async #insert(user: {
    name: string;
    email: string;
    phone: string | null;
    hash: string;
    role: Role;
  }): Promise<UserRow | undefined> {
    const now = this.#iso();
    try {
      return await this.store.get<UserRow>(INSERT_USER, [
        newId('usr'),
        user.name,
        user.email,
        user.phone,
        user.hash,
        user.role,
        now,
        now,
      ]);
    } catch (err) {
      if (isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  async register(input: Registration): Promise<Session | Failure> {
    const email = normaliseEmail(input.email);
    const weak = weakPassword(input.password, email);
    if (weak) return weak;
    // A cheap early answer; the unique index below is what decides two registrations racing.
    if (await this.#byEmail(email))
      return failure('EMAIL_TAKEN', 'an account with this email already exists');
    const hashed = await this.hashGate.run(() => hashPassword(input.password));
    if (!hashed.ok) return hashed;
    const row = await this.#insert({
      name: input.name,
      email,
      phone: input.phone ?? null,
      hash: hashed.value,
      role: 'user',
    });
    if (!row) return failure('EMAIL_TAKEN', 'an account with this email already exists');
    return this.#session(row);
  }

  /**
   * Same answer and similar timing for an unknown email and a wrong password: an unknown email still
   * costs one scrypt, against a dummy hash.
   */
  async login(emailInput: string, password: string, address: string): Promise<Session | Failure> {
    const email = normaliseEmail(emailInput);
    const checked = await this.#checkPassword(email, password, address);
    if (!checked.ok) return checked;
    const row = checked.row;
    if (!isHashCurrent(row.password_hash)) {
      // An upgrade the gate has no room for now waits for the next login.
      const rehashed = await this.hashGate.run(() => hashPassword(password));
      // Conditional on the hash it replaces: a password changed meanwhile is never overwritten.
      if (rehashed.ok)
        await this.store.run(
          'UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?',
          [rehashed.value, this.#iso(), row.id, row.password_hash],
        );
    }
    return this.#session(row);
  }

  /**
   * The password check behind a login and a password change, through the failed-login throttle: a
   * stolen token cannot guess the current password any faster than a login could.
   */
  async #checkPassword(
    email: string,
    password: string,
    address: string,
  ): Promise<{ ok: true; row: UserRow } | Failure> {
    const taken = this.throttle.take(email, address);
    if (!taken.ok)
      return failure('RATE_LIMITED', 'too many failed attempts; try again later', {
        retryAfterSeconds: taken.retryAfterSeconds,
      });
    let row: UserRow | undefined;
    try {
      row = await this.#byEmail(email);
    } catch (err) {
      // The attempt was never checked: it must not count as a failure against the account.
      this.throttle.refund(email, address);
      throw err;
    }
    const stored = row?.password_hash ?? (await this.#dummyHash);
    const verified = await this.hashGate.run(() => verifyPassword(password, stored));
    if (!verified.ok) {
      this.throttle.refund(email, address);
      return verified;
    }
    if (!row || !verified.value) return failure('INVALID_CREDENTIALS', 'the email or password is wrong');
    this.throttle.succeeded(email, address);
    return { ok: true, row };
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

  async get(userId: string): Promise<{ ok: true; user: PublicUser } | Failure> {
    const row = await this.#byId(userId);
    return row ? { ok: true, user: toUser(row) } : failure('USER_NOT_FOUND', 'this account no longer exists');
  }

  /**
   * A new password needs the current one (checked as a login from `address` would be) and ends every
   * other session of the user; `session` (the caller's) is kept.
   */
  async update(
    userId: string,
    patch: ProfilePatch,
    session?: AuthUser,
    address = 'unknown',
  ): Promise<{ ok: true; user: PublicUser } | Failure> {
    const found = await this.get(userId);
    if (!found.ok) return found;
    let hash: string | undefined;
    /** The hash the current password was checked against: the change applies only over that one. */
    let replaced: string | undefined;
    if (patch.password !== undefined) {
      const weak = weakPassword(patch.password, found.user.email);
      if (weak) return weak;
      if (patch.currentPassword === undefined)
        return failure('INVALID_CREDENTIALS', 'changing the password needs currentPassword', {
          fields: { currentPassword: 'required with password' },
        });
      const checked = await this.#checkPassword(found.user.email, patch.currentPassword, address);
      if (!checked.ok) {
        if (checked.code !== 'INVALID_CREDENTIALS') return checked;
        return failure('INVALID_CREDENTIALS', 'the current password is wrong', {
          fields: { currentPassword: 'wrong' },
        });
      }
      const newPassword = patch.password;
      const hashed = await this.hashGate.run(() => hashPassword(newPassword));
      if (!hashed.ok) return hashed;
      hash = hashed.value;
      replaced = checked.row.password_hash;
    }
    // Only the fields the patch names are set, so the statement needs no typed NULL tests (which
    // PostgreSQL cannot infer a parameter type for).
    const sets = ['updated_at = ?'];
    const params: SqlValue[] = [this.#iso()];
    const set = (column: string, value: SqlValue) => {
      sets.push(`${column} = ?`);
      params.push(value);
    };
    if (patch.name !== undefined) set('name', patch.name);
    if (patch.phone !== undefined) set('phone', patch.phone);
    if (hash !== undefined) set('password_hash', hash);
    params.push(userId);
    // Two changes checked against the same current password (scrypt runs outside any transaction):
    // the conditional write lets only the first land; the other finds the hash replaced.
    const where = replaced === undefined ? 'id = ?' : 'id = ? AND password_hash = ?';
    if (replaced !== undefined) params.push(replaced);
    // The new password and the end of the other sessions commit together (one transaction).
    const { row, bumped } = await this.store.transaction(async (tx) => {
      const updated = await tx.get<UserRow>(
        `UPDATE users SET ${sets.join(', ')} WHERE ${where} RETURNING *`,
        params,
      );
      const moved =
        updated && hash !== undefined ? await this.tokens.nextGeneration(tx, userId, session) : undefined;
      return { row: updated, bumped: moved };
    });
    this.tokens.sessionsEnded(userId, bumped);
    if (row) return { ok: true, user: toUser(row) };
    if (replaced !== undefined && (await this.#byId(userId)))
      return failure(
        'INVALID_CREDENTIALS',
        'the password was changed meanwhile; the current password is wrong',
        {
          fields: { currentPassword: 'wrong' },
        },
      );
    return failure('USER_NOT_FOUND', 'this account no longer exists');
  }

  /**
   * Creates the admin account from the environment, or makes an existing account with that email an
   * admin with that password, so changing ADMIN_PASSWORD and restarting rotates it.
   */
  async ensureAdmin(emailInput: string, password: string): Promise<PublicUser> {
    const email = normaliseEmail(emailInput);
    const row = await this.#byEmail(email);
    if (!row) {
      const hash = await hashPassword(password);
      const created = await this.#insert({ name: 'Administrator', email, phone: null, hash, role: 'admin' });
      if (created) return toUser(created);
      // Another start created the account meanwhile (the unique index refused ours): promote that one.
      return this.ensureAdmin(emailInput, password);
    }
    const isSamePassword = await verifyPassword(password, row.password_hash);
    const hash =
      isSamePassword && isHashCurrent(row.password_hash) ? row.password_hash : await hashPassword(password);
    const { updated, bumped } = await this.store.transaction(async (tx) => {
      const changed = await tx.get<UserRow>(
        "UPDATE users SET role = 'admin', password_hash = ?, updated_at = ? WHERE id = ? RETURNING *",
        [hash, this.#iso(), row.id],
      );
      // A rotated ADMIN_PASSWORD ends every session opened with the old one (a mere rehash does not).
      const moved = isSamePassword ? undefined : await this.tokens.nextGeneration(tx, row.id);
      return { updated: changed, bumped: moved };
    });
    this.tokens.sessionsEnded(row.id, bumped);
    if (!updated) throw new Error(`the admin account ${row.id} vanished while being updated`);
    return toUser(updated);
  }

  /** One page of a user's bookings, newest first; keyset paging on (created_at, id). */
  async bookingHistory(
    userId: string,
    query: { status?: BookingStatus; cursor?: string; limit?: number },
  ): Promise<{ ok: true; rows: BookingRow[]; nextCursor: string | null } | Failure> {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    if (query.cursor !== undefined && !after)
      return failure('VALIDATION_FAILED', 'the cursor is not one this API gave out', {
        fields: { cursor: 'invalid' },
      });
    const limit = Math.min(query.limit ?? DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE);
    // Conditions are added only when given: `? IS NULL` has no type PostgreSQL can infer.
    const where = ['user_id = ?'];
    const params: SqlValue[] = [userId];
    if (query.status !== undefined) {
      where.push('status = ?');
      params.push(query.status);
    }
    if (after) {
      where.push('(created_at, id) < (?, ?)');
      params.push(after.createdAt, after.id);
    }
    params.push(limit + 1);
    const rows = await this.store.all<BookingRow>(
      `SELECT * FROM bookings WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ?`,
      params,
    );
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
