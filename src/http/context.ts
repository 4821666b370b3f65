/**
 * @module context
 * What every route module receives (the composition root builds it) and the per-request variables.
 */

import type { ShardRouter } from '../actors/shard-router.js';
import type { ClusterMember } from '../cluster/node.js';
import type { Config } from '../config.js';
import type { AuthUser, TokenService } from '../domain/auth-tokens.js';
import type { BookingService } from '../domain/bookings.js';
import type { CatalogService } from '../domain/catalog.js';
import type { HoldService } from '../domain/holds.js';
import type { OfferService } from '../domain/offers.js';
import type { OnsaleService } from '../domain/onsales.js';
import type { SeatMaps } from '../domain/seat-maps.js';
import type { ShowInfoCache } from '../domain/show-info.js';
import type { TicketDesk } from '../domain/ticket-desk.js';
import type { UserService } from '../domain/users.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { PaymentProvider } from '../payments/payment-provider.js';
import type { Store } from '../persistence/store.js';
import type { TicketSigner } from '../tickets/ticket-signer.js';

export interface Lifecycle {
  /** Every partition recovered and the app database migrated. */
  isReady: boolean;
  /** SIGTERM received: new work is refused while in-flight requests finish. */
  isDraining: boolean;
}

export interface AppDeps {
  config: Config;
  /** The domain's database seam (SQLite or PostgreSQL). */
  store: Store;
  logger: Logger;
  router: ShardRouter;
  tokens: TokenService;
  metrics: Metrics;
  shows: ShowInfoCache;
  seatMaps: SeatMaps;
  holds: HoldService;
  offers: OfferService;
  /** The on-sale waiting room: queues, the admission clock, and the hold path's admission check. */
  onsales: OnsaleService;
  payments: PaymentProvider;
  tickets: TicketSigner;
  ticketDesk: TicketDesk;
  bookings: BookingService;
  users: UserService;
  catalog: CatalogService;
  lifecycle: Lifecycle;
  /** This node's part in a cluster (with DATABASE_URL): identity, leases. */
  cluster?: ClusterMember;
  /**
   * Resolves once every app-database commit made before the call is on stable storage (group commit).
   * Answers that report a change wait for it; so does every external side effect.
   */
  durable: () => Promise<void>;
  /** The clock, injectable for tests; the actor never reads it, commands carry its value. */
  now: () => number;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    user: AuthUser;
  };
}
