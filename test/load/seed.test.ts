/**
 * `--seed N` seeds every random choice of a run: which seat map a reader asks for, how many seats a
 * hot-show buyer wants, and which journey `mixed` draws. The same seed replays the same choices.
 */
import { describe, expect, it } from 'vitest';
import {
  hotShowJourneys,
  mixedJourneys,
  Purchases,
  seatMapJourneys,
  userRotation,
} from '../../bench/load/journeys.js';
import type { SeatMap } from '../../bench/load/target.js';

const shows: SeatMap[] = ['s1', 's2', 's3', 's4'].map((showId) => ({
  showId,
  version: 1,
  seats: [{ id: 'A1', status: 'available' }],
  counts: { available: 1 },
}));
const users = userRotation([{ id: 'u1', token: 't1' }]);

/** The first request of each of `n` journeys drawn from a factory made with `seed`. */
function firstSteps(make: (seed: number) => () => { next(): unknown }, seed: number, n = 40): string[] {
  const start = make(seed);
  return Array.from({ length: n }, () => JSON.stringify(start().next()));
}

describe('--seed', () => {
  const factories = {
    'seat-map reads': (seed: number) => seatMapJourneys(shows, seed),
    'hot-show buyers': (seed: number) => hotShowJourneys(shows[0]!, users, new Purchases(), seed, () => {}),
    'the mixed blend': (seed: number) =>
      mixedJourneys(
        [
          [60, seatMapJourneys(shows, seed)],
          [40, hotShowJourneys(shows[0]!, users, new Purchases(), seed, () => {})],
        ],
        seed + 1,
      ),
  };

  it.each(Object.entries(factories))(
    'replays the same %s with the same seed, others with another',
    (_, make) => {
      expect(firstSteps(make, 7)).toEqual(firstSteps(make, 7));
      expect(firstSteps(make, 7)).not.toEqual(firstSteps(make, 8));
    },
  );
});
