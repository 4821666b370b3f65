/**
 * @module bench/http/feed-protocol
 * What the feed scenario and its subscriber processes share: the clock both sides stamp with, and the
 * shape of the stamps the parent sends at the end.
 */

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export const wallNow = () => performance.timeOrigin + performance.now();

/** Per seat, when each of its holds (`held`) and releases (`available`) was sent, in order. */
export type Stamps = Record<string, { held: number[]; available: number[] }>;
