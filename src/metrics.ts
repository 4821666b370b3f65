/**
 * @module metrics
 * Prometheus metrics (prom-client) in a registry of our own, so tests can build many apps per process.
 */
import client from 'prom-client';
import type { PoolStats } from './persistence/store.js';

export interface MetricsOptions {
  /** The PostgreSQL pool's figures, read at each scrape; absent on SQLite, which has no pool. */
  poolStats?: () => PoolStats;
}

export function createMetrics(options: MetricsOptions = {}) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const { poolStats } = options;
  if (poolStats) {
    new client.Gauge({
      name: 'boxoffice_store_connections',
      help: 'PostgreSQL pool connections for the app data, by state (busy, idle); at most DATABASE_POOL_MAX',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const pool = poolStats();
        this.set({ state: 'busy' }, pool.total - pool.idle);
        this.set({ state: 'idle' }, pool.idle);
      },
    });
    new client.Gauge({
      name: 'boxoffice_store_waiting',
      help: 'Statements and transactions waiting for a PostgreSQL pool connection',
      registers: [registry],
      collect() {
        this.set(poolStats().waiting);
      },
    });
  }
  const m = {
    registry,
    httpDuration: new client.Histogram({
      name: 'boxoffice_http_request_duration_seconds',
      help: 'HTTP requests by route and status, with latency',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    clusterForwards: new client.Counter({
      name: 'boxoffice_cluster_forwards_total',
      help: 'Requests for partitions served by another node, by outcome (ok, retried, failed)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    holds: new client.Counter({
      name: 'boxoffice_holds_total',
      help: 'Hold requests by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    bookings: new client.Counter({
      name: 'boxoffice_bookings_total',
      help: 'Booking transitions by status reached',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    payments: new client.Counter({
      name: 'boxoffice_payments_total',
      help: 'Payment attempts by provider and outcome',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    wsSubscribers: new client.Gauge({
      name: 'boxoffice_ws_subscribers',
      help: 'Open WebSocket seat-feed subscriptions',
      registers: [registry],
    }),
    wsDropped: new client.Counter({
      name: 'boxoffice_ws_dropped_total',
      help: 'Seat-feed clients dropped for being too slow',
      registers: [registry],
    }),
    outboxLag: new client.Gauge({
      name: 'boxoffice_outbox_lag_seconds',
      help: 'Age of the oldest outbox row not yet relayed',
      registers: [registry],
    }),
    mailboxDepth: new client.Gauge({
      name: 'boxoffice_worker_mailbox_depth',
      help: 'Requests in flight to each shard worker',
      labelNames: ['worker'] as const,
      registers: [registry],
    }),
    shardRestarts: new client.Gauge({
      name: 'boxoffice_shard_restarts',
      help: 'Shard worker threads restarted after dying, since start',
      registers: [registry],
    }),
    journalBatch: new client.Histogram({
      name: 'boxoffice_journal_batch_commands',
      help: 'Commands per journal group commit',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
      registers: [registry],
    }),
    journalCommit: new client.Histogram({
      name: 'boxoffice_journal_commit_seconds',
      help: 'Journal group-commit latency',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: [registry],
    }),
    passwordHashesRunning: new client.Gauge({
      name: 'boxoffice_password_hashes_running',
      help: 'Password hashes (scrypt) running on the thread pool now; at most HASH_CONCURRENCY',
      registers: [registry],
    }),
    passwordHashesQueued: new client.Gauge({
      name: 'boxoffice_password_hashes_queued',
      help: 'Password hashes waiting for a slot; at most HASH_QUEUE_MAX (503 OVERLOADED past it)',
      registers: [registry],
    }),
    passwordHashesPeak: new client.Gauge({
      name: 'boxoffice_password_hashes_peak_running',
      help: 'Most password hashes that ran at once since start',
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
