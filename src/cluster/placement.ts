/**
 * @module placement
 * Where each partition should live, so that the balancer in front sends a show's requests to the node
 * that owns it, not to one that must forward them.
 *
 * Every node the cluster knows (seen in the last few minutes, whether alive now or not) has a home: a
 * contiguous range of partitions, in node-id order, as even as can be (the first `P mod n` nodes one
 * larger). nginx's `hash $show` (without `consistent`) computes `((crc32(show) >> 16) & 0x7fff)`, takes
 * it modulo the sum of the servers' weights, and walks the servers in order: with the servers listed in
 * node-id order and weighted by their home sizes (the weights sum to P), that is `partitionOf(show)` and
 * then the node whose home holds it. `balancerWeights` gives the weights; `npm run cluster` and
 * deploy/nginx.conf use them.
 *
 * A live node owns its home. A partition whose home node is not alive (crashed, restarting) is an
 * orphan: the live nodes share the orphans so that each holds about P / live, and hand them back when
 * the home node returns. A node that stays away long enough is forgotten, and the homes are drawn again
 * over the nodes still known. Nothing here is about safety (leases and fencing are): a placement that
 * disagrees with the balancer costs a forward per request, nothing more.
 */

/** The partitions `[start, end)` that are a node's home. */
export interface HomeRange {
  start: number;
  end: number;
}

/** Each node's home, for nodes in any order (sorted here, as the balancer must list them). */
export function homeRanges(nodes: readonly string[], partitions: number): Map<string, HomeRange> {
  const sorted = [...new Set(nodes)].sort();
  const ranges = new Map<string, HomeRange>();
  let start = 0;
  sorted.forEach((node, i) => {
    const size = shareOf(i, sorted.length, partitions);
    ranges.set(node, { start, end: start + size });
    start += size;
  });
  return ranges;
}

/** The balancer's weight for each node, in the order it must list them (node-id order). */
export function balancerWeights(
  nodes: readonly string[],
  partitions: number,
): { node: string; weight: number }[] {
  return [...homeRanges(nodes, partitions)].map(([node, { start, end }]) => ({
    node,
    // nginx refuses a weight of 0; a node with no home (more nodes than partitions) gets a sliver.
    weight: Math.max(1, end - start),
  }));
}

/** The i-th of n nodes' fair share of P partitions. */
export function shareOf(i: number, n: number, partitions: number): number {
  return Math.floor(partitions / n) + (i < partitions % n ? 1 : 0);
}

export interface Placement {
  /** This node's home partitions. */
  home: number[];
  /** Partitions whose home node is not alive: any live node may serve them, up to its fair share. */
  orphans: number[];
  /** How many partitions this node should hold: its fair share of all of them among the live nodes. */
  fairShare: number;
}

/**
 * This node's view: `known` are the nodes seen recently (alive or not), `live` those alive now (this
 * one among them).
 */
export function placementOf(
  node: string,
  known: readonly string[],
  live: readonly string[],
  partitions: number,
): Placement {
  const ranges = homeRanges([...known, ...live, node], partitions);
  const alive = new Set([...live, node]);
  const mine = ranges.get(node)!;
  const home: number[] = [];
  for (let p = mine.start; p < mine.end; p++) home.push(p);
  const orphans: number[] = [];
  for (const [other, range] of ranges)
    if (!alive.has(other)) for (let p = range.start; p < range.end; p++) orphans.push(p);
  const liveSorted = [...alive].sort();
  return { home, orphans, fairShare: shareOf(liveSorted.indexOf(node), liveSorted.length, partitions) };
}
