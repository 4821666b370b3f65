/**
 * @module metrics
 * Prometheus metrics (prom-client) in a registry of our own, so tests can build many apps per process.
 */
import client from 'prom-client';
import type { JournalFlushStats } from './actors/shard-protocol.js';
import type { GroupCommitStats } from './persistence/group-commit.js';
import type { PoolStats } from './persistence/store.js';

export interface MetricsOptions {
  /** The PostgreSQL pool's figures, read at each scrape; absent on SQLite, which has no pool. */
  poolStats?: () => PoolStats;
  /** The app database's group commit (SQLite), read at each scrape; absent on PostgreSQL. */
  appDbFlushStats?: () => GroupCommitStats;
  /** The shard workers' WAL flushes, read at each scrape (they stay 0 on the PostgreSQL seat store). */
  journalFlushStats?: () => JournalFlushStats;
}

/**
 * A counter whose value lives elsewhere (a running total kept by the code that does the work) and is
 * copied in at each scrape: the hot path adds to a number, not to prom-client.
 */
function mirroredCounter(
  registry: client.Registry,
  name: string,
  help: string,
  read: () => number | [labels: Record<string, string>, value: number][],
  labelNames: string[] = [],
): void {
  new client.Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      const value = read();
      if (typeof value === 'number') this.inc(value);
      else for (const [labels, v] of value) this.inc(labels, v);
    },
  });
}

export function createMetrics(options: MetricsOptions = {}) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const { poolStats, appDbFlushStats, journalFlushStats } = options;
  if (appDbFlushStats) {
    mirroredCounter(
      registry,
      'boxoffice_app_db_flushes_total',
      'App-database WAL flushes (group commit, fdatasync off the JavaScript thread) finished',
      () => appDbFlushStats().flushes,
    );
    mirroredCounter(
      registry,
      'boxoffice_app_db_flush_seconds_total',
      'Time the app-database WAL flushes took, summed (each from start to end, on the thread pool)',
      () => appDbFlushStats().flushSeconds,
    );
    mirroredCounter(
      registry,
      'boxoffice_app_db_durable_waits_total',
      'Callers (answers, side effects) that waited for an app-database flush',
      () => appDbFlushStats().waits,
    );
    mirroredCounter(
      registry,
      'boxoffice_app_db_durable_wait_seconds_total',
      'Wall time callers waited for app-database flushes, summed over callers (overlapping waits add up)',
      () => appDbFlushStats().waitSeconds,
    );
  }
  if (journalFlushStats) {
    const byFile = (pick: (part: JournalFlushStats['commitLog']) => number) => () => {
      const stats = journalFlushStats();
      return [
        [{ file: 'commit_log' }, pick(stats.commitLog)],
        [{ file: 'partition' }, pick(stats.partitions)],
      ] as [Record<string, string>, number][];
    };
    mirroredCounter(
      registry,
      'boxoffice_journal_flushes_total',
      'Seat-journal WAL flushes by the shard workers, by file (the commit log, partition files)',
      byFile((part) => part.flushes),
      ['file'],
    );
    mirroredCounter(
      registry,
      'boxoffice_journal_flush_seconds_total',
      "Time the shard workers' seat-journal WAL flushes took, summed (fdatasync on the thread pool), by file",
      byFile((part) => part.seconds),
      ['file'],
    );
  }
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
