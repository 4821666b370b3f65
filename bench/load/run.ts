/**
 * @module bench/load/run
 * One load run against a running BoxOffice: set up (admin token, test users, shows), connect feed
 * subscribers if asked, warm up with seat-map reads, run the scenario's journeys through autocannon
 * until its duration, request count, sell-out or deadline, then check the run's bookings through the
 * API. Returns the report; printing is the caller's.
 */
import autocannon from 'autocannon';
import { GrantTracker } from '../http/cycles.js';
import { round } from '../http/latency.js';
import { type FeedFigures, FeedWatch, feedUrl } from './feed.js';
import {
  availableSlots,
  bookingJourneys,
  holdReleaseJourneys,
  hotShowJourneys,
  type JourneyFactory,
  journeyRequests,
  mixedJourneys,
  Purchases,
  seatMapJourneys,
  slotPool,
  userRotation,
} from './journeys.js';
import type { LoadOptions } from './options.js';
import { startProgress } from './progress.js';
import { type LatencySummary, Recorder, summarise, type TimelinePoint } from './recorder.js';
import { type HistogramBucket, histogramBuckets } from './report.js';
import { adminLogin, type LoadUser, makeUsers, pickShows, type SeatMap, TargetClient } from './target.js';
import { type SeatCheck, verifyBookings } from './verify.js';

/** autocannon's per-request timeout, seconds. */
const REQUEST_TIMEOUT_SECONDS = 10;
/** A run with a request count still stops this long after its duration. */
const DEADLINE_GRACE_SECONDS = 5;
/** Time for the last deltas to reach the subscribers after the load stops. */
const FEED_DRAIN_MS = 1_000;

export type StopReason = 'duration' | 'requests' | 'sold out' | 'out of seats' | 'deadline';

export interface LoadReport {
  scenario: string;
  url: string;
  startedAt: string;
  options: Pick<
    LoadOptions,
    'connections' | 'seconds' | 'requests' | 'rate' | 'warmupSeconds' | 'seed' | 'users' | 'mix'
  > & { shows: string[] };
  seconds: number;
  stoppedBecause: StopReason;
  requests: number;
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  statuses: Record<string, number>;
  non2xx: number;
  transportErrors: number;
  errorKinds: Record<string, number>;
  steps: Record<string, { latencyMs: LatencySummary; statuses: Record<string, number> }>;
  timeline: TimelinePoint[];
  histogram: HistogramBucket[];
  /** Hold+release: holds granted, and grants of a seat still held by an earlier grant. */
  holds?: { granted: number; grantedTwice: number };
  /** Scenarios that book: the check of the run's bookings through the API. */
  check?: SeatCheck;
  feed?: FeedFigures;
  /** What the figures cannot be read without, e.g. that the target's own limits answered most of them. */
  warnings: string[];
}

/**
 * The target's per-address hold budget (60 a minute by default) is meant for people, and the kit is one
 * address: against a deployment left at the default, nearly every hold is a 429 and the run measures
 * the limiter. Said in the report, since nothing else in it tells the operator why nothing sold.
 */
export function warningsOf(errorKinds: Readonly<Record<string, number>>): string[] {
  const limited = errorKinds['429 RATE_LIMITED'] ?? 0;
  if (limited === 0) return [];
  return [
    `${limited} responses were 429 RATE_LIMITED: the target limits holds per client address (HOLDS_PER_ADDRESS_PER_MINUTE, default 60) and this run is one address; raise it on the deployment under test, or these figures measure the limiter`,
  ];
}

const NEEDS_USERS = new Set(['hold-release', 'hot-show', 'booking', 'feed', 'mixed']);
const BOOKS = new Set(['hot-show', 'booking', 'mixed']);

interface Plan {
  start: JourneyFactory;
  tracker?: GrantTracker;
  purchases?: Purchases;
  feed?: FeedWatch;
  note?: () => string;
}

function plan(
  options: LoadOptions,
  shows: SeatMap[],
  users: LoadUser[],
  stop: (why: StopReason) => void,
): Plan {
  const nextUser = userRotation(users);
  const idle = shows[0]!.showId;
  const slots = availableSlots(shows);
  switch (options.scenario) {
    case 'seat-maps':
      return { start: seatMapJourneys(shows, options.seed) };
    case 'hold-release': {
      const tracker = new GrantTracker();
      return { start: holdReleaseJourneys(slotPool(slots), nextUser, tracker, idle), tracker };
    }
    case 'feed': {
      const tracker = new GrantTracker();
      const feed = new FeedWatch(feedUrl(options.url, idle), options.subscribers);
      const hooks = {
        changed: (slot: { seat: string }, status: 'held' | 'available', at: number) =>
          feed.stamp(slot.seat, status, at),
      };
      return { start: holdReleaseJourneys(slotPool(slots), nextUser, tracker, idle, hooks), tracker, feed };
    }
    case 'hot-show': {
      const purchases = new Purchases();
      const free = slots.length;
      return {
        start: hotShowJourneys(shows[0]!, nextUser, purchases, options.seed, () => stop('sold out')),
        purchases,
        note: () => `${purchases.grants.size}/${free} seats held or sold`,
      };
    }
    case 'booking': {
      const purchases = new Purchases();
      return {
        start: bookingJourneys(slotPool(slots), nextUser, purchases, idle, () => stop('out of seats')),
        purchases,
        note: () => `${purchases.confirmed.length} bookings`,
      };
    }
    case 'mixed': {
      // Holds and bookings take disjoint seats: a booking never collides with the kit's own holds.
      const tracker = new GrantTracker();
      const purchases = new Purchases();
      const [reads, holds, bookings] = options.mix;
      return {
        start: mixedJourneys(
          [
            [reads, seatMapJourneys(shows, options.seed)],
            [
              holds,
              holdReleaseJourneys(slotPool(slots.filter((_, i) => i % 2 === 0)), nextUser, tracker, idle),
            ],
            [
              bookings,
              bookingJourneys(
                slotPool(slots.filter((_, i) => i % 2 === 1)),
                nextUser,
                purchases,
                idle,
                () => {},
              ),
            ],
          ],
          options.seed + 1,
        ),
        tracker,
        purchases,
        note: () => `${purchases.confirmed.length} bookings`,
      };
    }
  }
}

