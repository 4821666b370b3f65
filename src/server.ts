/**
 * @module server
 * Builds and starts the whole service from a validated config: app database, shard workers (recovered
 * before the first request is served), the Hono app, the seat feed, and an orderly close.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { ShardRouter } from './actors/shard-router.js';
import { type ClusterMember, joinCluster, nodeIdentity, secretsDigest, urlHost } from './cluster/node.js';
import type { Config } from './config.js';
import { loadJwtKey, TokenService } from './domain/auth-tokens.js';
import { BookingService } from './domain/bookings.js';
import { CatalogService, liveAvailability } from './domain/catalog.js';
import { prepareCatalog } from './domain/demo-seed.js';
import { HoldService } from './domain/holds.js';
import { OfferService } from './domain/offers.js';
import { OnsaleService } from './domain/onsales.js';
import { SeatMaps } from './domain/seat-maps.js';
import { ShowInfoCache } from './domain/show-info.js';
import { TicketDesk } from './domain/ticket-desk.js';
import { UserService } from './domain/users.js';
import { createApp } from './http/app.js';
import { handleConnectionErrors } from './http/connection-errors.js';
import type { AppDeps } from './http/context.js';
import { createQueueFeed } from './http/onsale-feed.js';
import { attachSeatFeed } from './http/seat-feed.js';
import { startNotifier } from './jobs/notifier.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import { afterDurable, createPaymentProvider } from './payments/index.js';
import { admissionLeadership, advisoryLeadership, SWEEPER_LOCK_KEY } from './persistence/admission-leader.js';
import { openStore } from './persistence/open-store.js';
import { notify } from './persistence/store.js';
import { claimDataDir, listenError, probeListen } from './startup-preflight.js';
import { TicketSigner } from './tickets/ticket-signer.js';

/** Where a node tells the others that a show changed (catalog edits), so their caches read it again. */
export const SHOWS_CHANNEL = 'boxoffice_shows';
/** The on-sale admission clock's tick: opening, admissions and the sold-out check. */
export const ONSALE_TICK_MS = 1_000;

