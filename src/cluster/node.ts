/**
 * @module cluster/node
 * What makes a process with DATABASE_URL a node of a cluster (a single node is a cluster of one): its
 * identity, the lease keeper that gives its shard partitions, the forwarder for partitions served
 * elsewhere, and the relay that carries seat events between nodes. docs/ARCHITECTURE.md, "The cluster",
 * has the design: the lease life cycle, the fencing argument, hand-off, and what a client sees.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type { ShardRouter } from '../actors/shard-router.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../persistence/store.js';
import { createForwarder } from './forward.js';
import { ClusterJoinError, LeaseKeeper } from './leases.js';
import { SeatRelay } from './seat-relay.js';

export interface NodeIdentity {
  node: string;
  advertiseUrl: string;
}

/** The host of a URL that reaches HOST: loopback for a wildcard address, brackets around IPv6. */
export function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * NODE_ID (default: host name and port) and ADVERTISE_URL (default: http://HOST:PORT). A node restarted
 * under the same id takes its own leases back at once (`LeaseKeeper.start`), so the default is stable
 * across restarts: with PORT=0 (chosen at listen) the data directory, one process's alone, stands in.
 */
export function nodeIdentity(config: Config): NodeIdentity {
  const port =
    config.PORT === 0
      ? `dir-${crypto.createHash('sha256').update(config.dataDir).digest('hex').slice(0, 10)}`
      : String(config.PORT);
  return {
    node: config.NODE_ID ?? `${os.hostname()}:${port}`,
    advertiseUrl: (config.ADVERTISE_URL ?? `http://${urlHost(config.HOST)}:${config.PORT}`).replace(
      /\/+$/,
      '',
    ),
  };
}

/**
 * A digest of the secrets every node must share: a JWT or a ticket signed by one node must verify on
 * every other, and forwarded requests carry CLUSTER_SECRET. Only the digest is stored.
 */
export function secretsDigest(parts: {
  jwtKey: Uint8Array;
  ticketKid: string;
  clusterSecret?: string;
}): string {
  return crypto
    .createHash('sha256')
    .update(parts.jwtKey)
    .update('\0')
    .update(parts.ticketKid)
    .update('\0')
    .update(parts.clusterSecret ?? '')
    .digest('base64url');
}

export interface ClusterMember {
  keeper: LeaseKeeper;
  identity: NodeIdentity;
  /** Starts relaying seat events, once the seat-map mirrors exist. */
  relay(onResync: () => void): Promise<void>;
  /** Hands off every partition (so the others serve them at once) and leaves. */
  leave(): Promise<void>;
}

export async function joinCluster(options: {
  config: Config;
  store: Store;
  router: ShardRouter;
  identity: NodeIdentity;
  secretsDigest: string;
  logger?: Logger;
  metrics?: Metrics;
}): Promise<ClusterMember> {
  const { config, store, router, identity, logger, metrics } = options;
  const keeper = new LeaseKeeper({
    databaseUrl: config.DATABASE_URL!,
    node: identity.node,
    advertiseUrl: identity.advertiseUrl,
    partitions: router.partitionCount,
    ttlSeconds: config.LEASE_TTL_SECONDS,
    secretsDigest: options.secretsDigest,
    router,
    logger,
  });
  router.setRemote(
    createForwarder({
      leases: keeper,
      secret: config.CLUSTER_SECRET,
      logger,
      onForward: (outcome) => metrics?.clusterForwards.inc({ outcome }),
    }),
  );
  await keeper.start();
  if (!config.CLUSTER_SECRET && keeper.liveNodes.length > 1) {
    await keeper.stop();
    throw new ClusterJoinError(
      `CLUSTER_SECRET is required when more than one node runs (live: ${keeper.liveNodes.join(', ')})`,
    );
  }
  logger?.info(
    {
      node: identity.node,
      url: identity.advertiseUrl,
      partitions: keeper.heldCount,
      nodes: keeper.liveNodes,
    },
    'joined the cluster',
  );
  let relay: SeatRelay | undefined;
  return {
    keeper,
    identity,
    async relay(onResync) {
      relay = await SeatRelay.start({
        store,
        router,
        node: identity.node,
        hasPeers: () => keeper.liveNodes.length > 1,
        onResync,
        logger,
      });
    },
    async leave() {
      await keeper.stop();
      await relay?.close();
    },
  };
}
