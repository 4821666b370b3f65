/**
 * `npm run cluster`: a local BoxOffice cluster to try (README, "Running a cluster"). Three nodes on
 * loopback ports behind nginx (when nginx is installed), one PostgreSQL database (DATABASE_URL, or a
 * throwaway PostgreSQL 15 started here), shared secrets in `<data>/secrets.env`. Ctrl-C stops it all:
 * nginx, then each node by SIGTERM (handing its partitions to the others), then PostgreSQL.
 *
 *   npm run cluster                    3 nodes on :3001-3003, nginx on :3000
 *   npm run cluster -- --nodes 2 --port 4000 --no-nginx
 *   npm run cluster -- --secrets       prints a fresh set of shared secrets for a .env and exits
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateSecrets, nginxBinary, REPO, secretsEnvText, startLocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    port: { type: 'string', default: '3000' },
    data: { type: 'string', default: path.join(REPO, 'data', 'cluster') },
    'no-nginx': { type: 'boolean', default: false },
    secrets: { type: 'boolean', default: false },
  },
});

if (values.secrets) {
  process.stdout.write(secretsEnvText(generateSecrets()));
  process.exit(0);
}

const nodes = Number(values.nodes);
const port = Number(values.port);
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) throw new Error('--nodes: 1 to 16');
if (!Number.isInteger(port) || port < 1 || port + nodes > 65535) throw new Error('--port: a free port');
const hasNginx = nginxBinary() !== undefined;
const useNginx = !values['no-nginx'] && hasNginx;
if (!values['no-nginx'] && !hasNginx) console.log('nginx is not installed: starting the nodes without it');

console.log(`starting ${nodes} nodes${process.env.DATABASE_URL ? '' : ' and a local PostgreSQL'}…`);
const cluster = await startLocalCluster({
  nodes,
  basePort: port,
  dataRoot: path.resolve(values.data),
  databaseUrl: process.env.DATABASE_URL,
  nginx: useNginx,
});
for (const node of cluster.nodes) console.log(`  node ${node.id}  ${node.url}  (pid ${node.child.pid})`);
if (useNginx) console.log(`  nginx    http://127.0.0.1:${port}/  (pid ${cluster.nginxPid})`);
console.log(`logs and secrets in ${path.resolve(values.data)}; Ctrl-C stops everything`);
console.log(`try: kill -9 <a node's pid>, and watch its partitions move (GET ${cluster.url}/readyz)`);

let isStopping = false;
const stop = () => {
  if (isStopping) return;
  isStopping = true;
  console.log('stopping…');
  cluster.stop().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
