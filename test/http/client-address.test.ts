import { describe, expect, it } from 'vitest';
import {
  parseTrustedProxies,
  resolveClientAddress,
  type TrustedProxies,
} from '../../src/http/client-address.js';

function proxies(spec: string): TrustedProxies {
  const parsed = parseTrustedProxies(spec);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

describe('client address behind trusted proxies', () => {
  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    expect(resolveClientAddress('203.0.113.9', '198.51.100.1', proxies(''))).toBe('203.0.113.9');
    expect(resolveClientAddress('203.0.113.9', '198.51.100.1', proxies('10.0.0.0/8'))).toBe('203.0.113.9');
  });

  it('takes the right-most untrusted hop when the peer is a trusted proxy', () => {
    const trusted = proxies('127.0.0.1, 10.0.0.0/8');
    // A client may prepend anything; only what our proxies appended counts.
    expect(resolveClientAddress('127.0.0.1', '6.6.6.6, 198.51.100.7, 10.1.2.3', trusted)).toBe(
      '198.51.100.7',
    );
    expect(resolveClientAddress('::ffff:127.0.0.1', '198.51.100.7', trusted)).toBe('198.51.100.7');
  });

  it('falls back to the peer on a garbled chain or a missing header', () => {
    const trusted = proxies('127.0.0.1');
    expect(resolveClientAddress('127.0.0.1', 'not-an-ip', trusted)).toBe('127.0.0.1');
    expect(resolveClientAddress('127.0.0.1', undefined, trusted)).toBe('127.0.0.1');
  });

  it('refuses a malformed TRUSTED_PROXIES entry by name', () => {
    expect(parseTrustedProxies('10.0.0.0/99')).toMatch(/10\.0\.0\.0\/99/);
    expect(parseTrustedProxies('my-proxy')).toMatch(/my-proxy/);
  });
});