export interface RunningServer {
  url: string;
  port: number;
  deps: AppDeps;
  /** Graceful: stop accepting, finish in-flight requests (bounded), snapshot journals, close stores. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  now?: () => number;
  /** Test-only: replaces the app database's WAL flush (a slowed flusher proves nothing leaves early). */
  appDbFlush?: () => Promise<void>;
  /** Test-only fault injection: runs between the actor's confirm and the booking row's update. */
  afterActorConfirm?: () => void;
  /** Benches and tests: every app-database commit, with the statements it wrote (`AppDbOptions`). */
  onAppDbCommit?: (statements: string[]) => void;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.LOG_LEVEL);
  const now = options.now ?? Date.now;
  // Before anything touches the directory or seeds: a second process, or a port that cannot be listened
  // on, stops the start here with one line naming the variable.
  const dataDirLock = claimDataDir(config.dataDir);
  await probeListen(config).catch((err) => {
    dataDirLock.release();
    throw err;
  });
  const opened = await openStore(config, {
    logger,
    appDbFlush: options.appDbFlush,
    onAppDbCommit: options.onAppDbCommit,
  }).catch((err) => {
    dataDirLock.release();
    throw err;
  });
  const { store, durable } = opened;
  // With PostgreSQL the process is a node of a cluster (of one, alone): partitions by lease.
  const identity = opened.seatStore.kind === 'postgres' ? nodeIdentity(config) : undefined;
  const router = await ShardRouter.start({
    cluster: identity && { node: identity.node },
    dataDir: config.dataDir,
    partitions: config.PARTITIONS,
    workers: config.WORKERS,
    journalSync: config.JOURNAL_SYNC,
    seatStore: opened.seatStore,
    snapshotEvery: config.SNAPSHOT_EVERY,
    logger,
    now,
  });
  const metrics = createMetrics({
    poolStats: store.poolStats?.bind(store),
    appDbFlushStats: opened.flushStats,
    // The PostgreSQL seat store has no WAL of ours: no journal flush series there.
    journalFlushStats: opened.seatStore.kind === 'sqlite' ? () => router.journalFlushStats() : undefined,
  });
  router.onBatch((journaled, commitMs) => {
    if (journaled === 0) return;
    metrics.journalBatch.observe(journaled);
    metrics.journalCommit.observe(commitMs / 1000);
  });
  const jwtKey = loadJwtKey(config.JWT_SECRET, config.dataDir);
  const tickets = TicketSigner.load(config, now);
  let cluster: ClusterMember | undefined;
  if (identity)
    cluster = await joinCluster({
      config,
      store,
      router,
      identity,
      secretsDigest: secretsDigest({ jwtKey, ticketKid: tickets.kid, clusterSecret: config.CLUSTER_SECRET }),
      logger,
      metrics,
    }).catch(async (err) => {
      await router.stop();
      await opened.close();
      dataDirLock.release();
      throw err;
    });
  const tokens = await TokenService.open(store, jwtKey, config.JWT_TTL_SECONDS, now);
  const shows = new ShowInfoCache(store, now);
  // A show row whose actor was never created (a crash between the two) gets its actor on first use.
  router.setShowResolver((showId) => {
    const info = shows.get(showId);
    return info && { showId, layoutKey: info.layoutKey, forbidSingleSeatGaps: info.forbidSingleSeatGaps };
  });
  const seatMaps = new SeatMaps(router, shows);
  await cluster?.relay(() => seatMaps.resyncAll());
  const offers = new OfferService(store, now);
  const users = new UserService(store, tokens, {
    loginMaxFailures: config.LOGIN_MAX_FAILURES,
    loginWindowSeconds: config.LOGIN_WINDOW_SECONDS,
    loginMaxBackoffSeconds: config.LOGIN_MAX_BACKOFF_SECONDS,
    loginAccountSlowdownAfter: config.LOGIN_ACCOUNT_SLOWDOWN_AFTER,
    loginAccountMaxDelaySeconds: config.LOGIN_ACCOUNT_MAX_DELAY_SECONDS,
    loginMaxFailuresPerAddress: config.LOGIN_MAX_FAILURES_PER_ADDRESS,
    hashConcurrency: config.HASH_CONCURRENCY,
    hashQueueMax: config.HASH_QUEUE_MAX,
    onHashLoad: (load) => {
      metrics.passwordHashesRunning.set(load.running);
      metrics.passwordHashesQueued.set(load.queued);
      metrics.passwordHashesPeak.set(load.peakRunning);
    },
    now,
  });
  const catalog = new CatalogService({
    store,
    actors: router,
    showChanged: async (showId) => {
      await shows.refresh(showId);
      seatMaps.forgetRendering(showId);
      // The other nodes of a cluster read it again too (nothing on SQLite: one process).
      await notify(store, SHOWS_CHANNEL, showId);
    },
    availableSeats: liveAvailability(seatMaps),
    currency: config.CURRENCY,
    now,
  });
  await prepareCatalog(config, { store, users, catalog, actors: router, offers, now, logger });
  // Every show in memory (the seed's too) before anything reads the cache synchronously.
  await shows.start();
  const showChanges = await store.subscribe(SHOWS_CHANNEL, {
    onMessage: (showId) => {
      shows
        .refresh(showId)
        .then(() => seatMaps.forgetRendering(showId))
        .catch((err) => logger.warn({ err, showId }, 'could not reload a changed show'));
    },
    // Changes may have been missed: every show is read again.
    onResync: () => void shows.start().catch((err) => logger.warn({ err }, 'could not reload the shows')),
  });
  const holds = new HoldService(router, shows, config, now);
  const payments = createPaymentProvider(config, store, now);
  const ticketDesk = new TicketDesk(store, tickets, now);
  const bookings = new BookingService({
    store,
    router,
    holds,
    shows,
    offers,
    payments: afterDurable(payments, durable),
    tickets,
    config,
    logger,
    metrics,
    now,
    // On SQLite the catalog's synchronous statement runs on the one connection, inside the cancel's
    // transaction; the catalog's conversion passes `tx` on.
    withdrawRatings: (tx, userId, showId) => catalog.withdrawUnbackedRating(userId, showId, tx),
    afterActorConfirm: options.afterActorConfirm,
  });
  // The sweeps and the reconciliation run on one node of a cluster at a time (an advisory lock).
  const sweeper = advisoryLeadership(config.DATABASE_URL, SWEEPER_LOCK_KEY);
  const reconcile = async (options?: { untouchedSince: string }) => {
    const reconciled = await bookings.reconcile(options);
    if (Object.values(reconciled).some((n) => n > 0))
      logger.info(reconciled, 'reconciled bookings a crash left unsettled');
  };
  // Bookings a crash left between the actor and the app database are settled before anyone is served.
  let isSweeper = await sweeper.isLeader();
  if (isSweeper) await reconcile();
  const onsales = new OnsaleService({
    store,
    signer: tickets,
    hasShow: (showId) => shows.get(showId) !== undefined,
    seatCounts: seatCountsOf(seatMaps),
    holdTtlSeconds: config.HOLD_TTL_SECONDS,
    admissionTtlSeconds: config.ADMISSION_TTL_SECONDS,
    leadership: admissionLeadership(config.DATABASE_URL),
    now,
    onError: (err, what) => logger.error({ err }, `${what} failed`),
  });
  await onsales.start();
  const onsaleClock = setInterval(
    () => onsales.tick().catch((err) => logger.error({ err }, 'on-sale clock failed')),
    ONSALE_TICK_MS,
  );
  onsaleClock.unref();
  const notifier = startNotifier({ store, config, logger, metrics, durable, now });
  const bookingSweep = setInterval(async () => {
    const wasSweeper = isSweeper;
    isSweeper = await sweeper.isLeader();
    if (!isSweeper) return;
    // A node that takes over the sweeps settles what the node before it may have left (it died); in a
    // cluster, bookings another node left mid-way (it died) are settled once untouched for two leases.
    const untouchedSince = new Date(now() - 2 * config.LEASE_TTL_SECONDS * 1000).toISOString();
    const reconciling = !wasSweeper ? reconcile() : identity ? reconcile({ untouchedSince }) : undefined;
    await reconciling?.catch((err) => logger.error({ err }, 'reconciliation failed'));
    // Neither rejects: each logs its own failure and the next sweep retries.
    void bookings.expireStale();
    bookings.settleStragglers().catch((err) => logger.error({ err }, 'booking settle sweep failed'));
  }, config.BOOKING_SWEEP_SECONDS * 1000);
  bookingSweep.unref();
  const deps: AppDeps = {
    config,
    store,
    logger,
    router,
    tokens,
    metrics,
    shows,
    seatMaps,
    offers,
    onsales,
    users,
    catalog,
    holds,
    payments,
    tickets,
    ticketDesk,
    bookings,
    lifecycle: { isReady: false, isDraining: false },
    cluster,
    durable,
    now,
  };
  const app = createApp(deps);
  const server = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err) => reject(listenError(config, err)));
  });
  handleConnectionErrors(server as Server, logger);
  const queueFeed = createQueueFeed(deps);
  const feed = attachSeatFeed(server as Server, deps, [queueFeed]);
  deps.lifecycle.isReady = true;
  const port = (server.address() as AddressInfo).port;
  const host = urlHost(config.HOST);
  const docs = `http://${host}:${port}/docs`;
  logger.info(
    { port, docs, dataDir: config.dataDir, workers: config.WORKERS, node: identity?.node },
    'BoxOffice is serving',
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      deps.lifecycle.isDraining = true;
      // Partitions first, while requests are still answered (forwarded to their next owners): a
      // rolling restart fails no request.
      await cluster?.leave().catch((err) => logger.error({ err }, 'leaving the cluster failed'));
      feed.close();
      queueFeed.close();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
          resolve();
        }, config.SHUTDOWN_TIMEOUT_MS);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      clearInterval(bookingSweep);
      clearInterval(onsaleClock);
      await onsales.close();
      await sweeper.close();
      await notifier.stop();
      await tokens.close();
      await showChanges.close();
      await router.stop();
      await opened.close();
      dataDirLock.release();
      logger.info('BoxOffice stopped');
    })();
    return closing;
  };
  return { url: `http://${host}:${port}`, port, deps, close };
}

/** A show's available and held seats, from its seat map (the mirror once someone looks at it). */
function seatCountsOf(seatMaps: SeatMaps) {
  return async (showId: string): Promise<{ available: number; held: number } | undefined> => {
    const view = seatMaps.mirroredSeatMapJson(showId) ?? (await seatMaps.seatMapJson(showId));
    if (!view) return undefined;
    const at = view.json.lastIndexOf('"counts":');
    const end = at < 0 ? -1 : view.json.indexOf('}', at);
    if (end < 0) return undefined;
    const counts = JSON.parse(view.json.slice(at + '"counts":'.length, end + 1)) as Record<string, unknown>;
    const available = typeof counts.available === 'number' ? counts.available : 0;
    const held = typeof counts.held === 'number' ? counts.held : 0;
    return { available, held };
  };
}
