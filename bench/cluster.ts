/**
 * `npm run bench -- cluster`: the HTTP load against a cluster of 1, 2 and 3 nodes (`--nodes 1,2,3`),
 * each through nginx (when installed) and direct to one node, for two scenarios: seat-map reads and
 * hold + release (the same request chains as `npm run bench -- http`, scenarios 1 and 2). Per run:
 * requests/s, p50/p99, CPU ms per request of each node, and the share of requests forwarded to another
 * node. Each cluster is started here (a throwaway PostgreSQL, `scripts/local-cluster.ts`) and stopped
 * after its runs. On a machine of 2 cores the nodes, PostgreSQL, nginx and autocannon share them: the
 * README reads these figures for what they say about cost per request, not for scale.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type autocannon from 'autocannon';
import { nginxBinary, startLocalCluster } from '../scripts/local-cluster.js';
import { JsonClient } from './http/client.js';
import { GrantTracker, holdReleaseRequests, SERVICE_HOLDS, SlotPool } from './http/cycles.js';
import { adminToken, createShows, registerUsers, SEAT_LABELS } from './http/fixtures.js';
import { runLoad } from './http/load.js';
import { cpuSeconds, freePort, Processes } from './http/processes.js';
import { ADMIN } from './http/service.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1,2,3' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '32' },
    users: { type: 'string', default: '200' },
    shows: { type: 'string', default: '60' },
    json: { type: 'boolean', default: false },
  },
});
const nodeCounts = values.nodes.split(',').map(Number);
const seconds = Number(values.seconds);
const warmupSeconds = Number(values.warmup);
const connections = Number(values.connections);

interface Row {
  nodes: number;
  scenario: string;
  via: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  cpuMsPerRequestByNode: number[];
  forwardedShare: number;
}

async function forwardsOf(urls: string[]): Promise<number> {
  let total = 0;
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    const match = /^boxoffice_cluster_forwards_total\{outcome="ok"\} (\d+)/m.exec(text);
    total += match ? Number(match[1]) : 0;
  }
  return total;
}

const rows: Row[] = [];
const procs = new Processes();
const hasNginx = nginxBinary() !== undefined;

for (const n of nodeCounts) {
  const dataRoot = procs.tempDir('boxoffice-bench-cluster-');
  const basePort = await freePort();
  console.error(`cluster of ${n}: starting (nginx on ${basePort})…`);
  const cluster = await startLocalCluster({
    nodes: n,
    basePort,
    // Each port asked of the system: basePort + i may be some connection's own port.
    nodePorts: await Promise.all(Array.from({ length: n }, () => freePort())),
    dataRoot: path.join(dataRoot, 'c'),
    nginx: hasNginx,
    logTo: 'ignore',
    env: {
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      SEED_DEMO: 'false',
      LOG_LEVEL: 'warn',
      JOURNAL_SYNC: 'full',
      REGISTER_MAX_PER_ADDRESS: '1000000',
      HOLDS_PER_ADDRESS_PER_MINUTE: '1000000',
      TRUSTED_PROXIES: '127.0.0.1',
    },
  });
  try {
    const client = new JsonClient(cluster.nodes[0]!.url, 8);
    const token = await adminToken(client);
    const users = await registerUsers(client, Number(values.users));
    const showIds = await createShows(client, token, Number(values.shows));
    client.close();
    const nodeUrls = cluster.nodes.map((node) => node.url);
    const targets: [string, string][] = [['direct to one node', nodeUrls[0]!]];
    if (hasNginx) targets.unshift(['nginx', cluster.url]);
    const scenarios: [string, () => autocannon.Request[]][] = [
      ['seat maps', () => showIds.map((id) => ({ method: 'GET' as const, path: `/api/shows/${id}/seats` }))],
      [
        'hold + release',
        () =>
          holdReleaseRequests(SERVICE_HOLDS, new SlotPool(showIds, SEAT_LABELS), users, new GrantTracker()),
      ],
    ];
    for (const [scenario, requests] of scenarios)
      for (const [via, url] of targets) {
        const pids = cluster.nodes.map((node) => node.child.pid);
        // Warm-up first, on its own: the measured run's counters start after it.
        await runLoad({ url, connections, seconds: warmupSeconds, warmupSeconds: 0, requests: requests() });
        const cpuBefore = pids.map((pid) => cpuSeconds([pid]) ?? 0);
        const forwardsBefore = await forwardsOf(nodeUrls);
        const load = await runLoad({ url, connections, seconds, warmupSeconds: 0, requests: requests() });
        const forwards = (await forwardsOf(nodeUrls)) - forwardsBefore;
        const cpu = pids.map((pid, i) => ((cpuSeconds([pid]) ?? 0) - cpuBefore[i]!) * 1000);
        const row: Row = {
          nodes: n,
          scenario,
          via,
          requestsPerSecond: Math.round(load.requestsPerSecond),
          p50Ms: load.p50Ms,
          p99Ms: load.p99Ms,
          non2xx: load.non2xx,
          cpuMsPerRequestByNode: cpu.map((ms) => Math.round((ms / Math.max(1, load.requests)) * 1000) / 1000),
          forwardedShare: Math.round((forwards / Math.max(1, load.requests)) * 100) / 100,
        };
        rows.push(row);
        console.error(
          `  ${scenario}, ${via}: ${row.requestsPerSecond} req/s, p99 ${row.p99Ms} ms, cpu ms/req by node ${row.cpuMsPerRequestByNode.join(' / ')}, forwarded ${Math.round(row.forwardedShare * 100)}%`,
        );
      }
  } finally {
    await cluster.stop();
  }
}
await procs.stopAll();

if (values.json)
  console.log(
    JSON.stringify({ machine: { cores: os.availableParallelism(), load: os.loadavg() }, rows }, null, 2),
  );
else {
  console.log(
    '| nodes | scenario | via | req/s | p50 ms | p99 ms | non-2xx | CPU ms/req by node | forwarded |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.nodes} | ${r.scenario} | ${r.via} | ${r.requestsPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.non2xx} | ${r.cpuMsPerRequestByNode.join(' / ')} | ${Math.round(r.forwardedShare * 100)}% |`,
    );
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}
