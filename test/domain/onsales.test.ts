/**
 * The on-sale waiting room's use cases on both app stores: the opening shuffle is fair (10,000 accounts,
 * fixed seed: rank correlation with join order near zero, positions spread evenly over join deciles),
 * replayable from its stored seed, later arrivals queue behind in arrival order, admission tokens are
 * refused for another user, show or on-sale, forged, expired or used; a restart keeps every place; a
 * sell-out closes the on-sale and tells every listener.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QueueView } from '../../src/domain/onsale-queue.js';
import { QueueOrder, seededShuffle } from '../../src/domain/onsale-queue.js';
import { OnsaleService } from '../../src/domain/onsales.js';
import { countingStore, type Store } from '../../src/persistence/store.js';
import { TicketSigner } from '../../src/tickets/ticket-signer.js';
import { APP_STORES } from '../helpers/app-stores.js';

const OPENS_AT_MS = Date.UTC(2030, 2, 15, 12, 0, 0);
const SEED = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const SHOWS = new Set(['shw_1', 'shw_2', 'shw_3']);
const ACCOUNTS = 10_000;
/** Joins in flight at once: PostgreSQL's pool (10) stays busy. */
const JOIN_CONCURRENCY = 16;

async function inBatches<T>(items: readonly T[], size: number, work: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

/** Ranks 1..n of `values` (no ties here: positions and join indexes are distinct). */
function spearman(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  let sumD2 = 0;
  for (let i = 0; i < n; i++) sumD2 += (x[i]! - y[i]!) ** 2;
  return 1 - (6 * sumD2) / (n * (n * n - 1));
}

describe.each(APP_STORES)('on-sale waiting room on $name', (fixture) => {
  let store: Store;
  let nowMs: number;
  let seats: Map<string, { available: number; held: number }>;
  let signer: TicketSigner;
  const services: OnsaleService[] = [];

  const service = () => {
    const s = new OnsaleService({
      store,
      signer,
      hasShow: (id) => SHOWS.has(id),
      seatCounts: async (id) => seats.get(id),
      holdTtlSeconds: 300,
      admissionTtlSeconds: 600,
      now: () => nowMs,
      newSeed: () => SEED,
    });
    services.push(s);
    return s;
  };

  beforeEach(async () => {
    store = await fixture.open('onsales');
    nowMs = OPENS_AT_MS - 3_600_000;
    seats = new Map([...SHOWS].map((id) => [id, { available: 100, held: 0 }]));
    signer = TicketSigner.ephemeral(() => nowMs);
  });

  afterEach(async () => {
    for (const s of services.splice(0)) await s.close();
    await store.close();
  });

  async function onsale(s: OnsaleService, showIds = ['shw_1', 'shw_2'], admitPerMinute: number | null = 600) {
    const created = await s.create({ showIds, opensAt: new Date(OPENS_AT_MS).toISOString(), admitPerMinute });
    if (!created.ok) throw new Error(created.message);
    return created.onsale.id;
  }

  function positionOf(s: OnsaleService, userId: string, id: string): number {
    const polled = s.poll(userId, id);
    if (!polled.ok || polled.view.position === null) throw new Error(`no position for ${userId}`);
    return polled.view.position;
  }

  it('shuffles everyone who joined before opening independently of join order (10,000 accounts)', async () => {
    const s = service();
    const id = await onsale(s, ['shw_1'], 1);
    const users = Array.from({ length: ACCOUNTS }, (_, i) => `usr_${String(i).padStart(5, '0')}`);
    // Joined in this order, one batch after another, so join rank is known.
    await inBatches(users, JOIN_CONCURRENCY, (u) => s.join(u, id));
    expect(s.poll(users[0]!, id)).toMatchObject({ ok: true, view: { state: 'waiting', position: null } });
    nowMs = OPENS_AT_MS;
    await s.tick();
    const positions = users.map((u) => positionOf(s, u, id));
    expect(new Set(positions).size).toBe(ACCOUNTS);
    // Spearman's rho between join rank and queue position: its standard error is 1/√(n−1) ≈ 0.01.
    const joinRanks = users.map((_, i) => i + 1);
    expect(Math.abs(spearman(joinRanks, positions))).toBeLessThan(0.04);
    // Chi-square of position decile by join decile: 10×10 cells of 100 expected, 81 degrees of freedom;
    // 124.8 is the 0.1% critical value.
    const cells = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    users.forEach((_, i) => {
      cells[Math.floor(i / (ACCOUNTS / 10))]![Math.floor((positions[i]! - 1) / (ACCOUNTS / 10))]!++;
    });
    const expected = ACCOUNTS / 100;
    const chiSquare = cells.flat().reduce((sum, observed) => sum + (observed - expected) ** 2 / expected, 0);
    expect(chiSquare).toBeLessThan(124.8);
    // The audit: the stored seed over the stored arrival order replays every position.
    const row = await store.get<{ shuffle_seed: string }>('SELECT shuffle_seed FROM onsales WHERE id = ?', [
      id,
    ]);
    const arrivals = await store.all<{ user_id: string }>(
      'SELECT user_id FROM onsale_queue WHERE onsale_id = ? ORDER BY seq',
      [id],
    );
    const replayed = seededShuffle(
      arrivals.map((a) => a.user_id),
      row!.shuffle_seed,
    );
    expect(replayed.slice(0, 50).map((u) => positionOf(s, u, id))).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
  }, 120_000);

  it('queues later arrivals behind the shuffled ones, in arrival order', async () => {
    const s = service();
    const id = await onsale(s);
    for (const u of ['early_a', 'early_b', 'early_c']) await s.join(u, id);
    nowMs = OPENS_AT_MS;
    await s.tick();
    for (const u of ['late_1', 'late_2', 'late_3']) await s.join(u, id);
    expect(['late_1', 'late_2', 'late_3'].map((u) => positionOf(s, u, id))).toEqual([4, 5, 6]);
    // Joining again keeps the place.
    const again = await s.join('late_1', id);
    expect(again).toMatchObject({ ok: true, isNew: false, view: { position: 4 } });
  });

  it('admits in queue order at the named rate, with a token only that user may use on its shows', async () => {
    const s = service();
    const id = await onsale(s, ['shw_1', 'shw_2'], 120);
    const other = await onsale(s, ['shw_3'], 120);
    const users = Array.from({ length: 20 }, (_, i) => `usr_${i}`);
    for (const u of users) await s.join(u, id);
    nowMs = OPENS_AT_MS;
    await s.tick();
    nowMs += 1_000;
    await s.tick();
    // 120 a minute over one second: two admitted, the first two in the queue.
    const byPosition = [...users].sort((a, b) => positionOf(s, a, id) - positionOf(s, b, id));
    const views = byPosition.map((u) => s.poll(u, id)) as { ok: true; view: QueueView }[];
    expect(views.map((v) => v.view.state)).toEqual([
      ...Array(2).fill('admitted'),
      ...Array(18).fill('waiting'),
    ]);
    expect(views[2]!.view).toMatchObject({ position: 3, ahead: 0 });
    expect(views[19]!.view).toMatchObject({ position: 20, ahead: 17 });
    const admitted = byPosition[0]!;
    const token = views[0]!.view.admission!.token;
    expect(s.checkAdmission(admitted, 'shw_1', token)).toBeUndefined();
    expect(s.checkAdmission(admitted, 'shw_2', token)).toBeUndefined();
    const refusal = (userId: string, showId: string, t: string | undefined) =>
      s.checkAdmission(userId, showId, t)?.details?.reason;
    expect(refusal(admitted, 'shw_1', undefined)).toMatch(/Admission-Token/);
    expect(refusal(byPosition[5]!, 'shw_1', token)).toBe('the token was issued to someone else');
    expect(refusal(admitted, 'shw_3', token)).toBe('the token is for another on-sale');
    const forged = `${token.slice(0, -4)}${token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    expect(refusal(admitted, 'shw_1', forged)).toBe('invalid signature');
    // A ticket code from the same key family is not an admission.
    const ticket = signer.sign({
      bookingId: 'bkg_1',
      showId: 'shw_1',
      seats: ['A1'],
      holderName: 'A',
      userId: admitted,
      startTime: new Date(OPENS_AT_MS + 86_400_000).toISOString(),
    }).code;
    expect(refusal(admitted, 'shw_1', ticket)).toBe('not an admission token');
    // Another key altogether.
    const stranger = TicketSigner.ephemeral(() => nowMs).signAdmission({
      sub: admitted,
      ons: id,
      shows: ['shw_1'],
      iat: Math.floor(nowMs / 1000),
      exp: Math.floor(nowMs / 1000) + 600,
    });
    expect(refusal(admitted, 'shw_1', stranger)).toBe('unknown signing key');
    expect(other).not.toBe(id);
    // Expiry: past the token's lifetime it is refused and the place is over.
    nowMs += 600_000;
    expect(refusal(admitted, 'shw_1', token)).toBe('admission expired');
    expect(s.poll(admitted, id)).toMatchObject({ ok: true, view: { state: 'closed' } });
  });

  it('ends an admission at booking: the token is refused and the place does not return', async () => {
    const s = service();
    const id = await onsale(s, ['shw_1'], 60);
    await s.join('usr_a', id);
    nowMs = OPENS_AT_MS;
    await s.tick();
    nowMs += 1_000;
    await s.tick();
    const polled = s.poll('usr_a', id) as { ok: true; view: QueueView };
    const token = polled.view.admission!.token;
    expect(s.checkAdmission('usr_a', 'shw_1', token)).toBeUndefined();
    await s.endAdmission('usr_a', 'shw_1');
    expect(s.checkAdmission('usr_a', 'shw_1', token)?.code).toBe('ADMISSION_REQUIRED');
    expect(s.poll('usr_a', id)).toMatchObject({ ok: true, view: { state: 'closed' } });
    // Survives a restart too.
    const restarted = service();
    await restarted.start();
    expect(restarted.checkAdmission('usr_a', 'shw_1', token)?.code).toBe('ADMISSION_REQUIRED');
  });

  it('keeps every place, admission and the shuffle across a restart', async () => {
    const s = service();
    const id = await onsale(s, ['shw_1'], 600);
    const users = Array.from({ length: 300 }, (_, i) => `usr_${i}`);
    await inBatches(users.slice(0, 200), JOIN_CONCURRENCY, (u) => s.join(u, id));
    nowMs = OPENS_AT_MS;
    await s.tick();
    await inBatches(users.slice(200), JOIN_CONCURRENCY, (u) => s.join(u, id));
    nowMs += 3_000;
    await s.tick();
    const before = users.map((u) => s.poll(u, id));
    expect(before.filter((p) => p.ok && p.view.state === 'admitted')).toHaveLength(30);
    const restarted = service();
    await restarted.start();
    expect(users.map((u) => restarted.poll(u, id))).toEqual(before);
  });

  it('closes when the shows sell out and tells every listener at once', async () => {
    const s = service();
    const id = await onsale(s, ['shw_1', 'shw_2'], 60);
    const heard = new Map<string, QueueView[]>();
    for (const u of ['a', 'b', 'c']) {
      await s.join(u, id);
      heard.set(u, []);
      const listening = s.listen(u, id, (view) => heard.get(u)!.push(view));
      expect(listening.ok).toBe(true);
    }
    nowMs = OPENS_AT_MS;
    await s.tick();
    expect(s.checkAdmission('a', 'shw_1', undefined)?.code).toBe('ADMISSION_REQUIRED');
    // One show sold out is not the on-sale sold out; held seats may still come back.
    seats.set('shw_1', { available: 0, held: 0 });
    seats.set('shw_2', { available: 0, held: 2 });
    nowMs += 1_000;
    await s.tick();
    expect(s.get(id)).toMatchObject({ ok: true, onsale: { state: 'open' } });
    seats.set('shw_2', { available: 0, held: 0 });
    nowMs += 1_000;
    await s.tick();
    expect(s.get(id)).toMatchObject({ ok: true, onsale: { state: 'closed' } });
    for (const u of ['a', 'b', 'c']) {
      expect(heard.get(u)!.at(-1)!.state).toBe('closed');
      expect(s.poll(u, id)).toMatchObject({ ok: true, view: { state: 'closed' } });
    }
    // Holds need no admission once the on-sale is over.
    expect(s.checkAdmission('a', 'shw_1', undefined)).toBeUndefined();
    const restarted = service();
    await restarted.start();
    expect(restarted.get(id)).toMatchObject({ ok: true, onsale: { state: 'closed' } });
  });

  it('follows the seats left when no rate is named', async () => {
    const s = service();
    const id = await onsale(s, ['shw_1'], null);
    for (let i = 0; i < 100; i++) await s.join(`usr_${i}`, id);
    seats.set('shw_1', { available: 100, held: 0 });
    nowMs = OPENS_AT_MS;
    await s.tick();
    nowMs += 6_000;
    await s.tick();
    // max(1, 100 / 2) × 60 / 300 = 10 a minute: one in six seconds.
    expect(s.get(id)).toMatchObject({ ok: true, onsale: { admitted: 1 } });
    seats.set('shw_1', { available: 1000, held: 0 });
    nowMs += 6_000;
    await s.tick();
    // 100 a minute: ten more in six seconds.
    expect(s.get(id)).toMatchObject({ ok: true, onsale: { admitted: 11 } });
  });
});

describe('on-sale queue in memory', () => {
  it('answers polls and the hold check without a statement, and holds 100,000 buyers in well under 200 MB', async () => {
    const base = await APP_STORES[0]!.open('onsales-memory');
    const { store: counted, count: statements } = countingStore(base);
    let nowMs = OPENS_AT_MS - 1_000;
    const s = new OnsaleService({
      store: counted,
      signer: TicketSigner.ephemeral(() => nowMs),
      hasShow: () => true,
      seatCounts: async () => ({ available: 1_000, held: 0 }),
      holdTtlSeconds: 300,
      admissionTtlSeconds: 600,
      now: () => nowMs,
      newSeed: () => SEED,
    });
    await s.start();
    const created = await s.create({
      showIds: ['shw_1'],
      opensAt: new Date(OPENS_AT_MS).toISOString(),
      admitPerMinute: 60,
    });
    if (!created.ok) throw new Error(created.message);
    const id = created.onsale.id;
    const users = Array.from({ length: 100 }, (_, i) => `usr_${i}`);
    for (const u of users) await s.join(u, id);
    nowMs = OPENS_AT_MS;
    await s.tick();
    nowMs += 1_000;
    await s.tick();
    const before = statements();
    for (const u of users) expect(s.poll(u, id).ok).toBe(true);
    for (const u of users) s.checkAdmission(u, 'shw_1', 'x.y.z');
    expect(statements()).toBe(before);
    await s.close();
    await base.close();
    // The queue itself: 100,000 buyers, each with a place.
    const heapBefore = process.memoryUsage().heapUsed;
    const queue = new QueueOrder();
    for (let i = 0; i < 100_000; i++) queue.join(`usr_${String(i).padStart(24, '0')}`, i + 1);
    queue.open(SEED, 100_000);
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 1_048_576;
    expect(queue.waitingCount).toBe(100_000);
    expect(heapGrowthMb).toBeLessThan(200);
  });
});
