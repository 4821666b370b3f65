/**
 * The failed-login throttle in isolation: back-off per (account, address), the account-wide slow-down
 * that never locks, the per-address limit, and its bound on memory.
 */
import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  LoginThrottle,
  type LoginThrottleOptions,
  MAX_TRACKED_LOGIN_KEYS,
} from '../../src/domain/login-throttle.js';

function setup(overrides: Partial<LoginThrottleOptions> = {}) {
  let nowMs = 1_000_000;
  const throttle = new LoginThrottle({
    freeFailures: 3,
    maxBackoffMs: 60_000,
    accountSlowdownAfter: 10,
    accountMaxDelayMs: 30_000,
    addressMaxFailures: 50,
    windowMs: 900_000,
    now: () => nowMs,
    ...overrides,
  });
  return { throttle, advance: (ms: number) => (nowMs += ms) };
}

describe('login throttle', () => {
  it('backs off exponentially, capped', () => {
    expect([2, 3, 4, 5, 6].map((n) => backoffMs(n, 3, 60_000))).toEqual([0, 1000, 2000, 4000, 8000]);
    expect(backoffMs(40, 3, 60_000)).toBe(60_000);
    expect(backoffMs(5000, 3, 60_000)).toBe(60_000);
  });

  it('lets one address guess an account a few times, then makes it wait longer each time', () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < 3; i++) expect(throttle.take('alice', '6.6.6.6').ok).toBe(true);
    expect(throttle.take('alice', '6.6.6.6')).toEqual({ ok: false, retryAfterSeconds: 1 });
    advance(1000);
    expect(throttle.take('alice', '6.6.6.6').ok).toBe(true);
    expect(throttle.take('alice', '6.6.6.6')).toEqual({ ok: false, retryAfterSeconds: 2 });
    advance(2000);
    expect(throttle.take('alice', '6.6.6.6').ok).toBe(true);
    expect(throttle.take('alice', '6.6.6.6')).toEqual({ ok: false, retryAfterSeconds: 4 });
    // Meanwhile the owner, elsewhere, is not held up at all.
    expect(throttle.take('alice', '10.0.0.1').ok).toBe(true);
  });

  it('slows an account guessed from many addresses, but never beyond its cap, and not at a known address', () => {
    const { throttle, advance } = setup();
    expect(throttle.take('alice', 'home').ok).toBe(true);
    throttle.succeeded('alice', 'home');
    let refusals = 0;
    for (let i = 0; i < 200; i++) {
      const decision = throttle.take('alice', `bot-${i}`);
      if (!decision.ok) {
        refusals++;
        expect(decision.retryAfterSeconds).toBeLessThanOrEqual(30);
        advance(decision.retryAfterSeconds * 1000);
      }
    }
    expect(refusals).toBeGreaterThan(0);
    // Under attack, the right password from a fresh address waits at most the cap; at home, not at all.
    const fresh = throttle.take('alice', 'hotel');
    expect(fresh.ok ? 0 : fresh.retryAfterSeconds).toBeLessThanOrEqual(30);
    expect(throttle.take('alice', 'home').ok).toBe(true);
  });

  it('limits an address failing across accounts, except for an account known there', () => {
    const { throttle, advance } = setup({ addressMaxFailures: 5 });
    expect(throttle.take('dave', 'office').ok).toBe(true);
    throttle.succeeded('dave', 'office');
    for (let i = 0; i < 5; i++) expect(throttle.take(`user-${i}`, 'office').ok).toBe(true);
    expect(throttle.take('carol', 'office').ok).toBe(false);
    expect(throttle.take('dave', 'office').ok).toBe(true);
    advance(900_000);
    expect(throttle.take('carol', 'office').ok).toBe(true);
  });

  it('gives back a refunded attempt and forgets a pair that succeeded', () => {
    const { throttle } = setup();
    for (let i = 0; i < 3; i++) throttle.take('bob', 'x');
    throttle.refund('bob', 'x');
    expect(throttle.take('bob', 'x').ok).toBe(true);
    expect(throttle.take('bob', 'x').ok).toBe(false);
    throttle.succeeded('bob', 'x');
    expect(throttle.take('bob', 'x').ok).toBe(true);
  });

  it('stays within its bound on tracked keys', () => {
    const { throttle } = setup({ freeFailures: 1 });
    for (let i = 0; i < MAX_TRACKED_LOGIN_KEYS; i++) throttle.take(`acct-${i}`, 'a');
    expect(throttle.size).toBeLessThanOrEqual(MAX_TRACKED_LOGIN_KEYS);
  });
});
