/**
 * @module tickets/ticket-signer
 * Ticket codes: compact JWS tokens (a JWT, `typ: ticket+jwt`) signed with Ed25519 (`alg: EdDSA`) that
 * name the booking, show, seats and holder. A gate verifies them offline with the public keys from
 * /.well-known/jwks.json (`verifyTicketCode`); the server adds the online checks (revoked, cancelled).
 *
 * Keys: TICKET_SIGNING_KEY (an Ed25519 private JWK as JSON) when set, else a key generated once and kept
 * in DATA_DIR/secrets/ticket-keys.json (mode 0600). A key that stops being the signing key (rotation, or a
 * new TICKET_SIGNING_KEY) keeps its public half in that file, so tickets already issued still verify.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createLocalJWKSet, type JSONWebKeySet, type JWK, errors as joseErrors, jwtVerify } from 'jose';

export const TICKET_ISSUER = 'boxoffice';
export const TICKET_TYPE = 'ticket+jwt';
export const TICKET_ALG = 'EdDSA';
/**
 * Admission tokens of the on-sale waiting room are signed by the same key family under their own `typ`:
 * a ticket code is never an admission token and an admission token never a ticket (each check demands
 * its own `typ`).
 */
export const ADMISSION_TYPE = 'admission+jwt';
/** Bound on an admission token a client may send; one names its shows and stays well under this. */
export const MAX_ADMISSION_TOKEN_CHARS = 4000;
/** A ticket stays valid this long after its show starts (late entry, long films), then expires. */
export const TICKET_VALID_AFTER_START_SECONDS = 12 * 3600;
/** Retired public keys kept for verification; past it the oldest go (their tickets then fail offline). */
export const MAX_RETIRED_KEYS = 16;
/** Bound on what a ticket may carry, so its QR code stays scannable (QR version 40-M holds 2331 bytes). */
export const MAX_TICKET_SEATS = 50;
export const MAX_TICKET_CODE_CHARS = 2000;
export const MAX_HOLDER_NAME_CHARS = 100;

export interface TicketInput {
  bookingId: string;
  showId: string;
  seats: string[];
  holderName: string;
  userId: string;
  /** ISO-8601 start of the show; the ticket expires TICKET_VALID_AFTER_START_SECONDS after it. */
  startTime: string;
}

/** What a verified code says: the input it was signed from, and when and with which key. */
export interface TicketClaims extends TicketInput {
  issuedAt: string;
  expiresAt: string;
  kid: string;
}

/** What an admission token says: the user (`sub`), the on-sale (`ons`), its shows, and its lifetime. */
export interface AdmissionClaims {
  sub: string;
  ons: string;
  shows: string[];
  /** Seconds since the epoch, as in any JWT. */
  iat: number;
  exp: number;
}

export type AdmissionCheck = { valid: true; claims: AdmissionClaims } | { valid: false; reason: string };

export type TicketCheck = { valid: true; claims: TicketClaims } | { valid: false; reason: string };

/** A public verification key as published in the JWKS. */
export interface TicketPublicJwk extends JWK {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: typeof TICKET_ALG;
  use: 'sig';
}

export class TicketKeyError extends Error {}

interface StoredKey {
  kid: string;
  /** Only the generated signing key keeps its private half on disk; retired and env keys never do. */
  privateJwk?: JWK;
  publicJwk: TicketPublicJwk;
  createdAt: string;
  retiredAt?: string;
}

interface KeyRing {
  keys: StoredKey[];
}

/** The token's payload: short names keep the QR code small. */
interface TicketPayload {
  iss: string;
  sub: string;
  show: string;
  seats: string[];
  name: string;
  uid: string;
  start: string;
  iat: number;
  exp: number;
}

export class TicketSigner {
  #privateKey: KeyObject;
  #kid: string;
  #keys: StoredKey[];
  #jwks: { keys: TicketPublicJwk[] } = { keys: [] };
  #keySet: ReturnType<typeof createLocalJWKSet> = createLocalJWKSet({ keys: [] });
  /** Public keys by kid, for the synchronous admission check on the hold path. */
  #publicKeys = new Map<string, KeyObject>();

  private constructor(
    private readonly file: string | undefined,
    private readonly isKeyFromEnv: boolean,
    active: { privateKey: KeyObject; stored: StoredKey },
    keys: StoredKey[],
    private readonly now: () => number,
  ) {
    this.#privateKey = active.privateKey;
    this.#kid = active.stored.kid;
    this.#keys = keys;
    this.#publish();
  }

