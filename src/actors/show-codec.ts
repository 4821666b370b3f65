/**
 * @module show-codec
 * Canonical byte encoding of a show's state for snapshots: the same state always encodes to the same
 * bytes, which is what replay-equivalence tests compare. The layout is not inside: snapshots name it by
 * key, and the journal keeps each distinct layout once.
 */
import { type CompiledLayout, compileLayout, type SeatLayout } from './seat-layout.js';
import { createShowState, type Hold, type ShowState } from './show-actor.js';

const FORMAT = 1;

interface Header {
  f: number;
  id: string;
  v: number;
  g: 0 | 1;
  /** holds: [id, owner, createdAtMs, expiresAtMs, seats] */
  h: [string, string, number, number, number[]][];
  /** bookings: [id, seats] */
  b: [string, number[]][];
}

/** [u32 header length][header JSON][seat bytes]. */
export function encodeState(state: ShowState): Buffer {
  const header: Header = {
    f: FORMAT,
    id: state.showId,
    v: state.version,
    g: state.forbidSingleSeatGaps ? 1 : 0,
    h: [...state.holds.values()].map((h) => [h.id, h.ownerId, h.createdAtMs, h.expiresAtMs, [...h.seats]]),
    b: [...state.bookings].map(([id, seats]) => [id, [...seats]]),
  };
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.allocUnsafe(4 + json.length + state.seats.length);
  out.writeUInt32LE(json.length, 0);
  json.copy(out, 4);
  out.set(state.seats, 4 + json.length);
  return out;
}

/** Resolves a layout key to its compiled layout; callers share one per process. */
export type LayoutResolver = (layoutKey: string) => CompiledLayout;

export function decodeState(bytes: Uint8Array, layoutKey: string, resolve: LayoutResolver): ShowState {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = buf.readUInt32LE(0);
  const header = JSON.parse(buf.toString('utf8', 4, 4 + headerLength)) as Header;
  if (header.f !== FORMAT) throw new Error(`unknown snapshot format ${header.f}`);
  const layout = resolve(layoutKey);
  const state = createShowState(header.id, layout, layoutKey, header.g === 1);
  if (buf.length - 4 - headerLength !== layout.seatCount)
    throw new Error(`snapshot of ${header.id} has wrong seat count`);
  state.seats.set(buf.subarray(4 + headerLength));
  state.version = header.v;
  for (const [id, ownerId, createdAtMs, expiresAtMs, seats] of header.h) {
    const hold: Hold = { id, ownerId, createdAtMs, expiresAtMs, seats };
    state.holds.set(id, hold);
    state.heldByOwner.set(ownerId, (state.heldByOwner.get(ownerId) ?? 0) + seats.length);
    state.nextExpiryMs = Math.min(state.nextExpiryMs, expiresAtMs);
  }
  for (const [id, seats] of header.b) state.bookings.set(id, seats);
  return state;
}

/** A resolver that compiles each distinct layout key once. */
export function layoutResolver(): LayoutResolver {
  const compiled = new Map<string, CompiledLayout>();
  return (key) => {
    let layout = compiled.get(key);
    if (!layout) {
      const result = compileLayout(JSON.parse(key) as SeatLayout);
      if (!result.ok) throw new Error(`stored layout is invalid: ${result.message}`);
      layout = result.layout;
      compiled.set(key, layout);
    }
    return layout;
  };
}

/** The canonical key of a layout: its JSON with rows' keys in a fixed order. */
export function layoutKeyOf(layout: SeatLayout): string {
  return JSON.stringify({
    rows: layout.rows.map((r) => ({
      label: r.label,
      category: r.category,
      seats: r.seats,
      firstNumber: r.firstNumber ?? 1,
      aislesAfter: [...(r.aislesAfter ?? [])].sort((a, b) => a - b),
      offset: r.offset ?? 0,
    })),
  });
}
