/**
 * @module demo-seed
 * The demo catalog seeded on first start (SEED_DEMO): Indian cities, movies in several languages and
 * genres, theaters with realistic screens, a week of shows, viewer ratings and public offers. A seeded
 * PRNG makes it the same catalog every time; only show dates follow the clock.
 */
import { type RowLayout, rowLabel, type SeatLayout } from '../actors/seat-layout.js';
import type { Config } from '../config.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { AppDb } from '../persistence/app-db.js';
import type { CatalogService, ShowActors } from './catalog.js';
import type { OfferService } from './offers.js';
import type { UserService } from './users.js';

export interface DemoSeedDeps {
  db: AppDb;
  catalog: CatalogService;
  actors: ShowActors;
  offers: Pick<OfferService, 'create'>;
  now: () => number;
  logger?: Logger;
}

export interface SeedSummary {
  cities: number;
  movies: number;
  theaters: number;
  screens: number;
  shows: number;
  offers: number;
}

export const DEMO_DAYS = 7;
/** Actor creations in flight at once: the router batches them, this bounds the batch. */
export const ACTOR_CREATION_CHUNK = 200;
const SEED = 20_240_601;

/** mulberry32: tiny, fast and good enough to pick demo data reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Random = () => number;
const between = (rand: Random, min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
const pick = <T>(rand: Random, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

const CITIES: readonly { name: string; language: string; localities: string[]; priceTier: number }[] = [
  {
    name: 'Mumbai',
    language: 'Marathi',
    localities: ['Lower Parel', 'Andheri West', 'Powai', 'Bandra', 'Thane'],
    priceTier: 3,
  },
  {
    name: 'Delhi',
    language: 'Hindi',
    localities: ['Saket', 'Connaught Place', 'Vasant Kunj', 'Rajouri Garden', 'Nehru Place'],
    priceTier: 3,
  },
  {
    name: 'Bengaluru',
    language: 'Kannada',
    localities: ['Koramangala', 'Whitefield', 'Indiranagar', 'Malleshwaram', 'JP Nagar'],
    priceTier: 3,
  },
  {
    name: 'Chennai',
    language: 'Tamil',
    localities: ['Vadapalani', 'Velachery', 'Anna Nagar', 'T Nagar', 'OMR'],
    priceTier: 2,
  },
  {
    name: 'Hyderabad',
    language: 'Telugu',
    localities: ['Banjara Hills', 'Gachibowli', 'Kukatpally', 'Ameerpet', 'Hitech City'],
    priceTier: 2,
  },
  {
    name: 'Kolkata',
    language: 'Bengali',
    localities: ['Salt Lake', 'Park Street', 'Howrah', 'New Town', 'Ballygunge'],
    priceTier: 1,
  },
];

const CHAINS = ['PVR', 'INOX', 'Cinepolis', 'Miraj', 'Carnival'] as const;

/** title, language, genres, certificate, minutes, intended rating, release date. */
type DemoMovie = [string, string, string, string, number, number, string];
const MOVIE_TABLE: readonly DemoMovie[] = [
  ['Monsoon Express', 'Hindi', 'Action,Thriller', 'UA', 152, 7.8, '2025-06-06'],
  ['Chai and Chaos', 'Hindi', 'Comedy,Family', 'U', 128, 7.1, '2025-05-23'],
  ['The Last Dabbawala', 'Hindi', 'Drama', 'U', 141, 8.4, '2025-04-18'],
  ['Dilli Nights', 'Hindi', 'Romance,Drama', 'UA', 136, 6.6, '2025-06-13'],
  ['Border Line', 'Hindi', 'Action,War', 'UA', 168, 7.4, '2025-01-24'],
  ['Orbit of Silence', 'English', 'Sci-Fi,Thriller', 'UA', 146, 8.1, '2025-05-30'],
  ['Paper Kingdoms', 'English', 'Animation,Family,Adventure', 'U', 102, 7.6, '2025-06-20'],
  ['The Quiet Heist', 'English', 'Crime,Thriller', 'A', 124, 7.2, '2025-03-14'],
  ['Hollow Pines', 'English', 'Horror', 'A', 98, 6.1, '2025-06-27'],
  ['Vetri Maaran', 'Tamil', 'Action,Drama', 'UA', 165, 8.3, '2025-04-11'],
  ['Kadal Kaatru', 'Tamil', 'Romance,Musical', 'U', 139, 7.0, '2025-05-16'],
  ['Rudra Garjana', 'Telugu', 'Action,Fantasy', 'UA', 172, 7.9, '2025-01-10'],
  ['Pelli Sandadi Returns', 'Telugu', 'Comedy,Romance', 'U', 133, 6.8, '2025-06-06'],
  ['Kaayal', 'Malayalam', 'Drama,Mystery', 'UA', 127, 8.6, '2025-03-28'],
  ['Njan Oru Detective', 'Malayalam', 'Comedy,Crime', 'U', 118, 7.7, '2025-05-09'],
  ['Kaveri Teera', 'Kannada', 'Drama,Family', 'U', 144, 7.5, '2025-02-21'],
  ['Garuda Kannu', 'Kannada', 'Action,Thriller', 'UA', 158, 7.3, '2025-06-13'],
  ['Kolkatar Rong', 'Bengali', 'Drama,Romance', 'U', 131, 7.9, '2025-04-25'],
  ['Byomkesh Phire Elo', 'Bengali', 'Mystery,Crime', 'UA', 137, 8.0, '2025-05-02'],
  ['Wada Chirebandi', 'Marathi', 'Drama,Comedy', 'U', 142, 7.7, '2025-03-07'],
  ['Shivneri', 'Marathi', 'History,Action', 'UA', 161, 8.2, '2025-02-14'],
  ['Galaxy Cricket Club', 'English', 'Sci-Fi,Comedy,Sport', 'U', 112, 6.9, '2025-06-27'],
];