  /**
   * Loads (or creates) the signing key and the retired public keys.
   *
   * @example
   * const tickets = TicketSigner.load(config, now); // reads config.TICKET_SIGNING_KEY and config.dataDir
   */
  static load(
    config: { TICKET_SIGNING_KEY?: string; dataDir: string },
    now: () => number = Date.now,
  ): TicketSigner {
    const file = path.join(config.dataDir, 'secrets', 'ticket-keys.json');
    const ring = readRing(file);
    const at = new Date(now()).toISOString();
    let active: { privateKey: KeyObject; stored: StoredKey };
    if (config.TICKET_SIGNING_KEY) {
      const privateKey = parsePrivateJwk(config.TICKET_SIGNING_KEY);
      const kid = kidOf(privateKey, tryJson(config.TICKET_SIGNING_KEY)?.kid);
      // Only the env key's public half is recorded, so the tickets it signed survive the next key change.
      const known = ring.keys.find((k) => k.kid === kid);
      active = {
        privateKey,
        stored: { kid, publicJwk: publicJwkOf(privateKey, kid), createdAt: known?.createdAt ?? at },
      };
    } else {
      const current = ring.keys.find((k) => k.privateJwk && !k.retiredAt);
      active = current
        ? {
            privateKey: createPrivateKey({ key: current.privateJwk as JsonWebKey, format: 'jwk' }),
            stored: current,
          }
        : generateStoredKey(at);
    }
    const keys = retireAllBut(ring.keys, active.stored, at);
    if (JSON.stringify(keys) !== JSON.stringify(ring.keys)) writeRing(file, { keys });
    return new TicketSigner(file, Boolean(config.TICKET_SIGNING_KEY), active, keys, now);
  }

  /** A signer whose key lives only in memory (tests, tools). */
  static ephemeral(now: () => number = Date.now): TicketSigner {
    const active = generateStoredKey(new Date(now()).toISOString());
    return new TicketSigner(undefined, false, active, [active.stored], now);
  }

  /** The id of the key that signs new tickets. */
  get kid(): string {
    return this.#kid;
  }

