/**
 * @module shard-router
 * The main thread's door to the show actors: `partition = hash(showId) mod P`, partition → worker,
 * requests batched into one message per worker per turn of the event loop, replies correlated by id.
 * It bounds what is in flight, restarts a worker that dies (its partitions recover from their journals
 * while the others keep serving), drives the expiry sweep with the service's clock, and fans the
 * actors' events out to listeners.
 */
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';
import pg from 'pg';
import type { Logger } from '../logger.js';
import {
  openSeatMeta,
  type PartitionHash,
  type SeatMeta,
  type SeatMetaStore,
} from '../persistence/seat-meta.js';
import type { SeatStoreOption } from '../persistence/seat-store.js';
import { seatLogNames } from '../persistence/seat-store.js';
import type { JournalSync } from '../persistence/wal-flush.js';
import { workerEntry } from '../worker-entry.js';
import { foldCommitLogs } from './shard-core.js';
import {
  decodeReplies,
  encodeRequests,
  FlushCounters,
  type FromShard,
  type JournalFlushStats,
  MAX_REQUESTS_PER_MESSAGE,
  type RecoveryStats,
  type RoutingRefusal,
  type SeatMapData,
  type ShardOp,
  type ShardOptions,
  type ShardRequest,
  type ShardResult,
  type ShowEvent,
  type ToShard,
} from './shard-protocol.js';
import type { HoldView, ShowCommand, ShowReply } from './show-actor.js';

export type { SeatMapData, ShowEvent } from './shard-protocol.js';

/** Requests in flight to one worker before new ones are refused with OVERLOADED. */
export const MAX_IN_FLIGHT_PER_WORKER = 100_000;
/** How often the expiry sweep runs; holds expire lazily regardless, this only makes feeds prompt. */
export const EXPIRY_SWEEP_MS = 1000;
/**
 * A shard's young generation (V8's default is 48 MB on 64-bit: 16 MB semi-spaces). Tens of thousands of
 * requests in flight outlive the default's scavenges and get promoted, and the old generation's GC then
 * dominated; 192 MB (64 MB semi-spaces, as `--max-semi-space-size=64` gives the main thread) measured
 * ~+15% durable throughput here. See docs/ARCHITECTURE.md.
 */
const WORKER_YOUNG_GENERATION_MB = 192;
/** Pause before a dead worker is started again. */
export const RESTART_DELAY_MS = 200;
/** The longest pause between attempts to start a shard whose recovery keeps failing. */
export const MAX_RESTART_DELAY_MS = 30_000;

export interface CreateShowSpec {
  showId: string;
  layoutKey: string;
  forbidSingleSeatGaps: boolean;
}

export interface ShardRouterOptions {
  dataDir: string;
  partitions: number;
  workers: number;
  journalSync: JournalSync;
  snapshotEvery: number;
  logger?: Logger;
  /** The service's clock for expiry sweeps (tests inject one). */
  now?: () => number;
  /** 0 turns the timed sweep off (tests of lazy expiry). */
  sweepEveryMs?: number;
  /**
   * Where the shards keep partitions and commit logs: SQLite files in `dataDir` (the default) or a
   * PostgreSQL database (each worker opens a small pool of its own), with the partition and worker
   * counts (`seat-meta.ts`).
   */
  seatStore?: SeatStoreOption;
  /**
   * Set on a cluster node (PostgreSQL): the workers start with no partitions; the lease keeper
   * (`src/cluster/leases.ts`) gives and takes them (`acquire`, `release`, `abandon`), and a request for a
   * partition served elsewhere goes to `setRemote`'s forwarder.
   */
  cluster?: { node: string };
}

/** Sends a request to the node that owns its partition (a cluster's forwarder). */
export type RemoteShard = (partition: number, showId: string, op: ShardOp) => Promise<ShardResult>;

/** A partition this node serves (cluster only). */
interface OwnedPartition {
  epoch: number;
  slot: WorkerSlot;
  /** Loading: requests wait in the worker until it serves. Releasing: new requests go to the next owner. */
  state: 'loading' | 'serving' | 'releasing';
  settle?: (isServing: boolean) => void;
  released?: () => void;
}

export interface ShardStats {
  partitions: number;
  workers: number;
  /** Requests awaiting a reply, by worker. */
  inFlight: Map<number, number>;
  restarts: number;
  recovery: RecoveryStats[];
  /** Commit logs folded at start because the worker count changed. */
  folded?: { logs: number; replayed: number };
}