const MOVIES = MOVIE_TABLE.map(
  ([title, language, genres, certificate, durationMin, rating, releaseDate]) => ({
    title,
    language,
    genres: genres.split(','),
    certificate,
    durationMin,
    rating,
    releaseDate,
  }),
);

/** Show start times as minutes after midnight IST; consecutive slots are far enough apart for any movie. */
const SLOTS_IST_MINUTES = [10 * 60, 13 * 60 + 45, 17 * 60 + 30, 21 * 60 + 15];
const IST_OFFSET_MINUTES = 330;
/** Demo viewers whose ratings give the movies their scores; their password hash can never match. */
const DEMO_VIEWERS = 24;
const LOCKED_PASSWORD = '!locked';

/** Seeds the demo catalog when there are no movies yet; a no-op otherwise. */
export async function seedDemo(deps: DemoSeedDeps): Promise<SeedSummary | undefined> {
  const movieCount = deps.db.prepare('SELECT COUNT(*) FROM movies').pluck().get() as number;
  if (movieCount > 0) return undefined;
  const rand = prng(SEED);
  const started = Date.now();
  const { summary, specs } = deps.db.transaction(() => writeCatalog(deps, rand))();
  for (let i = 0; i < specs.length; i += ACTOR_CREATION_CHUNK) {
    // A refusal here is not fatal: the router creates a missing actor from its row on first use.
    const results = await Promise.all(
      specs.slice(i, i + ACTOR_CREATION_CHUNK).map((s) => deps.actors.createShow(s)),
    );
    const refused = results.filter((r) => !r.ok).length;
    if (refused > 0) deps.logger?.warn({ refused }, 'demo seed: some show actors were not created up front');
  }
  summary.offers = await seedOffers(deps);
  deps.logger?.info({ ...summary, ms: Date.now() - started }, 'demo catalog seeded');
  return summary;
}

type ShowSpec = { showId: string; layoutKey: string; forbidSingleSeatGaps: boolean };

