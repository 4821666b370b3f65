/**
 * Where partitions should live (src/cluster/placement.ts): every known node has a contiguous home in
 * node-id order, the live nodes share the orphans of the absent ones, and the balancer's weights are the
 * homes' sizes (deploy/nginx.conf's servers among them), so nginx's hash lands a show on its owner.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { balancerWeights, homeRanges, placementOf } from '../../src/cluster/placement.js';

describe('placement', () => {
  it('gives each known node a contiguous home in node-id order, covering every partition once', () => {
    const ranges = homeRanges(['n3', 'n1', 'n2'], 64);
    expect([...ranges]).toEqual([
      ['n1', { start: 0, end: 22 }],
      ['n2', { start: 22, end: 43 }],
      ['n3', { start: 43, end: 64 }],
    ]);
  });

  it('shares the orphans of an absent node among the live ones, up to each one’s fair share', () => {
    const known = ['a', 'b', 'c'];
    const a = placementOf('a', known, ['a', 'b'], 64);
    const b = placementOf('b', known, ['a', 'b'], 64);
    expect(a.home).toEqual(range(0, 22));
    expect(b.home).toEqual(range(22, 43));
    expect(a.orphans).toEqual(range(43, 64));
    // Home plus the orphans each may take make up every partition, and neither takes more than half.
    expect(a.fairShare + b.fairShare).toBe(64);
    expect(a.fairShare - a.home.length + (b.fairShare - b.home.length)).toBe(21);
    // Every node alive: no orphans, and each node's fair share is its home.
    const all = known.map((n) => placementOf(n, known, known, 64));
    expect(all.map((p) => p.orphans.length)).toEqual([0, 0, 0]);
    expect(all.map((p) => p.fairShare)).toEqual(all.map((p) => p.home.length));
  });

  it('counts a node that just joined before anyone has read it, and itself when alone', () => {
    expect(placementOf('solo', [], [], 8)).toEqual({ home: range(0, 8), orphans: [], fairShare: 8 });
    const joining = placementOf('n4', ['n1', 'n2', 'n3'], ['n1', 'n2', 'n3'], 6);
    expect(joining.home).toEqual([5]);
  });

  it('weights the balancer’s servers by their homes, so the weights sum to the partition count', () => {
    expect(balancerWeights(['n2', 'n1'], 4)).toEqual([
      { node: 'n1', weight: 2 },
      { node: 'n2', weight: 2 },
    ]);
    // More nodes than partitions: nginx refuses a weight of 0.
    expect(balancerWeights(['a', 'b', 'c'], 2).map((w) => w.weight)).toEqual([1, 1, 1]);
  });

  it('matches deploy/nginx.conf: docker-compose’s three nodes, in NODE_ID order, for 64 partitions', () => {
    const conf = fs.readFileSync(path.join(import.meta.dirname, '../../deploy/nginx.conf'), 'utf8');
    const servers = [...conf.matchAll(/^\s*server (node\d+):3000 weight=(\d+)/gm)].map((m) => ({
      node: m[1],
      weight: Number(m[2]),
    }));
    expect(servers).toEqual(balancerWeights(['node1', 'node2', 'node3'], 64));
    expect(conf).toMatch(/^\s*hash \$boxoffice_key;/m);
  });
});

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}