  /**
   * Signs a ticket. Synchronous on purpose: the booking saga signs inside the step that confirms the
   * booking, which is synchronous. Ed25519 through node:crypto is what jose itself uses on Node.
   */
  sign(input: TicketInput): { code: string; kid: string } {
    if (input.seats.length === 0 || input.seats.length > MAX_TICKET_SEATS)
      throw new RangeError(`a ticket names 1 to ${MAX_TICKET_SEATS} seats, not ${input.seats.length}`);
    const nowSeconds = Math.floor(this.now() / 1000);
    const startSeconds = Math.floor(Date.parse(input.startTime) / 1000);
    const fromSeconds = Number.isFinite(startSeconds) ? Math.max(startSeconds, nowSeconds) : nowSeconds;
    const payload: TicketPayload = {
      iss: TICKET_ISSUER,
      sub: input.bookingId,
      show: input.showId,
      seats: input.seats,
      name: input.holderName.slice(0, MAX_HOLDER_NAME_CHARS),
      uid: input.userId,
      start: input.startTime,
      iat: nowSeconds,
      exp: fromSeconds + TICKET_VALID_AFTER_START_SECONDS,
    };
    const header = { alg: TICKET_ALG, kid: this.#kid, typ: TICKET_TYPE };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
    const signature = sign(null, Buffer.from(signingInput), this.#privateKey).toString('base64url');
    const code = `${signingInput}.${signature}`;
    if (code.length > MAX_TICKET_CODE_CHARS)
      throw new RangeError(`ticket code of ${code.length} characters is too long`);
    return { code, kid: this.#kid };
  }

  /** Signature, issuer, type and expiry, against every published key (current and retired). */
  verify(code: string): Promise<TicketCheck> {
    return verifyWith(code, this.#keySet, this.now());
  }

  /** The public keys for /.well-known/jwks.json: the signing key first, then retired ones. */
  jwks(): { keys: TicketPublicJwk[] } {
    return this.#jwks;
  }

  /**
   * Makes a new signing key and retires the current one, whose public half stays published so issued
   * tickets still verify. Returns the new kid. Refused when the key comes from TICKET_SIGNING_KEY: set a
   * new value and restart instead (the old key is then retired the same way).
   */
  rotate(): string {
    if (this.isKeyFromEnv)
      throw new TicketKeyError(
        'the ticket key comes from TICKET_SIGNING_KEY: set a new one and restart to rotate',
      );
    const at = new Date(this.now()).toISOString();
    const next = generateStoredKey(at);
    const keys = retireAllBut(this.#keys, next.stored, at);
    if (this.file) writeRing(this.file, { keys });
    this.#privateKey = next.privateKey;
    this.#kid = next.stored.kid;
    this.#keys = keys;
    this.#publish();
    return this.#kid;
  }

  /**
   * Signs an admission token: a compact JWS with `typ: admission+jwt` around `claims`. Ed25519 is
   * deterministic, so the same claims always give the same token (a poll may sign again).
   */
  signAdmission(claims: AdmissionClaims): string {
    const header = { alg: TICKET_ALG, kid: this.#kid, typ: ADMISSION_TYPE };
    const payload = { iss: TICKET_ISSUER, ...claims };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
    const signature = sign(null, Buffer.from(signingInput), this.#privateKey).toString('base64url');
    return `${signingInput}.${signature}`;
  }

  /**
   * Checks an admission token with nothing but the public keys: shape, `typ`, issuer, signature and
   * expiry at `nowMs`. Synchronous and without a database read, so the hold path can afford it. Whom and
   * what it admits (user, on-sale, show) is the caller's check.
   */
  verifyAdmission(token: string, nowMs: number): AdmissionCheck {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_ADMISSION_TOKEN_CHARS)
      return { valid: false, reason: 'malformed admission token' };
    const parts = token.split('.');
    if (parts.length !== 3) return { valid: false, reason: 'malformed admission token' };
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = tryJson(Buffer.from(headerPart, 'base64url').toString('utf8'));
    if (!header || header.alg !== TICKET_ALG || header.typ !== ADMISSION_TYPE)
      return { valid: false, reason: 'not an admission token' };
    const key = typeof header.kid === 'string' ? this.#publicKeys.get(header.kid) : undefined;
    if (!key) return { valid: false, reason: 'unknown signing key' };
    const isSigned = verify(
      null,
      Buffer.from(`${headerPart}.${payloadPart}`),
      key,
      Buffer.from(signaturePart, 'base64url'),
    );
    if (!isSigned) return { valid: false, reason: 'invalid signature' };
    const p = tryJson(Buffer.from(payloadPart, 'base64url').toString('utf8'));
    const shows = p?.shows;
    if (
      !p ||
      p.iss !== TICKET_ISSUER ||
      typeof p.sub !== 'string' ||
      typeof p.ons !== 'string' ||
      !Array.isArray(shows) ||
      !shows.every((s) => typeof s === 'string') ||
      typeof p.iat !== 'number' ||
      typeof p.exp !== 'number'
    )
      return { valid: false, reason: 'malformed admission claims' };
    if (p.exp * 1000 <= nowMs) return { valid: false, reason: 'admission expired' };
    return {
      valid: true,
      claims: { sub: p.sub, ons: p.ons, shows: shows as string[], iat: p.iat, exp: p.exp },
    };
  }

  #publish(): void {
    // retireAllBut puts the active key first.
    const keys = this.#keys.map((k) => k.publicJwk);
    this.#jwks = { keys };
    this.#keySet = createLocalJWKSet({ keys } as JSONWebKeySet);
    this.#publicKeys = new Map(
      keys.map((k) => [k.kid, createPublicKey({ key: k as unknown as JsonWebKey, format: 'jwk' })]),
    );
  }
}

/**
 * Verifies a ticket code with nothing but a JWKS, as a gate does offline.
 *
 * @example
 * const jwks = await (await fetch('https://boxoffice.example/.well-known/jwks.json')).json();
 * const check = await verifyTicketCode(code, jwks);
 * if (check.valid) admit(check.claims.seats);
 */
export function verifyTicketCode(
  code: string,
  jwks: { keys: JWK[] },
  options: { nowMs?: number } = {},
): Promise<TicketCheck> {
  return verifyWith(code, createLocalJWKSet(jwks as JSONWebKeySet), options.nowMs ?? Date.now());
}

/** A fresh Ed25519 private JWK (JSON) with its kid, suitable for TICKET_SIGNING_KEY. */
export function generateTicketSigningKey(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const kid = kidOf(privateKey);
  return JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid, alg: TICKET_ALG, use: 'sig' });
}

async function verifyWith(
  code: string,
  keySet: ReturnType<typeof createLocalJWKSet>,
  nowMs: number,
): Promise<TicketCheck> {
  if (typeof code !== 'string' || code.length === 0 || code.length > MAX_TICKET_CODE_CHARS)
    return { valid: false, reason: 'malformed ticket code' };
  try {
    const { payload, protectedHeader } = await jwtVerify(code, keySet, {
      issuer: TICKET_ISSUER,
      typ: TICKET_TYPE,
      algorithms: [TICKET_ALG],
      currentDate: new Date(nowMs),
      requiredClaims: ['sub', 'iat', 'exp'],
    });
    const claims = claimsOf(payload as Partial<TicketPayload>, protectedHeader.kid);
    return claims ? { valid: true, claims } : { valid: false, reason: 'malformed ticket claims' };
  } catch (err) {
    return { valid: false, reason: reasonOf(err) };
  }
}

function claimsOf(p: Partial<TicketPayload>, kid: string | undefined): TicketClaims | undefined {
  const isStringArray = Array.isArray(p.seats) && p.seats.every((s) => typeof s === 'string');
  if (
    typeof p.sub !== 'string' ||
    typeof p.show !== 'string' ||
    !isStringArray ||
    typeof p.name !== 'string' ||
    typeof p.iat !== 'number' ||
    typeof p.exp !== 'number' ||
    typeof kid !== 'string'
  )
    return undefined;
  return {
    bookingId: p.sub,
    showId: p.show,
    seats: p.seats as string[],
    holderName: p.name,
    userId: typeof p.uid === 'string' ? p.uid : '',
    startTime: typeof p.start === 'string' ? p.start : '',
    issuedAt: new Date(p.iat * 1000).toISOString(),
    expiresAt: new Date(p.exp * 1000).toISOString(),
    kid,
  };
}

function reasonOf(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'ticket expired';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'invalid signature';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'unknown signing key';
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return 'ambiguous signing key';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `invalid ticket: ${err.claim} ${err.reason}`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  return 'malformed ticket code';
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function tryJson(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function parsePrivateJwk(text: string): KeyObject {
  const jwk = tryJson(text);
  if (!jwk) throw new TicketKeyError('TICKET_SIGNING_KEY must be a private JWK in JSON');
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string')
    throw new TicketKeyError(
      'TICKET_SIGNING_KEY must be an Ed25519 private JWK (kty OKP, crv Ed25519, with d)',
    );
  try {
    const key = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
    const derivedX = (createPublicKey(key).export({ format: 'jwk' }) as { x?: string }).x;
    if (derivedX !== jwk.x) throw new TicketKeyError('TICKET_SIGNING_KEY: x does not match d');
    return key;
  } catch (err) {
    if (err instanceof TicketKeyError) throw err;
    throw new TicketKeyError(`TICKET_SIGNING_KEY is not a usable key: ${(err as Error).message}`);
  }
}

/** RFC 7638 thumbprint of the public key, unless the JWK names its own kid. */
function kidOf(key: KeyObject, given?: unknown): string {
  if (typeof given === 'string' && given.length > 0 && given.length <= 100) return given;
  const { x } = createPublicKey(key).export({ format: 'jwk' }) as { x: string };
  return createHash('sha256')
    .update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x }))
    .digest('base64url');
}

function publicJwkOf(key: KeyObject, kid: string): TicketPublicJwk {
  const { x } = createPublicKey(key).export({ format: 'jwk' }) as { x: string };
  return { kty: 'OKP', crv: 'Ed25519', x, kid, alg: TICKET_ALG, use: 'sig' };
}

function generateStoredKey(at: string): { privateKey: KeyObject; stored: StoredKey } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const kid = kidOf(privateKey);
  const privateJwk = privateKey.export({ format: 'jwk' }) as JWK;
  return { privateKey, stored: { kid, privateJwk, publicJwk: publicJwkOf(privateKey, kid), createdAt: at } };
}