function writeCatalog(deps: DemoSeedDeps, rand: Random): { summary: SeedSummary; specs: ShowSpec[] } {
  const { catalog } = deps;
  const movies = MOVIES.map((m) => ({
    spec: m,
    id: catalog.createMovie({ ...m, description: describe(m.title, m.genres) }).movie.id,
  }));
  seedRatings(deps, movies, rand);
  const specs: ShowSpec[] = [];
  let theaters = 0;
  let screens = 0;
  for (const city of CITIES) {
    const pool = movies.filter(
      (m) => ['Hindi', 'English', city.language].includes(m.spec.language) || rand() < 0.15,
    );
    for (const [t, locality] of city.localities.entries()) {
      const chain = CHAINS[t % CHAINS.length]!;
      // Every demo city is in India: named rather than left to the default, so the seed says so.
      const added = catalog.createTheater({
        name: `${chain} ${locality}`,
        city: city.name,
        address: `${between(rand, 1, 220)}, ${locality}, ${city.name}`,
        timeZone: 'Asia/Kolkata',
      });
      if (!added.ok) throw new Error(`demo theater refused: ${added.message}`);
      const { theater } = added;
      theaters++;
      const screenCount = rand() < 0.4 ? 3 : 2;
      for (let s = 0; s < screenCount; s++) {
        const layout = demoLayout(rand);
        const created = catalog.createScreen(
          theater.id,
          s === 0 && rand() < 0.3 ? 'IMAX' : `Audi ${s + 1}`,
          layout,
        );
        if (!created.ok) throw new Error(`demo layout refused: ${created.message}`);
        screens++;
        specs.push(...scheduleScreen(deps, created.screen, pool, city.priceTier, rand));
      }
    }
  }
  return {
    summary: {
      cities: CITIES.length,
      movies: movies.length,
      theaters,
      screens,
      shows: specs.length,
      offers: 0,
    },
    specs,
  };
}

function describe(title: string, genres: string[]): string {
  return `${title}: a ${genres.map((g) => g.toLowerCase()).join(' and ')} feature, part of the BoxOffice demo catalog.`;
}

/**
 * 150 to 400 seats: cheaper rows near the screen, a premium middle, and on most screens two rows of
 * wider recliners at the back (fewer seats, centred); aisles split the long rows.
 */
export function demoLayout(rand: Random): SeatLayout {
  for (let attempt = 0; attempt < 50; attempt++) {
    const rowCount = between(rand, 10, 16);
    const perRow = Math.min(26, Math.max(14, Math.round(between(rand, 170, 380) / rowCount)));
    const hasRecliners = rand() < 0.6;
    const reclinerRows = hasRecliners ? 2 : 0;
    const reclinerSeats = Math.round(perRow * 0.6);
    const total = (rowCount - reclinerRows) * perRow + reclinerRows * reclinerSeats;
    if (total < 150 || total > 400) continue;
    const classicRows = Math.max(2, Math.round(rowCount * 0.3));
    const aisles = [Math.floor(perRow / 4), perRow - Math.floor(perRow / 4)];
    const rows: RowLayout[] = [];
    for (let r = 0; r < rowCount; r++) {
      const isRecliner = r >= rowCount - reclinerRows;
      rows.push(
        isRecliner
          ? {
              label: rowLabel(r),
              category: 'RECLINER',
              seats: reclinerSeats,
              aislesAfter: [Math.floor(reclinerSeats / 2)],
              offset: Math.floor((perRow - reclinerSeats) / 2),
            }
          : {
              label: rowLabel(r),
              category: r < classicRows ? 'CLASSIC' : 'PRIME',
              seats: perRow,
              aislesAfter: aisles,
            },
      );
    }
    return { rows };
  }
  throw new Error('demo seed: no layout within 150 to 400 seats after 50 attempts');
}

function scheduleScreen(
  deps: DemoSeedDeps,
  screen: { id: string; name: string; categories: string[] },
  pool: { id: string; spec: { genres: string[] } }[],
  priceTier: number,
  rand: Random,
): ShowSpec[] {
  const prices = demoPrices(screen.categories, priceTier, rand);
  const firstSlot = between(rand, 0, 1);
  const isGapFree = rand() < 0.3;
  const nowMs = deps.now();
  const today = Date.UTC(
    new Date(nowMs).getUTCFullYear(),
    new Date(nowMs).getUTCMonth(),
    new Date(nowMs).getUTCDate(),
  );
  const specs: ShowSpec[] = [];
  for (let day = 0; day < DEMO_DAYS; day++) {
    for (const slot of SLOTS_IST_MINUTES.slice(firstSlot, firstSlot + 3)) {
      const movie = pick(rand, pool);
      const startMs = today + day * 86_400_000 + (slot - IST_OFFSET_MINUTES) * 60_000;
      if (startMs <= nowMs + 15 * 60_000) continue;
      const isAnimated = movie.spec.genres.some((g) => g === 'Animation' || g === 'Sci-Fi');
      const inserted = deps.catalog.insertShow({
        movieId: movie.id,
        screenId: screen.id,
        startTime: new Date(startMs).toISOString(),
        prices,
        format: screen.name === 'IMAX' ? 'IMAX' : isAnimated && rand() < 0.5 ? '3D' : '2D',
        forbidSingleSeatGaps: isGapFree,
      });
      if (!inserted.ok) throw new Error(`demo show refused: ${inserted.message}`);
      specs.push(inserted.spec);
    }
  }
  return specs;
}

