/**
 * Password hashing and the booking-history cursor, in isolation.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeCursor,
  encodeCursor,
  hashPassword,
  isHashCurrent,
  SCRYPT_LOG_N,
  verifyPassword,
} from '../../src/domain/users.js';

describe('password hashes', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hashPassword('correct horse');
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct horsf', hash)).toBe(false);
  });

  it('salts every hash and stores its parameters with it', async () => {
    const [a, b] = await Promise.all([hashPassword('same'), hashPassword('same')]);
    expect(a).not.toBe(b);
    expect(a.split('$').slice(0, 4)).toEqual(['scrypt', String(SCRYPT_LOG_N), '8', '1']);
    expect(isHashCurrent(a)).toBe(true);
  });

  it('never matches a malformed or tampered hash', async () => {
    const hash = await hashPassword('pw-123456');
    const parts = hash.split('$');
    expect(await verifyPassword('pw-123456', '!locked')).toBe(false);
    expect(await verifyPassword('pw-123456', '')).toBe(false);
    // An absurd cost would make one login eat the machine: refused before hashing.
    expect(await verifyPassword('pw-123456', ['scrypt', '30', ...parts.slice(2)].join('$'))).toBe(false);
    expect(await verifyPassword('pw-123456', [...parts.slice(0, 5), 'AAAA'].join('$'))).toBe(false);
  });

  it('still verifies a hash made with older, cheaper parameters, and reports it as not current', async () => {
    const { scryptSync, randomBytes } = await import('node:crypto');
    const salt = randomBytes(16);
    const key = scryptSync('old-password', salt, 32, { N: 2 ** 10, r: 8, p: 1 });
    const old = ['scrypt', 10, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
    expect(await verifyPassword('old-password', old)).toBe(true);
    expect(isHashCurrent(old)).toBe(false);
  });
});

describe('history cursor', () => {
  it('round-trips and rejects anything it did not make', () => {
    expect(decodeCursor(encodeCursor('2026-01-01T00:00:00.000Z', 'bkg_1'))).toEqual({
      createdAt: '2026-01-01T00:00:00.000Z',
      id: 'bkg_1',
    });
    expect(decodeCursor('not-base64-json')).toBeUndefined();
    expect(decodeCursor(Buffer.from('[1,2]').toString('base64url'))).toBeUndefined();
    expect(decodeCursor(Buffer.from('{"a":1}').toString('base64url'))).toBeUndefined();
  });
});
