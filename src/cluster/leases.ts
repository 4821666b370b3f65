/**
 * @module leases
 * Which node serves which partition: one lease row per partition in PostgreSQL (`partition_leases`),
 * naming its node and an epoch that rises on every change of owner, with an expiry from the database's
 * clock, never a node's. Every node runs one keeper, which every `renewEveryMs`:
 *
 * 1. renews the leases it holds (only while their epoch is still the one it took);
 * 2. records itself as alive (`cluster_nodes`) and reads who else is;
 * 3. takes the free or expired leases of its home range, and of orphans up to its fair share, each
 *    at a new epoch, and has its shard recover them; and hands off what belongs to another live node's
 *    home, or is more than its share while another node is short (graceful: the shard finishes,
 *    snapshots, closes; then the lease is let go, and the next keeper to tick takes it). Where each
 *    partition should live follows the balancer in front (`placement.ts`), so most requests land on
 *    their owner.
 *
 * Safety does not rest on this loop but on the fence (`pg-commit-log.ts`): a seat write commits only
 * while its lease row still names this node and epoch. The loop keeps a node from serving a partition
 * it may have lost: if no renewal succeeded for a lease's whole TTL, as measured from when the last
 * successful renewal was sent, the node drops every partition at once, before another node can have
 * taken them over (their expiry is at least that far away on the database's clock).
 */
import pg from 'pg';
import type { ShardRouter } from '../actors/shard-router.js';
import type { Logger } from '../logger.js';
import { PARTITION_LEASES_SCHEMA } from '../persistence/pg-seat-store.js';
import { StartupError } from '../startup-preflight.js';
import { placementOf, shareOf } from './placement.js';

export const CLUSTER_NODES_SCHEMA = `
CREATE TABLE IF NOT EXISTS cluster_nodes (
  node text PRIMARY KEY,
  url text NOT NULL,
  seen_at timestamptz NOT NULL,
  started_at timestamptz NOT NULL,
  -- A digest of the secrets every node must share (JWT, tickets, cluster): a node that differs is refused.
  secrets text NOT NULL
)`;

/** The channel a keeper notifies when it lets a lease go, so others take it without waiting a tick. */
export const LEASES_CHANNEL = 'boxoffice_leases';
/** Arbitrary, fixed: keepers create the tables one at a time. */
const CLUSTER_SCHEMA_LOCK_KEY = 0x0b0c_c1a5;
/**
 * A node unseen for this many leases is forgotten: its home is drawn again over the others. Until
 * then its partitions are orphans served by the others, and it takes them back when it returns (a
 * restart, a rolling upgrade), so a short absence moves nothing but its own partitions.
 */
const FORGET_AFTER_TTLS = 12;
/** Renewals stop counting this much before the TTL: clocks run at slightly different rates. */
const SAFETY_FRACTION = 0.2;

export interface LeaseKeeperOptions {
  databaseUrl: string;
  node: string;
  advertiseUrl: string;
  partitions: number;
  ttlSeconds: number;
  renewEveryMs?: number;
  secretsDigest: string;
  router: ShardRouter;
  logger?: Logger;
}

export interface PartitionOwner {
  node: string;
  url: string;
  epoch: number;
}

interface LeaseRow {
  partition: number;
  node: string | null;
  url: string | null;
  epoch: string;
  live: boolean;
}

export class LeaseKeeper {
  readonly #pool: pg.Pool;
  readonly #options: LeaseKeeperOptions;
  readonly #renewEveryMs: number;
  /** Leases this node holds, by partition: the epoch it took each at. */
  readonly #held = new Map<number, number>();
  /** Partitions being handed off (their leases are still held until the shard let them go). */
  readonly #handingOff = new Set<number>();
  /** Live owners as last read, by partition. */
  #owners = new Map<number, PartitionOwner>();
  #liveNodes: string[] = [];
  /** Nodes seen in the last `FORGET_AFTER_TTLS` leases, alive or not: each has a home (`placement.ts`). */
  #knownNodes: string[] = [];
  /** `performance.now()` until which the held leases are surely still ours. */
  #validUntil = 0;
  #timer?: NodeJS.Timeout;
  #deadline?: NodeJS.Timeout;
  #ticking?: Promise<void>;
  #isTickAgain = false;
  #isStopped = false;
  /** Stopping: renewals go on while every partition is handed off, but nothing new is taken. */
  #isLeaving = false;
  #listener?: pg.Client;
  /** Recoveries started and not yet finished. */
  readonly #recovering = new Set<Promise<void>>();

