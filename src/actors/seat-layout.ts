/**
 * @module seat-layout
 * A screen's seat layout (rows, labels, categories, aisles) and its compiled form: the label ↔ index
 * mapping, each seat's physical column and the runs of side-by-side seats that adjacency and the
 * single-seat rule work on. Compiled layouts are immutable and shared by every show on the screen.
 */

/** One row as an admin describes it: `seats` seats numbered from `firstNumber`, aisles after some numbers. */
export interface RowLayout {
  /** Row label, e.g. "A". Labels are unique within a layout. */
  label: string;
  /** Category code, e.g. "PREMIUM"; prices per category come from the show. */
  category: string;
  /** Number of seats in the row. */
  seats: number;
  /** First seat number (default 1). */
  firstNumber?: number;
  /** An aisle (a gap one seat wide) follows each of these seat numbers. */
  aislesAfter?: number[];
  /** Empty columns before the first seat, to stagger a row against the screen. */
  offset?: number;
}

/** Rows are listed from the screen backwards: the first row is nearest the screen. */
export interface SeatLayout {
  rows: RowLayout[];
}

export const MAX_ROWS = 60;
export const MAX_SEATS_PER_ROW = 80;
export const MAX_SEATS_PER_SHOW = 2000;
export const MAX_CATEGORIES = 8;

export interface CompiledLayout {
  readonly seatCount: number;
  readonly labels: readonly string[];
  readonly rowLabels: readonly string[];
  readonly numbers: Uint16Array;
  readonly rowOf: Uint16Array;
  /** Index into `categories`. */
  readonly categoryOf: Uint8Array;
  readonly categories: readonly string[];
  /** Physical column of each seat, aisles and offsets included. */
  readonly column: Float64Array;
  /** Centre line of the screen in column units. */
  readonly centreColumn: number;
  /** Runs of side-by-side seats: [start, end) seat indices; no aisle inside a run. */
  readonly runs: readonly (readonly [number, number])[];
  /** Run index of each seat. */
  readonly runOf: Uint16Array;
  readonly indexOf: ReadonlyMap<string, number>;
}

export type LayoutError = { ok: false; code: 'INVALID_LAYOUT'; message: string };

/** Checks a layout against the limits and compiles it; never throws for bad input. */
export function compileLayout(layout: SeatLayout): { ok: true; layout: CompiledLayout } | LayoutError {
  const bad = (message: string): LayoutError => ({ ok: false, code: 'INVALID_LAYOUT', message });
  if (!Array.isArray(layout?.rows) || layout.rows.length === 0) return bad('a layout needs at least one row');
  if (layout.rows.length > MAX_ROWS) return bad(`a layout has at most ${MAX_ROWS} rows`);
  const labels: string[] = [];
  const rowLabels: string[] = [];
  const numbers: number[] = [];
  const rowOf: number[] = [];
  const categoryOf: number[] = [];
  const categories: string[] = [];
  const column: number[] = [];
  const runs: [number, number][] = [];
  const indexOf = new Map<string, number>();
  let widest = 0;
  for (const [r, row] of layout.rows.entries()) {
    if (!/^[A-Z]{1,3}$/.test(row.label))
      return bad(`row label "${row.label}" must be 1 to 3 capital letters`);
    if (rowLabels.includes(row.label)) return bad(`row label "${row.label}" appears twice`);
    if (!Number.isInteger(row.seats) || row.seats < 1 || row.seats > MAX_SEATS_PER_ROW)
      return bad(`row ${row.label} must have 1 to ${MAX_SEATS_PER_ROW} seats`);
    const first = row.firstNumber ?? 1;
    const offset = row.offset ?? 0;
    if (!Number.isInteger(first) || first < 1 || first > 999) return bad(`row ${row.label}: bad firstNumber`);
    if (!Number.isInteger(offset) || offset < 0 || offset > MAX_SEATS_PER_ROW)
      return bad(`row ${row.label}: bad offset`);
    if (!/^[A-Z][A-Z0-9_]{0,19}$/.test(row.category))
      return bad(`row ${row.label}: category "${row.category}" must be an upper-case code`);
    let category = categories.indexOf(row.category);
    if (category < 0) {
      if (categories.length >= MAX_CATEGORIES)
        return bad(`a layout has at most ${MAX_CATEGORIES} categories`);
      category = categories.push(row.category) - 1;
    }
    const aisles = new Set(row.aislesAfter ?? []);
    rowLabels.push(row.label);
    let col = offset;
    let runStart = labels.length;
    for (let i = 0; i < row.seats; i++) {
      const number = first + i;
      const index = labels.length;
      const label = `${row.label}${number}`;
      labels.push(label);
      indexOf.set(label, index);
      numbers.push(number);
      rowOf.push(r);
      categoryOf.push(category);
      column.push(col);
      col += 1;
      if (aisles.has(number) && i < row.seats - 1) {
        runs.push([runStart, index + 1]);
        runStart = index + 1;
        col += 1;
      }
    }
    runs.push([runStart, labels.length]);
    widest = Math.max(widest, col);
    if (labels.length > MAX_SEATS_PER_SHOW) return bad(`a layout has at most ${MAX_SEATS_PER_SHOW} seats`);
  }
  const runOf = new Uint16Array(labels.length);
  runs.forEach(([start, end], run) => {
    runOf.fill(run, start, end);
  });
  return {
    ok: true,
    layout: {
      seatCount: labels.length,
      labels,
      rowLabels,
      numbers: Uint16Array.from(numbers),
      rowOf: Uint16Array.from(rowOf),
      categoryOf: Uint8Array.from(categoryOf),
      categories,
      column: Float64Array.from(column),
      centreColumn: (widest - 1) / 2,
      runs,
      runOf,
      indexOf,
    },
  };
}

/** Compiled layouts keyed by their JSON, so thousands of shows on one screen share one copy. */
export class LayoutCache {
  readonly #byKey = new Map<string, CompiledLayout>();

  get(layout: SeatLayout): { ok: true; layout: CompiledLayout } | LayoutError {
    const key = JSON.stringify(layout);
    const hit = this.#byKey.get(key);
    if (hit) return { ok: true, layout: hit };
    const compiled = compileLayout(layout);
    if (compiled.ok) this.#byKey.set(key, compiled.layout);
    return compiled;
  }
}

/** A uniform layout for demos, tests and benchmarks: `rows` rows of `perRow` seats with two aisles. */
export function simpleLayout(rows: number, perRow: number, categories: string[] = ['STANDARD']): SeatLayout {
  const aisleA = Math.floor(perRow / 4);
  const aisleB = perRow - aisleA;
  return {
    rows: Array.from({ length: rows }, (_, r) => ({
      label: rowLabel(r),
      category: categories[Math.min(categories.length - 1, Math.floor((r * categories.length) / rows))]!,
      seats: perRow,
      aislesAfter: aisleA > 0 && aisleB < perRow ? [aisleA, aisleB] : [],
    })),
  };
}

/** A, B, …, Z, AA, AB, … */
export function rowLabel(index: number): string {
  let label = '';
  let n = index;
  do {
    label = String.fromCharCode(65 + (n % 26)) + label;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return label;
}
