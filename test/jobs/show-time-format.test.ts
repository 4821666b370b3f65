/**
 * Show times in messages are formatted on the HTTP thread, in the booking's own transaction (every
 * queued confirmation and reminder carries one). Building an Intl.DateTimeFormat is the costly part, so
 * a zone's formatters are built once and serve every later message.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatStartTime } from '../../src/jobs/outbox.js';

describe('formatStartTime', () => {
  afterEach(() => vi.restoreAllMocks());

  it('builds no new formatter for a zone it has formatted before, and still names the zone', () => {
    const first = formatStartTime('2026-12-05T13:00:00.000Z', 'Asia/Kolkata');
    const built = vi.spyOn(Intl, 'DateTimeFormat');
    const second = formatStartTime('2026-12-06T13:30:00.000Z', 'Asia/Kolkata');
    expect(built).not.toHaveBeenCalled();
    expect(first).toBe('Sat 5 Dec 2026, 6:30 pm IST');
    expect(second).toBe('Sun 6 Dec 2026, 7:00 pm IST');
  });

  it('follows daylight saving in a cached zone and falls back to UTC for an unknown one', () => {
    expect(formatStartTime('2026-01-10T18:00:00.000Z', 'America/New_York')).toMatch(/1:00 pm EST$/);
    expect(formatStartTime('2026-07-10T18:00:00.000Z', 'America/New_York')).toMatch(/2:00 pm EDT$/);
    expect(formatStartTime('2026-07-10T18:00:00.000Z', 'Not/AZone')).toMatch(/6:00 pm UTC$/);
  });
});
