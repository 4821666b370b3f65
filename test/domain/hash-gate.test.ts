import { describe, expect, it } from 'vitest';
import { HashGate } from '../../src/domain/hash-gate.js';

describe('hash gate', () => {
  it('never runs more than its bound at once, queues the rest, and refuses past the queue', async () => {
    const gate = new HashGate(2, 3);
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const task = () =>
      new Promise<number>((resolve) => {
        running++;
        peak = Math.max(peak, running);
        releases.push(() => {
          running--;
          resolve(running);
        });
      });
    const runs = Array.from({ length: 7 }, () => gate.run(task));
    // 2 running + 3 queued; the last two are refused at once.
    const refused = await Promise.all(runs.slice(5));
    for (const r of refused) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.code).toBe('OVERLOADED');
        expect(r.details?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      }
    }
    expect(gate.load).toEqual({ running: 2, queued: 3, peakRunning: 2 });
    while (releases.length > 0 || gate.load.running > 0) {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const done = await Promise.all(runs.slice(0, 5));
    expect(done.every((r) => r.ok)).toBe(true);
    expect(peak).toBe(2);
    expect(gate.load).toEqual({ running: 0, queued: 0, peakRunning: 2 });
  });
});