export type RouterReply = ShowReply | RoutingRefusal;
type EventListener = (events: ShowEvent[]) => void;
type BatchListener = (journaled: number, commitMs: number) => void;

interface Pending {
  resolve: (result: ShardResult) => void;
}

interface WorkerSlot {
  index: number;
  partitions: number[];
  worker?: Worker;
  isReady: boolean;
  /** Requests waiting for the next flush (or for the worker to be ready). */
  outbox: ShardRequest[];
  pending: Map<number, Pending>;
  isFlushScheduled: boolean;
  recovery?: RecoveryStats;
  stopped?: () => void;
  /** A restart's recovery failed: requests are refused at once until a later attempt succeeds. */
  isBroken?: boolean;
}

/** The advisory lock of the one-time fold of per-worker logs (any constant no other part uses). */
const FOLD_LOCK_KEY = 0x0b0c_f01d;

/**
 * The partition of a show: `crc32` (every store created now) is nginx's `hash` of the show id,
 * `((crc32(utf8) >> 16) & 0x7fff) % partitions`, so a balancer that hashes the show id with weights
 * summing to the partition count picks the node whose range holds the partition (`cluster/placement.ts`);
 * `fnv1a` over UTF-16 code units is kept for stores created before. Both are stable across processes
 * and machines.
 */