/** The active key first; every other key retired, public half only, newest kept within the bound. */
function retireAllBut(keys: StoredKey[], active: StoredKey, at: string): StoredKey[] {
  const retired = keys
    .filter((k) => k.kid !== active.kid)
    .map((k) => ({
      kid: k.kid,
      publicJwk: k.publicJwk,
      createdAt: k.createdAt,
      retiredAt: k.retiredAt ?? at,
    }))
    .sort((a, b) => (a.retiredAt < b.retiredAt ? 1 : a.retiredAt > b.retiredAt ? -1 : 0))
    .slice(0, MAX_RETIRED_KEYS);
  const current: StoredKey = { kid: active.kid, publicJwk: active.publicJwk, createdAt: active.createdAt };
  if (active.privateJwk) current.privateJwk = active.privateJwk;
  return [current, ...retired];
}

function readRing(file: string): KeyRing {
  if (!fs.existsSync(file)) return { keys: [] };
  const ring = tryJson(fs.readFileSync(file, 'utf8')) as KeyRing | undefined;
  if (!ring || !Array.isArray(ring.keys)) throw new TicketKeyError(`${file} is not a ticket key ring`);
  return ring;
}

/** Written to a temporary file and renamed, so a crash never leaves half a key ring. */
function writeRing(file: string, ring: KeyRing): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, `${JSON.stringify(ring, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(temporary, file);
}
