/**
 * @module bench/http/profile-summary
 * Reads a V8 `.cpuprofile` (from `npm run bench -- http --cpu-prof DIR`) and prints where the time
 * went: by package or file, by function (self) and by function with its callees (inclusive), optionally
 * within a time window, plus a busy-percentage timeline that shows when the load ran.
 *
 *   npx tsx bench/http/profile-summary.ts DIR/hold-release/CPU.….cpuprofile [--from S] [--to S] [--top N]
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const shorten = (url: string) =>
  url
    .replace(/^.*node_modules\/(@[^/]+\/[^/]+|[^/]+)\/.*$/, 'npm:$1')
    .replace(/^file:\/\/.*?\/(dist|src)\//, '$1/');
const label = (n: ProfileNode) =>
  `${n.callFrame.functionName || '(anonymous)'} ${shorten(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

function print(title: string, map: Map<string, number>, total: number, top: number): void {
  console.log(`\n${title}`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(
      `${((us / total) * 100).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`,
    );
}

function summarise(file: string, fromS: number, toS: number, top: number): void {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const byFile = new Map<string, number>();
  const busy: number[] = [];
  let t = 0;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    const us = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]!)!;
    const halfSecond = Math.floor(t / 500_000);
    if (node.callFrame.functionName !== '(idle)') busy[halfSecond] = (busy[halfSecond] ?? 0) + us;
    if (t < fromS * 1e6 || t > toS * 1e6) continue;
    total += us;
    add(self, label(node), us);
    add(byFile, shorten(node.callFrame.url) || node.callFrame.functionName, us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const key = label(byId.get(id)!);
      if (seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, us);
    }
  }
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  console.log(`${file}: ${seconds.toFixed(1)} s; window ${fromS}–${Math.min(toS, seconds)} s`);
  console.log(
    `busy per half second: ${Array.from(busy, (us, i) => `${i / 2}s ${Math.round((us ?? 0) / 5000)}%`).join('  ')}`,
  );
  print('self time by package or file', byFile, total, 20);
  print('self time by function', self, total, top);
  print('inclusive time by function', inclusive, total, top);
}

const file = process.argv[2];
if (!file) {
  console.error('usage: npx tsx bench/http/profile-summary.ts FILE.cpuprofile [--from S] [--to S] [--top N]');
  process.exit(2);
}
summarise(file, arg('from', 0), arg('to', Number.POSITIVE_INFINITY), arg('top', 40));
