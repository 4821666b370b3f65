/**
 * Ids come from one pooled random draw handed out in slices: every id is fresh across refills of the
 * pool, of its documented length and alphabet, and holds carry their show.
 */
import { describe, expect, it } from 'vitest';
import { holdIdFor, showIdOfHold } from '../../src/domain/holds.js';
import { newId, randomToken, shortId } from '../../src/ids.js';

describe('ids', () => {
  it('never repeats, across many refills of the pool', () => {
    const seen = new Set<string>();
    // 16 bytes each: 20,000 ids use ~40 pools of 8 KiB.
    for (let i = 0; i < 20_000; i++) seen.add(newId('bkg'));
    for (let i = 0; i < 20_000; i++) seen.add(shortId('hld'));
    expect(seen.size).toBe(40_000);
  });

  it('has the documented length and a URL-safe alphabet', () => {
    expect(newId('usr')).toMatch(/^usr_[A-Za-z0-9_-]{22}$/);
    expect(shortId('ntf')).toMatch(/^ntf_[A-Za-z0-9_-]{16}$/);
    expect(randomToken(3)).toMatch(/^[A-Za-z0-9_-]{4}$/);
    const hold = holdIdFor('shw_abc');
    expect(hold).toMatch(/^hld_[A-Za-z0-9_-]{16}\.shw_abc$/);
    expect(showIdOfHold(hold)).toBe('shw_abc');
  });
});