function runAutocannon(
  options: LoadOptions,
  requests: autocannon.Request[],
  seconds: number,
  amount: number | undefined,
  recorder?: Recorder,
): { done: Promise<void>; stop(): void } {
  let instance: autocannon.Instance | undefined;
  const done = new Promise<void>((resolve, reject) => {
    instance = autocannon(
      {
        url: options.url,
        connections: amount ? Math.min(options.connections, amount) : options.connections,
        duration: seconds,
        amount,
        overallRate: options.rate,
        timeout: REQUEST_TIMEOUT_SECONDS,
        requests,
      },
      (err) => (err ? reject(err) : resolve()),
    );
    if (recorder) {
      instance.on('response', (_client, status, _bytes, ms) => recorder.response(status, ms));
      instance.on('reqError', (err) => recorder.transportError(err));
    }
  });
  return { done, stop: () => instance?.stop() };
}

async function setUp(client: TargetClient, options: LoadOptions) {
  const needsAdmin = NEEDS_USERS.has(options.scenario) || options.createShows > 0;
  const adminToken = needsAdmin ? await adminLogin(client, options) : undefined;
  const wanted = options.scenario === 'hot-show' || options.scenario === 'feed' ? 1 : options.shows;
  const shows = await pickShows(client, options, wanted, adminToken);
  const users =
    NEEDS_USERS.has(options.scenario) && adminToken ? await makeUsers(client, adminToken, options.users) : [];
  return { shows, users };
}

export async function runLoadTest(
  options: LoadOptions,
  log: (line: string) => void = () => {},
): Promise<LoadReport> {
  const client = new TargetClient(options.url);
  const { shows, users } = await setUp(client, options);
  log(`${options.scenario} on ${options.url}: ${shows.length} show(s), ${users.length} test users`);
  let stoppedBecause: StopReason = options.requests ? 'requests' : 'duration';
  let stopLoad = () => {};
  let isStopped = false;
  const stop = (why: StopReason) => {
    if (isStopped) return;
    isStopped = true;
    stoppedBecause = why;
    stopLoad();
  };
  const recorder = new Recorder();
  const scenario = plan(options, shows, users, stop);
  if (scenario.feed) {
    await scenario.feed.connect();
    log(`feed: ${scenario.feed.connected}/${options.subscribers} subscribers connected`);
  }
  try {
    if (options.warmupSeconds > 0) {
      const warm = journeyRequests(seatMapJourneys(shows, options.seed), new Recorder());
      await runAutocannon(options, warm, options.warmupSeconds, undefined).done;
    }
    const startedAt = new Date().toISOString();
    recorder.start();
    const hideProgress = options.isProgressShown
      ? startProgress(recorder, { seconds: options.seconds, requests: options.requests, note: scenario.note })
      : () => {};
    const load = runAutocannon(
      options,
      journeyRequests(scenario.start, recorder),
      options.seconds,
      options.requests,
      recorder,
    );
    stopLoad = load.stop;
    const deadline = setTimeout(() => stop('deadline'), (options.seconds + DEADLINE_GRACE_SECONDS) * 1000);
    try {
      await load.done;
    } finally {
      clearTimeout(deadline);
      hideProgress();
    }
    const seconds = recorder.elapsedSeconds;
    if (scenario.feed) await new Promise((resolve) => setTimeout(resolve, FEED_DRAIN_MS));
    const check =
      scenario.purchases && BOOKS.has(options.scenario)
        ? await verifyBookings(client, scenario.purchases.confirmed, scenario.purchases.grants)
        : undefined;
    return {
      scenario: options.scenario,
      url: options.url,
      startedAt,
      options: {
        connections: options.connections,
        seconds: options.seconds,
        requests: options.requests,
        rate: options.rate,
        warmupSeconds: options.warmupSeconds,
        seed: options.seed,
        users: users.length,
        mix: options.mix,
        shows: shows.map((s) => s.showId),
      },
      seconds: round(seconds, 2),
      stoppedBecause,
      requests: recorder.responses,
      requestsPerSecond: Math.round(recorder.responses / Math.max(0.001, seconds)),
      latencyMs: summarise(recorder.latencies),
      statuses: recorder.statuses,
      non2xx: recorder.non2xx,
      transportErrors: recorder.transportErrors,
      errorKinds: recorder.errorKinds,
      steps: Object.fromEntries(
        [...recorder.steps].map(([kind, s]) => [
          kind,
          { latencyMs: summarise(s.latencies), statuses: s.statuses },
        ]),
      ),
      timeline: recorder.timeline(),
      histogram: histogramBuckets(recorder.latencies.entries()),
      holds: scenario.tracker
        ? { granted: scenario.tracker.grants, grantedTwice: scenario.tracker.doubleGrants }
        : undefined,
      check,
      feed: scenario.feed?.figures(),
      warnings: warningsOf(recorder.errorKinds),
    };
  } finally {
    scenario.feed?.close();
  }
}