  constructor(options: LeaseKeeperOptions) {
    this.#options = options;
    this.#renewEveryMs = options.renewEveryMs ?? 1000;
    const timeoutMs = Math.max(500, Math.floor((options.ttlSeconds * 1000) / 3));
    // Its own small pool: a keeper must not wait behind the app's queries to renew.
    this.#pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 2,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      application_name: `boxoffice-leases:${options.node}`,
    });
    this.#pool.on('error', () => undefined);
  }

  get node(): string {
    return this.#options.node;
  }

  /**
   * Creates the tables, joins the cluster (refused when its secrets differ from the live nodes'), takes
   * its first share and waits until its shard serves it, then keeps ticking.
   */
  async start(): Promise<void> {
    const { partitions } = this.#options;
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(${CLUSTER_SCHEMA_LOCK_KEY})`);
      await client.query(PARTITION_LEASES_SCHEMA);
      await client.query(CLUSTER_NODES_SCHEMA);
      await client.query(
        'INSERT INTO partition_leases (partition) SELECT generate_series(0, $1::int - 1) ON CONFLICT DO NOTHING',
        [partitions],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    await this.#checkPeers();
    await this.#listen();
    await this.#reclaim();
    await this.tick();
    // The others count this node at once (their share, and whether to relay seat events to it).
    await this.#pool.query(`SELECT pg_notify('${LEASES_CHANNEL}', $1)`, [`join:${this.#options.node}`]);
    this.#schedule();
    // Ready once the first share is recovered (renewals go on meanwhile, on their own timer).
    await Promise.all(this.#recovering);
  }

  /**
   * Leases that still name this node belong to its previous process, which is gone (NODE_ID is unique,
   * and one process holds a data directory): they are taken back at once, at a new epoch, which fences
   * out anything that process left in flight, instead of waiting for them to expire.
   */
  async #reclaim(): Promise<void> {
    const { node, advertiseUrl, ttlSeconds } = this.#options;
    const sentAt = performance.now();
    const { rows } = await this.#pool.query<{ partition: number; epoch: string }>(
      `UPDATE partition_leases SET epoch = epoch + 1, url = $2, expires_at = now() + make_interval(secs => $3)
       WHERE node = $1 RETURNING partition, epoch`,
      [node, advertiseUrl, ttlSeconds],
    );
    if (rows.length === 0) return;
    this.#validUntil = sentAt + ttlSeconds * 1000 * (1 - SAFETY_FRACTION);
    for (const row of rows) this.#held.set(row.partition, Number(row.epoch));
    this.#armDeadline();
    this.#options.logger?.info({ partitions: rows.length }, 'leases of the previous process taken back');
    for (const row of rows) this.#startServing(row.partition, Number(row.epoch));
  }

  /** Refuses to join a cluster whose live nodes hold other secrets (tokens would not verify across them). */
  async #checkPeers(): Promise<void> {
    const { node, ttlSeconds, secretsDigest } = this.#options;
    const { rows } = await this.#pool.query<{ node: string; secrets: string }>(
      `SELECT node, secrets FROM cluster_nodes
       WHERE seen_at > now() - make_interval(secs => $1) AND node <> $2`,
      [ttlSeconds, node],
    );
    const other = rows.find((row) => row.secrets !== secretsDigest);
    if (other)
      throw new ClusterJoinError(
        `node ${other.node} runs with other secrets: every node of a cluster needs the same JWT_SECRET, TICKET_SIGNING_KEY and CLUSTER_SECRET`,
      );
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#options.databaseUrl });
    client.on('error', () => {
      // Prompt hand-offs are an optimisation: the ticks take free leases anyway.
      this.#listener = undefined;
    });
    client.on('notification', () => this.#tickSoon());
    await client.connect();
    await client.query(`LISTEN ${LEASES_CHANNEL}`);
    this.#listener = client;
  }

  #schedule(): void {
    if (this.#isStopped) return;
    this.#timer = setTimeout(() => {
      this.tick()
        .catch((err) => this.#options.logger?.warn({ err }, 'lease tick failed'))
        .finally(() => this.#schedule());
    }, this.#renewEveryMs);
    this.#timer.unref();
  }

  #tickSoon(): void {
    if (this.#isStopped) return;
    this.tick().catch((err) => this.#options.logger?.warn({ err }, 'lease tick failed'));
  }

  /** One round: renew, look around, take or hand off. Ticks never overlap; one asked meanwhile runs after. */
  tick(): Promise<void> {
    if (this.#ticking) {
      this.#isTickAgain = true;
      return this.#ticking;
    }
    this.#ticking = (async () => {
      try {
        do {
          this.#isTickAgain = false;
          await this.#round();
        } while (this.#isTickAgain && !this.#isStopped);
      } finally {
        this.#ticking = undefined;
      }
    })();
    return this.#ticking;
  }

  async #round(): Promise<void> {
    if (this.#isStopped) return;
    await this.#renew();
    if (this.#isStopped) return;
    await this.#look();
    if (!this.#isLeaving) await this.#balance();
  }

  async #renew(): Promise<void> {
    const { node, ttlSeconds } = this.#options;
    const sentAt = performance.now();
    const held = [...this.#held];
    if (held.length > 0) {
      const { rows } = await this.#pool.query<{ partition: number }>(
        `UPDATE partition_leases l SET expires_at = now() + make_interval(secs => $3)
         FROM unnest($1::int[], $2::bigint[]) AS v(partition, epoch)
         WHERE l.partition = v.partition AND l.epoch = v.epoch AND l.node = $4
         RETURNING l.partition`,
        [held.map(([p]) => p), held.map(([, e]) => e), ttlSeconds, node],
      );
      const renewed = new Set(rows.map((r) => r.partition));
      for (const [partition, epoch] of held)
        if (!renewed.has(partition)) {
          this.#options.logger?.warn({ partition }, 'lease lost: no longer serving the partition');
          this.#drop(partition);
        } else if (this.#held.get(partition) !== epoch) {
          // Dropped while the renewal was in flight (its deadline passed): not served, so let it go
          // rather than keep others from it for another TTL.
          await this.#letGo(partition, epoch).catch(() => undefined);
        }
    }
    this.#validUntil = sentAt + ttlSeconds * 1000 * (1 - SAFETY_FRACTION);
    this.#armDeadline();
  }

  /** Drops every partition when the leases may have run out without a renewal (database unreachable, a pause). */
  #armDeadline(): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    if (this.#held.size === 0 || this.#isStopped) return;
    this.#deadline = setTimeout(() => this.#expireIfDue(), Math.max(0, this.#validUntil - performance.now()));
    this.#deadline.unref();
  }

  #expireIfDue(): void {
    if (performance.now() < this.#validUntil || this.#held.size === 0) return;
    this.#options.logger?.error(
      { partitions: this.#held.size },
      'leases not renewed in time: no longer serving any partition',
    );
    for (const partition of [...this.#held.keys()]) this.#drop(partition);
  }

  #drop(partition: number): void {
    this.#held.delete(partition);
    this.#handingOff.delete(partition);
    this.#options.router.abandon(partition);
  }

  async #look(): Promise<void> {
    const { node, advertiseUrl, ttlSeconds, secretsDigest } = this.#options;
    await this.#pool.query(
      `INSERT INTO cluster_nodes (node, url, seen_at, started_at, secrets) VALUES ($1, $2, now(), now(), $3)
       ON CONFLICT (node) DO UPDATE SET url = excluded.url, seen_at = now(), secrets = excluded.secrets`,
      [node, advertiseUrl, secretsDigest],
    );
    const [nodes] = await Promise.all([
      this.#pool.query<{ node: string; live: boolean }>(
        `SELECT node, seen_at > now() - make_interval(secs => $1) AS live FROM cluster_nodes
         WHERE seen_at > now() - make_interval(secs => $2) ORDER BY node`,
        [ttlSeconds, ttlSeconds * FORGET_AFTER_TTLS],
      ),
      this.refresh(),
    ]);
    this.#knownNodes = nodes.rows.map((r) => r.node);
    this.#liveNodes = nodes.rows.filter((r) => r.live).map((r) => r.node);
    if (!this.#liveNodes.includes(node)) this.#liveNodes.push(node);
    this.#liveNodes.sort();
  }

  /**
   * Takes free or expired leases of its home first, then orphans up to its fair share; hands back
   * partitions whose home node is alive again, and orphans beyond its share when another live node is
   * short (`placement.ts`).
   */
  async #balance(): Promise<void> {
    const { node, advertiseUrl, ttlSeconds, partitions } = this.#options;
    const placement = placementOf(node, this.#knownNodes, this.#liveNodes, partitions);
    const home = new Set(placement.home);
    const orphans = new Set(placement.orphans);
    const kept = [...this.#held.keys()].filter((p) => !this.#handingOff.has(p));
    const room = Math.max(0, placement.fairShare - kept.length);
    const homeMissing = placement.home.filter((p) => !this.#held.has(p)).length;
    const limit = Math.max(homeMissing, room);
    if (limit > 0 && this.#isAnyFree([...home, ...(room > 0 ? orphans : [])])) {
      const sentAt = performance.now();
      const { rows } = await this.#pool.query<{ partition: number; epoch: string }>(
        `UPDATE partition_leases SET node = $1, url = $2, epoch = epoch + 1,
                expires_at = now() + make_interval(secs => $3)
         WHERE partition IN (
           SELECT partition FROM partition_leases
           WHERE (node IS NULL OR expires_at <= now()) AND partition = ANY($5::int[])
           ORDER BY partition = ANY($6::int[]) DESC, partition LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING partition, epoch`,
        [node, advertiseUrl, ttlSeconds, limit, [...home, ...(room > 0 ? orphans : [])], [...home]],
      );
      if (rows.length > 0) {
        if (this.#held.size === 0) this.#validUntil = sentAt + ttlSeconds * 1000 * (1 - SAFETY_FRACTION);
        for (const row of rows) {
          const epoch = Number(row.epoch);
          this.#held.set(row.partition, epoch);
          this.#owners.set(row.partition, { node, url: advertiseUrl, epoch });
        }
        this.#armDeadline();
        this.#options.logger?.info({ partitions: rows.map((r) => r.partition) }, 'leases taken');
        for (const row of rows) this.#startServing(row.partition, Number(row.epoch));
        return;
      }
    }
    // Not awaited: renewals go on while the shard finishes with them.
    const away = kept.filter((p) => !home.has(p) && !orphans.has(p));
    for (const partition of away) void this.handOff(partition);
    const extraOrphans = kept.length - away.length - placement.fairShare;
    if (extraOrphans > 0 && this.#isSomeoneShort())
      for (const partition of kept
        .filter((p) => orphans.has(p))
        .sort((a, b) => b - a)
        .slice(0, extraOrphans))
        void this.handOff(partition);
  }

  /** Whether the last read saw a lease among `partitions` that nobody live holds. */
  #isAnyFree(partitions: number[]): boolean {
    return partitions.some((p) => !this.#owners.has(p));
  }

  /** Whether some live node holds fewer partitions than its fair share. */
  #isSomeoneShort(): boolean {
    const { node, partitions } = this.#options;
    const counts = new Map<string, number>();
    for (const owner of this.#owners.values()) counts.set(owner.node, (counts.get(owner.node) ?? 0) + 1);
    return this.#liveNodes.some(
      (n, i) => n !== node && (counts.get(n) ?? 0) < shareOf(i, this.#liveNodes.length, partitions),
    );
  }

  /**
   * Starts recovering a partition just leased, without waiting for it: recoveries can take longer than
   * a lease, and renewals must go on meanwhile. A recovery that failed lets the lease go again.
   */
  #startServing(partition: number, epoch: number): void {
    const recovering = this.#serve(partition, epoch).then(
      (isServing) => {
        if (!isServing) this.#tickSoon();
      },
      (err) => this.#options.logger?.error({ err, partition }, 'partition recovery failed'),
    );
    this.#recovering.add(recovering);
    void recovering.finally(() => this.#recovering.delete(recovering));
  }

  /** Has the shard recover a partition just leased; a recovery that failed lets the lease go again. */
  async #serve(partition: number, epoch: number): Promise<boolean> {
    if (await this.#options.router.acquire(partition, epoch)) return true;
    if (this.#held.get(partition) === epoch) {
      this.#held.delete(partition);
      await this.#letGo(partition, epoch).catch(() => undefined);
    }
    return false;
  }

  /**
   * Graceful hand-off of one partition: the shard applies what it accepted, snapshots, closes; then the
   * lease is let go (expired now, epoch kept) and the others are told, so the next owner takes it at once.
   */
  async handOff(partition: number): Promise<void> {
    const epoch = this.#held.get(partition);
    if (epoch === undefined || this.#handingOff.has(partition)) return;
    this.#handingOff.add(partition);
    try {
      await this.#options.router.release(partition);
      if (this.#held.get(partition) !== epoch) return;
      await this.#letGo(partition, epoch);
      this.#held.delete(partition);
      this.#owners.delete(partition);
      this.#options.logger?.info({ partition }, 'lease handed off');
    } catch (err) {
      this.#options.logger?.warn({ err, partition }, 'hand-off failed; the lease expires instead');
      this.#drop(partition);
    } finally {
      this.#handingOff.delete(partition);
    }
  }

  async #letGo(partition: number, epoch: number): Promise<void> {
    await this.#pool.query(
      `UPDATE partition_leases SET node = NULL, url = NULL, expires_at = now()
       WHERE partition = $1 AND node = $2 AND epoch = $3`,
      [partition, this.#options.node, epoch],
    );
    await this.#pool.query(`SELECT pg_notify('${LEASES_CHANNEL}', $1)`, [String(partition)]);
  }

  /** The live owner of a partition as last read (undefined when none, or when it is this node). */
  ownerOf(partition: number): PartitionOwner | undefined {
    const owner = this.#owners.get(partition);
    return owner && owner.node !== this.#options.node ? owner : undefined;
  }

  /** Reads the lease table: every tick, and when a forward found the owner it knew gone. */
  async refresh(): Promise<void> {
    const { rows } = await this.#pool.query<LeaseRow>(
      'SELECT partition, node, url, epoch, expires_at > now() AS live FROM partition_leases',
    );
    const owners = ownersOf(rows);
    // Leases this node took after the read began are its own, whatever the read says.
    for (const [partition, epoch] of this.#held)
      owners.set(partition, { node: this.#options.node, url: this.#options.advertiseUrl, epoch });
    this.#owners = owners;
  }

  /** Live nodes as last read, this one included. */
  get liveNodes(): readonly string[] {
    return this.#liveNodes;
  }

  get heldCount(): number {
    return this.#held.size;
  }

  /**
   * Leaves the cluster: hands off every partition (each is snapshotted and its lease let go), so the
   * other nodes take them at once; then marks this node as gone (still known: if it comes back soon, as
   * in a rolling restart, its home is the same, and nothing else moves).
   */
  async stop(): Promise<void> {
    if (this.#isLeaving) return;
    this.#isLeaving = true;
    await this.#ticking?.catch(() => undefined);
    await Promise.all([...this.#held.keys()].map((partition) => this.handOff(partition)));
    this.#isStopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#deadline) clearTimeout(this.#deadline);
    await this.#pool
      .query('UPDATE cluster_nodes SET seen_at = now() - make_interval(secs => $2) WHERE node = $1', [
        this.#options.node,
        this.#options.ttlSeconds,
      ])
      .catch(() => undefined);
    await this.#listener?.end().catch(() => undefined);
    await this.#pool.end().catch(() => undefined);
  }
}

function ownersOf(rows: LeaseRow[]): Map<number, PartitionOwner> {
  const owners = new Map<number, PartitionOwner>();
  for (const row of rows)
    if (row.live && row.node !== null && row.url !== null)
      owners.set(row.partition, { node: row.node, url: row.url, epoch: Number(row.epoch) });
  return owners;
}

/** This node may not join the cluster as configured (a start-up error: one line, exit 1). */
export class ClusterJoinError extends StartupError {}