export function partitionOf(showId: string, partitions: number, hash: PartitionHash = 'crc32'): number {
  if (hash === 'crc32') return ((zlib.crc32(showId) >>> 16) & 0x7fff) % partitions;
  let h = 0x811c9dc5;
  for (let i = 0; i < showId.length; i++) {
    h ^= showId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/** The commit log worker `index` appends to. */
export function workerLogName(index: number): string {
  return `w-${index}`;
}

export class ShardRouter {
  readonly #slots: WorkerSlot[];
  readonly #eventListeners: EventListener[] = [];
  readonly #localEventListeners: EventListener[] = [];
  readonly #batchListeners: BatchListener[] = [];
  readonly #partitions: number;
  readonly #hash: PartitionHash;
  readonly #now: () => number;
  #nextId = 1;
  #restarts = 0;
  #folded?: { logs: number; replayed: number };
  #isStopping = false;
  #sweepTimer?: NodeJS.Timeout;
  #resolveShow?: (showId: string) => CreateShowSpec | undefined;
  readonly #owned = new Map<number, OwnedPartition>();
  readonly #flushCounters: FlushCounters;
  #remote?: RemoteShard;

  private constructor(
    private readonly options: ShardRouterOptions,
    private readonly meta: SeatMetaStore,
    private readonly storedMeta: SeatMeta,
  ) {
    this.#partitions = storedMeta.partitions;
    this.#hash = storedMeta.hash ?? 'fnv1a';
    this.#now = options.now ?? Date.now;
    const workers = Math.max(1, Math.min(options.workers, this.#partitions));
    this.#flushCounters = new FlushCounters(workers);
    this.#slots = Array.from({ length: workers }, (_, index) => ({
      index,
      partitions: [] as number[],
      isReady: false,
      outbox: [],
      pending: new Map(),
      isFlushScheduled: false,
    }));
    // A cluster node's workers are given partitions as its leases come (`acquire`).
    if (!options.cluster)
      for (let p = 0; p < this.#partitions; p++) this.#slots[p % workers]!.partitions.push(p);
  }

  /** Starts the workers and resolves once every partition has recovered. */
  static async start(options: ShardRouterOptions): Promise<ShardRouter> {
    // The partition count is fixed when the seat store is created, so a show never changes partition;
    // a different PARTITIONS later is ignored with a warning.
    const meta = openSeatMeta(options.dataDir, options.seatStore);
    const stored = await meta.fix({
      partitions: options.partitions,
      hash: 'crc32',
      createdAt: new Date().toISOString(),
    });
    if (stored.partitions !== options.partitions)
      options.logger?.warn(
        { stored: stored.partitions, requested: options.partitions },
        'PARTITIONS is fixed by the seat store; using the stored count',
      );
    const router = new ShardRouter(options, meta, stored);
    if (options.cluster) await router.#foldWorkerLogs();
    else await router.#matchLogsToWorkers();
    await Promise.all(router.#slots.map((slot) => router.#spawn(slot)));
    const sweepEveryMs = options.sweepEveryMs ?? EXPIRY_SWEEP_MS;
    if (sweepEveryMs > 0) {
      router.#sweepTimer = setInterval(() => router.#sweep(), sweepEveryMs);
      router.#sweepTimer.unref();
    }
    return router;
  }

  /**
   * A commit log holds the partitions of one worker, and which those are depends on the worker count;
   * when the count changed since the logs were written, they are folded into the partition files first.
   */
  async #matchLogsToWorkers(): Promise<void> {
    const { dataDir, journalSync, snapshotEvery, logger } = this.options;
    const meta = this.storedMeta;
    if (meta.workers === this.#slots.length) return;
    const started = performance.now();
    const folded = await foldCommitLogs({
      dataDir,
      partitions: Array.from({ length: this.#partitions }, (_, p) => p),
      journalSync,
      snapshotEvery,
      seatStore: this.options.seatStore,
    });
    if (folded.logs > 0) {
      this.#folded = folded;
      logger?.info(
        {
          ...folded,
          from: meta.workers,
          to: this.#slots.length,
          ms: Math.round(performance.now() - started),
        },
        'worker count changed: commit logs folded into the partition files',
      );
    }
    await this.meta.setWorkers(this.#slots.length);
  }

  /**
   * A database a single PostgreSQL node wrote before clusters existed holds per-worker logs (`w-N`),
   * which no partition's owner reads: at the first cluster start they are folded into the partitions'
   * snapshots. Only while no partition has a log of its own yet (no node of a cluster ran): a fold
   * then could overwrite newer snapshots, so that start is refused instead (stop the old version first).
   */
  async #foldWorkerLogs(): Promise<void> {
    const { dataDir, journalSync, snapshotEvery, logger, seatStore } = this.options;
    if (seatStore?.kind !== 'postgres') return;
    const isLegacy = (name: string) => !/^p-\d+$/.test(name);
    if (!(await seatLogNames(dataDir, seatStore)).some(isLegacy)) return;
    // Nodes starting together fold one at a time; the second finds nothing left to fold.
    const lock = new pg.Client({ connectionString: seatStore.url });
    await lock.connect();
    try {
      await lock.query('SELECT pg_advisory_lock($1)', [FOLD_LOCK_KEY]);
      const names = await seatLogNames(dataDir, seatStore);
      const legacy = names.filter(isLegacy);
      if (legacy.length === 0) return;
      if (legacy.length < names.length)
        throw new Error(
          `the seat store holds per-worker logs (${legacy.join(', ')}) beside a cluster's: a node of an older version is running on this database`,
        );
      const folded = await foldCommitLogs({
        dataDir,
        partitions: Array.from({ length: this.#partitions }, (_, p) => p),
        journalSync,
        snapshotEvery,
        seatStore,
      });
      this.#folded = folded;
      logger?.info(folded, 'per-worker commit logs folded into the partitions for the cluster');
    } finally {
      await lock.end().catch(() => undefined);
    }
  }

  get isReady(): boolean {
    return !this.#isStopping && this.#slots.every((s) => s.isReady);
  }

  get partitionCount(): number {
    return this.#partitions;
  }

  /** How a show id picks its partition in this store (fixed when the store was created). */
  get partitionHash(): PartitionHash {
    return this.#hash;
  }

  /** Tells the router how to create a show's actor that is missing (a crash between the row and the actor). */
  setShowResolver(resolve: (showId: string) => CreateShowSpec | undefined): void {
    this.#resolveShow = resolve;
  }

  onEvents(listener: EventListener): void {
    this.#eventListeners.push(listener);
  }

  /** Events of this node's own shard only (a cluster's relay publishes them to the other nodes). */
  onLocalEvents(listener: EventListener): void {
    this.#localEventListeners.push(listener);
  }

  /** Events of shows served by another node (a cluster's relay), to the same listeners as local ones. */
  emitEvents(events: ShowEvent[]): void {
    if (events.length > 0) for (const listener of this.#eventListeners) listener(events);
  }

  /** Called after every journal group commit (for metrics). */
  onBatch(listener: BatchListener): void {
    this.#batchListeners.push(listener);
  }

  /** Applies a command in the show's actor; resolves once it is durable (or was refused). */
  async send(showId: string, command: ShowCommand): Promise<RouterReply> {
    const result = (await this.#request(showId, { kind: 'command', command })) as RouterReply;
    if (result.ok || result.code !== 'SHOW_NOT_FOUND' || !(await this.#createMissing(showId))) return result;
    return (await this.#request(showId, { kind: 'command', command })) as RouterReply;
  }

  /** Creates a show's actor; idempotent for the same layout. */
  async createShow(
    spec: CreateShowSpec,
  ): Promise<{ ok: true } | RoutingRefusal | Extract<ShowReply, { ok: false }>> {
    const { showId, layoutKey, forbidSingleSeatGaps } = spec;
    return (await this.#request(showId, { kind: 'create', layoutKey, forbidSingleSeatGaps })) as
      | { ok: true }
      | RoutingRefusal;
  }

  async getHold(showId: string, holdId: string): Promise<HoldView | undefined> {
    const result = await this.#read(showId, { kind: 'getHold', holdId });
    return result && 'hold' in result ? result.hold : undefined;
  }

  /** The caller's live hold on a seat, if any (the seed design's book-seat names a seat, not a hold). */
  async findHoldOf(showId: string, ownerId: string, seat: string): Promise<string | undefined> {
    const result = await this.#read(showId, { kind: 'findHoldOf', ownerId, seat });
    return result && 'holdId' in result ? result.holdId : undefined;
  }

  async seatMap(showId: string): Promise<SeatMapData | undefined> {
    const result = await this.#read(showId, { kind: 'seatMap' });
    return result && 'seatMap' in result ? result.seatMap : undefined;
  }

  /** The actor's invariant violations (empty when sound); undefined for an unknown show. */
  async check(showId: string): Promise<string[] | undefined> {
    const result = await this.#read(showId, { kind: 'check' });
    return result && 'violations' in result ? result.violations : undefined;
  }

  async #read(showId: string, op: ShardOp): Promise<ShardResult | undefined> {
    let result = await this.#request(showId, op);
    if (!result.ok && result.code === 'SHOW_NOT_FOUND' && (await this.#createMissing(showId)))
      result = await this.#request(showId, op);
    if (!result.ok) {
      if (result.code === 'SHOW_NOT_FOUND') return undefined;
      throw Object.assign(new Error(result.message), { code: result.code });
    }
    return result;
  }

  async #createMissing(showId: string): Promise<boolean> {
    const spec = this.#resolveShow?.(showId);
    if (!spec) return false;
    const created = await this.createShow(spec);
    if (!created.ok)
      this.options.logger?.error({ showId, code: created.code }, 'could not create a missing actor');
    return created.ok;
  }

  /** The workers' WAL flushes since start (SQLite seat store; on PostgreSQL they stay 0). */
  journalFlushStats(): JournalFlushStats {
    return this.#flushCounters.read();
  }

  stats(): ShardStats {
    return {
      partitions: this.#partitions,
      workers: this.#slots.length,
      inFlight: new Map(this.#slots.map((s) => [s.index, s.pending.size])),
      restarts: this.#restarts,
      recovery: this.#slots.flatMap((s) => (s.recovery ? [s.recovery] : [])),
      folded: this.#folded,
    };
  }

  #request(showId: string, op: ShardOp): Promise<ShardResult> {
    if (this.#isStopping) return Promise.resolve(refusal('NOT_READY', 'the seat allocator is shutting down'));
    const partition = partitionOf(showId, this.#partitions, this.#hash);
    if (!this.options.cluster)
      return this.#requestLocal(this.#slots[partition % this.#slots.length]!, partition, showId, op);
    const owned = this.#owned.get(partition);
    if (owned && owned.state !== 'releasing')
      return this.#requestLocalOrRemote(owned.slot, partition, showId, op);
    return this.#requestRemote(partition, showId, op);
  }

  /** Served here; if the partition left this node meanwhile (dropped, handed off), at its next owner. */
  async #requestLocalOrRemote(
    slot: WorkerSlot,
    partition: number,
    showId: string,
    op: ShardOp,
  ): Promise<ShardResult> {
    const result = await this.#requestLocal(slot, partition, showId, op);
    if (result.ok || result.code !== 'NOT_OWNER') return result;
    return this.#requestRemote(partition, showId, op);
  }

  /** At the partition's owner elsewhere; never NOT_OWNER to the caller (that is the router's business). */
  async #requestRemote(partition: number, showId: string, op: ShardOp): Promise<ShardResult> {
    const result = this.#remote ? await this.#remote(partition, showId, op) : notOwner(partition);
    if (result.ok || result.code !== 'NOT_OWNER') return result;
    return refusal('NOT_READY', `show ${showId} is moving to another node; try again in a moment`);
  }

  /**
   * A request another node forwarded: served here only if this node serves the partition now (never
   * forwarded again: one hop at most); otherwise NOT_OWNER, and the sender asks the owner it re-reads.
   */
  requestForwarded(partition: number, showId: string, op: ShardOp): Promise<ShardResult> {
    if (this.#isStopping) return Promise.resolve(refusal('NOT_READY', 'the seat allocator is shutting down'));
    if (partition !== partitionOf(showId, this.#partitions, this.#hash))
      return Promise.resolve(refusal('NOT_OWNER', `show ${showId} is not in partition ${partition}`));
    const owned = this.#owned.get(partition);
    if (!owned || owned.state === 'releasing') return Promise.resolve(notOwner(partition));
    return this.#requestLocal(owned.slot, partition, showId, op);
  }

  /** Where requests for partitions served elsewhere go (a cluster node's forwarder). */
  setRemote(remote: RemoteShard): void {
    this.#remote = remote;
  }

  /** The partitions this node serves now, with their lease epochs (cluster only). */
  ownedPartitions(): Map<number, number> {
    return new Map([...this.#owned].map(([p, owned]) => [p, owned.epoch]));
  }

  /**
   * Serves a partition whose lease this node now holds at `epoch`: its worker recovers it from the
   * store (snapshots, then its log) and serves it. Resolves false if the recovery failed.
   */
  acquire(partition: number, epoch: number): Promise<boolean> {
    const known = this.#owned.get(partition);
    if (known) return Promise.resolve(known.state !== 'releasing');
    const slot = this.#slots[partition % this.#slots.length]!;
    return new Promise<boolean>((resolve) => {
      this.#owned.set(partition, { epoch, slot, state: 'loading', settle: resolve });
      // Before any request for it: the worker holds those until the partition is recovered. A worker
      // not ready yet is sent it when it is (`#onReady`).
      if (slot.isReady) this.#post(slot, { type: 'acquire', partition, epoch });
    });
  }

  /**
   * Hands a partition off: new requests for it go to the next owner; those already sent are applied,
   * its shows snapshotted and made durable, then it is closed. The caller then releases the lease.
   */
  release(partition: number): Promise<void> {
    const owned = this.#owned.get(partition);
    if (!owned) return Promise.resolve();
    if (owned.state === 'releasing')
      return new Promise((resolve) => {
        const before = owned.released;
        owned.released = () => {
          before?.();
          resolve();
        };
      });
    owned.state = 'releasing';
    return new Promise<void>((resolve) => {
      owned.released = () => {
        this.#owned.delete(partition);
        resolve();
      };
      const { slot } = owned;
      if (!slot.isReady) return owned.released();
      // What this node already accepted for the partition reaches the worker before the release.
      this.#flush(slot);
      this.#post(slot, { type: 'release', partition });
    });
  }

  /**
   * Stops serving a partition at once: its lease is gone (or could be), so nothing more may be written
   * or answered for it. Requests in flight are answered WORKER_FAILED by the worker.
   */
  abandon(partition: number): void {
    const owned = this.#owned.get(partition);
    if (!owned) return;
    this.#owned.delete(partition);
    owned.settle?.(false);
    owned.released?.();
    if (owned.slot.isReady) this.#post(owned.slot, { type: 'abandon', partition });
  }

  #requestLocal(slot: WorkerSlot, partition: number, showId: string, op: ShardOp): Promise<ShardResult> {
    if (slot.isBroken) return Promise.resolve(cannotStart());
    if (slot.pending.size >= MAX_IN_FLIGHT_PER_WORKER)
      return Promise.resolve(refusal('OVERLOADED', 'too many requests in flight; try again shortly'));
    const id = this.#nextId++;
    return new Promise<ShardResult>((resolve) => {
      slot.pending.set(id, { resolve });
      slot.outbox.push({ id, partition, showId, op });
      // A full message leaves at once, so the worker starts on it while this turn makes the next.
      if (slot.outbox.length >= MAX_REQUESTS_PER_MESSAGE && slot.isReady) this.#flush(slot);
      else this.#scheduleFlush(slot);
    });
  }

  #scheduleFlush(slot: WorkerSlot): void {
    if (slot.isFlushScheduled || !slot.isReady) return;
    slot.isFlushScheduled = true;
    // One message per worker per turn: every request made during this turn rides in it.
    setImmediate(() => this.#flush(slot));
  }

  #flush(slot: WorkerSlot): void {
    slot.isFlushScheduled = false;
    if (!slot.isReady || slot.outbox.length === 0) return;
    const requests = slot.outbox;
    slot.outbox = [];
    // Requests that waited for a (re)started worker can be many: they go in messages of bounded size.
    for (let from = 0; from < requests.length; from += MAX_REQUESTS_PER_MESSAGE) {
      const { message, transfer } = encodeRequests(requests.slice(from, from + MAX_REQUESTS_PER_MESSAGE));
      slot.worker?.postMessage(message, transfer);
    }
  }

  #post(slot: WorkerSlot, message: ToShard): void {
    slot.worker?.postMessage(message);
  }

  #spawn(slot: WorkerSlot): Promise<void> {
    const { filename, isEval } = workerEntry(import.meta.url, './shard-worker');
    const workerData: ShardOptions = {
      dataDir: this.options.dataDir,
      partitions: slot.partitions,
      journalSync: this.options.journalSync,
      snapshotEvery: this.options.snapshotEvery,
      log: workerLogName(slot.index),
      seatStore: this.options.seatStore,
      cluster: this.options.cluster,
      // A restarted worker gets its predecessor's slot and adds to it: the figures stay cumulative.
      flushCounters: { buffer: this.#flushCounters.buffer, slot: slot.index },
    };
    const worker = new Worker(filename, {
      workerData,
      eval: isEval,
      name: `shard-${slot.index}`,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    slot.worker = worker;
    return new Promise<void>((resolve, reject) => {
      let isRecovered = false;
      worker.on('message', (message: FromShard) => {
        if (message.type === 'ready') {
          isRecovered = true;
          slot.isReady = true;
          slot.recovery = message.recovery;
          this.options.logger?.info({ worker: slot.index, ...message.recovery }, 'shard recovered');
          this.#onReady(slot);
          this.#scheduleFlush(slot);
          resolve();
        } else if (message.type === 'replies') this.#onReplies(slot, message);
        else if (message.type === 'acquired') {
          const owned = this.#owned.get(message.partition);
          if (owned?.state === 'loading') owned.state = 'serving';
          owned?.settle?.(true);
          if (owned) owned.settle = undefined;
          this.options.logger?.info(
            { partition: message.partition, ...message.recovery },
            'partition recovered',
          );
        } else if (message.type === 'acquireFailed') {
          this.options.logger?.error(
            { partition: message.partition, reason: message.message },
            'partition could not be recovered',
          );
          const owned = this.#owned.get(message.partition);
          this.#owned.delete(message.partition);
          owned?.settle?.(false);
        } else if (message.type === 'released') {
          this.options.logger?.info(
            { partition: message.partition, snapshots: message.snapshots },
            'partition handed off',
          );
          this.#owned.get(message.partition)?.released?.();
        } else if (message.type === 'stopped') {
          this.options.logger?.info({ worker: slot.index, snapshots: message.snapshots }, 'shard stopped');
          slot.stopped?.();
        }
      });
      worker.on('error', (err) => {
        this.options.logger?.error({ err, worker: slot.index }, 'shard worker failed');
        if (!isRecovered) reject(err);
      });
      worker.on('exit', (code) => {
        slot.isReady = false;
        slot.worker = undefined;
        this.#failPending(slot);
        slot.stopped?.();
        if (this.#isStopping || !isRecovered) return;
        this.options.logger?.warn({ worker: slot.index, code }, 'shard worker exited; restarting it');
        this.#restarts++;
        this.#restart(slot, RESTART_DELAY_MS);
      });
    });
  }

  /**
   * Starts a dead worker again after `delayMs`. If its recovery fails (a damaged file, a full disk),
   * every request waiting for it is answered WORKER_FAILED, new ones are refused at once, and it is tried
   * again later, backing off to MAX_RESTART_DELAY_MS: callers never wait on a shard that cannot start.
   */
  #restart(slot: WorkerSlot, delayMs: number): void {
    setTimeout(() => {
      if (this.#isStopping) return;
      this.#spawn(slot).then(
        () => {
          if (slot.isBroken)
            this.options.logger?.info({ worker: slot.index }, 'shard recovered after failed restarts');
          slot.isBroken = false;
        },
        (err: unknown) => {
          this.options.logger?.error(
            { err, worker: slot.index, retryInMs: delayMs * 2 },
            'shard restart failed',
          );
          slot.isBroken = true;
          this.#answerWaiting(slot, cannotStart(), true);
          this.#restart(slot, Math.min(MAX_RESTART_DELAY_MS, delayMs * 2));
        },
      );
    }, delayMs).unref();
  }

  /**
   * A (re)started cluster worker is given the partitions this node serves on it, before any request
   * waiting for them: the same epoch, since the lease did not move (the worker's session name fences out
   * what its dead predecessor left in flight). A release that was waiting for a dead worker is done:
   * what it had not written is the commit log's to replay for the next owner.
   */
  #onReady(slot: WorkerSlot): void {
    for (const [partition, owned] of this.#owned) {
      if (owned.slot !== slot) continue;
      if (owned.state === 'releasing') {
        owned.released?.();
        continue;
      }
      owned.state = 'loading';
      this.#post(slot, { type: 'acquire', partition, epoch: owned.epoch });
    }
  }

  #onReplies(slot: WorkerSlot, message: Extract<FromShard, { type: 'replies' }>): void {
    const { replies, events } = decodeReplies(message);
    for (const [id, result] of replies) {
      const pending = slot.pending.get(id);
      if (!pending) continue;
      slot.pending.delete(id);
      pending.resolve(result);
    }
    if (events.length > 0) {
      for (const listener of this.#eventListeners) listener(events);
      for (const listener of this.#localEventListeners) listener(events);
    }
    const { batch } = message;
    if (batch) for (const listener of this.#batchListeners) listener(batch.journaled, batch.commitMs);
  }

  /** Whatever was sent to a dead worker may or may not have committed: the callers hear so. */
  #failPending(slot: WorkerSlot): void {
    if (this.#isStopping)
      this.#answerWaiting(slot, refusal('NOT_READY', 'the seat allocator is shutting down'), true);
    else
      this.#answerWaiting(
        slot,
        refusal('WORKER_FAILED', 'the seat allocator restarted; the outcome is unknown, check and retry'),
        false,
      );
  }

  /**
   * Answers the slot's waiting callers. Requests never posted are kept for the next worker unless
   * `isEveryone` (stopping, or a shard that cannot start).
   */
  #answerWaiting(slot: WorkerSlot, answer: RoutingRefusal, isEveryone: boolean): void {
    const kept = isEveryone ? new Set<number>() : new Set(slot.outbox.map((r) => r.id));
    for (const [id, pending] of slot.pending) {
      if (kept.has(id)) continue;
      slot.pending.delete(id);
      pending.resolve(answer);
    }
    if (isEveryone) slot.outbox = [];
  }

  #sweep(): void {
    const nowMs = this.#now();
    for (const slot of this.#slots) if (slot.isReady) this.#post(slot, { type: 'sweep', nowMs });
  }

  /** Test and operator hook: ends a worker as a crash would. */
  async killWorker(index: number): Promise<void> {
    await this.#slots[index]?.worker?.terminate();
  }

  /** Lets queued requests finish, snapshots every changed show, and ends the workers. */
  async stop(): Promise<void> {
    if (this.#isStopping) return;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    for (const slot of this.#slots) this.#flush(slot);
    this.#isStopping = true;
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            if (!slot.worker) return resolve();
            slot.stopped = resolve;
            this.#post(slot, { type: 'stop' });
          }),
      ),
    );
  }
}

function refusal(code: RoutingRefusal['code'], message: string): RoutingRefusal {
  return { ok: false, code, message };
}

function notOwner(partition: number): RoutingRefusal {
  return refusal('NOT_OWNER', `partition ${partition} is not served by this node`);
}

function cannotStart(): RoutingRefusal {
  return refusal('WORKER_FAILED', 'the seat allocator cannot start this shard; try again later');
}