/** Prices in minor units, rounded to ten rupees; metros cost more. */
function demoPrices(categories: string[], priceTier: number, rand: Random): Record<string, number> {
  const classic = (120 + priceTier * 40 + between(rand, 0, 6) * 10) * 100;
  const byCategory: Record<string, number> = {
    CLASSIC: classic,
    PRIME: classic + (80 + between(rand, 0, 4) * 10) * 100,
    RECLINER: classic + (300 + between(rand, 0, 10) * 10) * 100,
  };
  return Object.fromEntries(categories.map((c) => [c, byCategory[c] ?? classic]));
}

/** Demo viewers rate each movie around its intended score, so ratings recompute consistently later. */
function seedRatings(
  deps: DemoSeedDeps,
  movies: { id: string; spec: { rating: number } }[],
  rand: Random,
): void {
  const nowIso = new Date(deps.now()).toISOString();
  const insertUser = deps.db.prepare(
    `INSERT INTO users (id, name, email, phone, password_hash, role, created_at, updated_at)
     VALUES (?, ?, ?, NULL, ?, 'user', ?, ?)`,
  );
  const viewers = Array.from({ length: DEMO_VIEWERS }, (_, i) => {
    const id = newId('usr');
    insertUser.run(
      id,
      `Demo Viewer ${i + 1}`,
      `viewer${i + 1}@demo.boxoffice.local`,
      LOCKED_PASSWORD,
      nowIso,
      nowIso,
    );
    return id;
  });
  const insertRating = deps.db.prepare(
    'INSERT INTO ratings (user_id, movie_id, score, created_at) VALUES (?, ?, ?, ?)',
  );
  for (const movie of movies) {
    const voters = viewers.slice(0, between(rand, 8, DEMO_VIEWERS));
    for (const viewer of voters) {
      const score = Math.min(10, Math.max(1, Math.round(movie.spec.rating + (rand() - 0.5) * 3)));
      insertRating.run(viewer, movie.id, score, nowIso);
    }
  }
  deps.catalog.recomputeAllRatings();
}

async function seedOffers(deps: DemoSeedDeps): Promise<number> {
  const nowMs = deps.now();
  const validFrom = new Date(nowMs - 86_400_000).toISOString();
  const validUntil = new Date(nowMs + 365 * 86_400_000).toISOString();
  const common = { validFrom, validUntil, scope: {}, isPublic: true, isActive: true, totalLimit: null };
  const offers = await Promise.all([
    deps.offers.create({
      ...common,
      code: 'FIRSTSHOW',
      description: '20% off your booking, up to ₹150',
      kind: 'percent',
      value: 20,
      maxDiscount: 15_000,
      minAmount: 20_000,
      perUserLimit: 1,
    }),
    deps.offers.create({
      ...common,
      code: 'WEEKEND100',
      description: '₹100 off weekend shows on orders of ₹500 or more',
      kind: 'flat',
      value: 10_000,
      minAmount: 50_000,
      perUserLimit: 3,
      scope: { daysOfWeek: [0, 6] },
    }),
  ]);
  return offers.filter((o) => o.ok).length;
}

/** At start: the admin account from the environment, then the demo catalog when asked and empty. */
export async function prepareCatalog(
  config: Pick<Config, 'ADMIN_EMAIL' | 'ADMIN_PASSWORD' | 'SEED_DEMO'>,
  deps: DemoSeedDeps & { users: Pick<UserService, 'ensureAdmin'> },
): Promise<void> {
  if (config.ADMIN_EMAIL && config.ADMIN_PASSWORD)
    await deps.users.ensureAdmin(config.ADMIN_EMAIL, config.ADMIN_PASSWORD);
  else if (config.ADMIN_EMAIL || config.ADMIN_PASSWORD)
    deps.logger?.warn(
      'ADMIN_EMAIL and ADMIN_PASSWORD are both needed to create the admin account; none was created',
    );
  if (config.SEED_DEMO) await seedDemo(deps);
}
