/**
 * @module best-available
 * Chooses seats for a "give me N seats" request: adjacent seats in one run of a row, leaving no single
 * empty seat stranded where that is possible, nearest the screen's centre line. Pure: reads the seat
 * array, never writes it.
 */
import type { CompiledLayout } from './seat-layout.js';

export const AVAILABLE = 0;

/**
 * The best block of `count` adjacent available seats, or undefined when none exists.
 * `category` is an index into layout.categories, or -1 for any category (a block never mixes categories).
 */
export function bestBlock(
  layout: CompiledLayout,
  seats: Uint8Array,
  count: number,
  category: number,
): number[] | undefined {
  let best = -1;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const [start, end] of layout.runs) {
    if (end - start < count) continue;
    if (category >= 0 && layout.categoryOf[start] !== category) continue;
    // Slide a window over the run, tracking how many of its seats are free.
    let free = 0;
    for (let i = start; i < end; i++) {
      if (seats[i] === AVAILABLE && (category < 0 || layout.categoryOf[i] === category)) free++;
      const first = i - count + 1;
      if (
        first > start &&
        seats[first - 1] === AVAILABLE &&
        (category < 0 || layout.categoryOf[first - 1] === category)
      )
        free--;
      if (first < start || free !== count) continue;
      if (category < 0 && layout.categoryOf[first] !== layout.categoryOf[i]) continue;
      const score = blockScore(layout, seats, first, i + 1, start, end);
      if (score < bestScore) {
        bestScore = score;
        best = first;
      }
    }
  }
  if (best < 0) return undefined;
  return Array.from({ length: count }, (_, k) => best + k);
}

/**
 * Lower is better. Stranding a single seat outweighs any distance; then distance from the centre line;
 * then distance from the row two thirds of the way back (the usual sweet spot); ties go to the lower index.
 */
function blockScore(
  layout: CompiledLayout,
  seats: Uint8Array,
  first: number,
  end: number,
  runStart: number,
  runEnd: number,
): number {
  const strands =
    (isStrandedAfter(seats, first - 1, runStart, runEnd, first, end) ? 1 : 0) +
    (isStrandedAfter(seats, end, runStart, runEnd, first, end) ? 1 : 0);
  const centre = (layout.column[first]! + layout.column[end - 1]!) / 2;
  const fromCentre = Math.abs(centre - layout.centreColumn);
  const rows = layout.rowLabels.length;
  const fromSweetSpot = Math.abs(layout.rowOf[first]! - (rows - 1) * (2 / 3));
  return strands * 1e6 + fromCentre * 100 + fromSweetSpot;
}

/** Would seat `i` be an available seat with no available neighbour once [takenStart, takenEnd) is taken? */
export function isStrandedAfter(
  seats: Uint8Array,
  i: number,
  runStart: number,
  runEnd: number,
  takenStart: number,
  takenEnd: number,
): boolean {
  if (i < runStart || i >= runEnd || seats[i] !== AVAILABLE) return false;
  if (i >= takenStart && i < takenEnd) return false;
  return (
    !isFreeAfter(seats, i - 1, runStart, runEnd, takenStart, takenEnd) &&
    !isFreeAfter(seats, i + 1, runStart, runEnd, takenStart, takenEnd)
  );
}

/**
 * Seat `j` is in the run, available, and not in the block being taken. A function of its own, not a
 * closure: this runs for every candidate block, and a closure per call was most of a replay's time.
 */
function isFreeAfter(
  seats: Uint8Array,
  j: number,
  runStart: number,
  runEnd: number,
  takenStart: number,
  takenEnd: number,
): boolean {
  return j >= runStart && j < runEnd && seats[j] === AVAILABLE && !(j >= takenStart && j < takenEnd);
}

/**
 * When no single block fits and the caller allows a split: take the best block of the largest size
 * that fits, then fill the rest the same way. Returns undefined when fewer than `count` seats are free.
 */
export function bestSplit(
  layout: CompiledLayout,
  seats: Uint8Array,
  count: number,
  category: number,
): number[] | undefined {
  const scratch = seats.slice();
  const chosen: number[] = [];
  let remaining = count;
  let size = count;
  while (remaining > 0 && size > 0) {
    const block = bestBlock(layout, scratch, Math.min(size, remaining), category);
    if (!block) {
      size = Math.min(size, remaining) - 1;
      continue;
    }
    for (const i of block) {
      scratch[i] = 1;
      chosen.push(i);
    }
    remaining -= block.length;
  }
  return remaining === 0 ? chosen.sort((a, b) => a - b) : undefined;
}
