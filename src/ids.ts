/**
 * @module ids
 * Random, URL-safe, node-independent ids with a readable prefix (`usr_`, `shw_`, `bkg_` …).
 */
import { randomBytes } from 'node:crypto';

/**
 * Bytes drawn from one `randomBytes` call and handed out in slices: a call per id cost more than the
 * rest of making most rows (3.5% of the HTTP thread in a full-booking profile, ~10 ids per booking).
 * The same cryptographic source; each byte is used once.
 */
const ENTROPY_BYTES = 8192;
let entropy = Buffer.alloc(0);
let entropyAt = 0;

/** `bytes` fresh random bytes as base64url (bytes ≤ ENTROPY_BYTES). */
export function randomToken(bytes: number): string {
  if (entropyAt + bytes > entropy.length) {
    entropy = randomBytes(ENTROPY_BYTES);
    entropyAt = 0;
  }
  const token = entropy.toString('base64url', entropyAt, entropyAt + bytes);
  entropyAt += bytes;
  return token;
}

/** 16 random bytes → 22 base64url characters: collision-free at any scale we will see. */
export function newId(prefix: string): string {
  return `${prefix}_${randomToken(16)}`;
}

/** Shorter ids for high-volume, show-scoped things (holds): 12 bytes → 16 characters. */
export function shortId(prefix: string): string {
  return `${prefix}_${randomToken(12)}`;
}
