/**
 * The catalog's pure helpers and the demo layouts' bounds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileLayout } from '../../src/actors/seat-layout.js';
import {
  canonicalLanguage,
  canonicalName,
  checkPrices,
  liveAvailability,
  utcDay,
} from '../../src/domain/catalog.js';
import { demoLayout, prng } from '../../src/domain/demo-seed.js';

describe('catalog helpers', () => {
  it('spells languages one way so the plain index serves the filter', () => {
    expect(canonicalLanguage(' hindi ')).toBe('Hindi');
    expect(canonicalLanguage('TAMIL')).toBe('Tamil');
    expect(canonicalLanguage('brazilian portuguese')).toBe('Brazilian Portuguese');
    expect(canonicalName('  New   Delhi ')).toBe('New Delhi');
  });

  it('turns a date into its UTC day', () => {
    expect(utcDay('2026-03-01')).toEqual({
      from: '2026-03-01T00:00:00.000Z',
      to: '2026-03-02T00:00:00.000Z',
    });
  });

  it('wants a price for exactly the layout categories', () => {
    expect(checkPrices({ GOLD: 1, SILVER: 2 }, ['GOLD', 'SILVER'])).toBeUndefined();
    const missing = checkPrices({ GOLD: 1 }, ['GOLD', 'SILVER']);
    expect(missing).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { fields: { 'prices.SILVER': expect.any(String) } },
    });
    const extra = checkPrices({ GOLD: 1, SILVER: 2, VIP: 3 }, ['GOLD', 'SILVER']);
    expect(extra?.details?.fields).toHaveProperty(['prices.VIP']);
  });

  it('reads live availability from the tail of a rendered seat map', async () => {
    const json = JSON.stringify({
      showId: 's',
      seats: [{ id: 'A1' }],
      counts: { available: 7, held: 1, booked: 0, blocked: 0 },
    });
    const read = liveAvailability({ seatMapJson: async (id) => (id === 's' ? { json } : undefined) });
    expect(await read('s')).toBe(7);
    expect(await read('other')).toBeUndefined();
  });
});

describe('demo layouts', () => {
  it('always have 150 to 400 seats, 2 or 3 categories, aisles, and compile', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (seed) => {
        const layout = demoLayout(prng(seed));
        const compiled = compileLayout(layout);
        expect(compiled.ok).toBe(true);
        if (!compiled.ok) return;
        expect(compiled.layout.seatCount).toBeGreaterThanOrEqual(150);
        expect(compiled.layout.seatCount).toBeLessThanOrEqual(400);
        expect([2, 3]).toContain(compiled.layout.categories.length);
        expect(compiled.layout.runs.length).toBeGreaterThan(layout.rows.length);
      }),
      { numRuns: 300 },
    );
  });

  it('are the same for the same seed', () => {
    expect(demoLayout(prng(42))).toEqual(demoLayout(prng(42)));
  });
});
