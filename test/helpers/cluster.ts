/**
 * A real cluster for tests: N service processes (`spawnService`) on one fresh PostgreSQL database, each
 * with a data directory, port and NODE_ID of its own and the secrets they must share, plus a direct
 * look at the lease table, so tests can kill, pause, restart and add nodes and see who serves what.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../bench/http/processes.js';
import { ADMIN_ENV } from './catalog.js';
import { freshPostgresDatabase } from './postgres.js';
import { type ServiceProcess, spawnService } from './process.js';

export interface ClusterNode {
  id: string;
  port: number;
  dataDir: string;
  url: string;
  process?: ServiceProcess;
}

export interface TestCluster {
  databaseUrl: string;
  nodes: ClusterNode[];
  /** Starts (or restarts) node `index` and waits until it serves. */
  start(index: number, env?: Record<string, string>): Promise<ServiceProcess>;
  /** Adds a node (not started). */
  add(): Promise<ClusterNode>;
  /** Live lease owners by partition (node ids), from the database. */
  owners(): Promise<Map<number, string>>;
  /** Runs a query on the cluster's database (tests look at the journal). */
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Ends every node (SIGKILL) and removes the data directories. */
  close(): Promise<void>;
}

export const CLUSTER_TEST_SECRET = 'cluster-test-secret-cluster-test-secret-0001';

export async function startTestCluster(options: {
  nodes: number;
  env?: Record<string, string>;
  /** A database of the test's own (e.g. on a server it stops); default: a fresh one on the suite's. */
  databaseUrl?: string;
}): Promise<TestCluster> {
  const databaseUrl = options.databaseUrl ?? (await freshPostgresDatabase('cluster'));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-cluster-'));
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  // A test may restart the server: an idle connection lost then is not a failure of the test.
  pool.on('error', () => undefined);
  const nodes: ClusterNode[] = [];
  const ticketSigningKey = ticketKey();
  const add = async (): Promise<ClusterNode> => {
    const port = await freePort();
    const id = `n${nodes.length + 1}`;
    const node = { id, port, dataDir: path.join(root, id), url: `http://127.0.0.1:${port}` };
    nodes.push(node);
    return node;
  };
  for (let i = 0; i < options.nodes; i++) await add();
  const cluster: TestCluster = {
    databaseUrl,
    nodes,
    add,
    async start(index, env = {}) {
      const node = nodes[index]!;
      node.process = await spawnService({
        env: {
          ...ADMIN_ENV,
          DATABASE_URL: databaseUrl,
          DATA_DIR: node.dataDir,
          PORT: String(node.port),
          NODE_ID: node.id,
          ADVERTISE_URL: node.url,
          CLUSTER_SECRET: CLUSTER_TEST_SECRET,
          JWT_SECRET: 'cluster-jwt-secret-cluster-jwt-secret-00001',
          TICKET_SIGNING_KEY: ticketSigningKey,
          ...options.env,
          ...env,
        },
        timeoutMs: 60_000,
      });
      return node.process;
    },
    async owners() {
      const { rows } = await pool.query<{ partition: number; node: string }>(
        'SELECT partition, node FROM partition_leases WHERE node IS NOT NULL AND expires_at > now()',
      );
      return new Map(rows.map((r) => [r.partition, r.node]));
    },
    async query(sql, params) {
      return (await pool.query(sql, params)).rows;
    },
    async close() {
      await Promise.all(
        nodes.map(async (node) => {
          const child = node.process?.child;
          if (!child || child.exitCode !== null || child.signalCode !== null) return;
          // A paused node is woken first, or SIGKILL would wait for nothing.
          child.kill('SIGCONT');
          child.kill('SIGKILL');
          await node.process!.exited;
        }),
      );
      await pool.end();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** One signing key for every node of a cluster (a ticket signed by one verifies on all). */
function ticketKey(): string {
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  return JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid: 'cluster-test' });
}
