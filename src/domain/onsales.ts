/**
 * @module onsales
 * The on-sale waiting room's use cases: admin CRUD, joining and polling a queue, the admission clock
 * (opening with a seeded shuffle, admitting at a rate, closing when the shows sell out), and the hold
 * path's admission check. Queues live in memory (`QueueOrder`), loaded from the store at start, so a poll
 * and the hold check never read the database; every change is written before memory moves.
 */
import { randomBytes } from 'node:crypto';
import { newId } from '../ids.js';
import type { AdmissionLeadership } from '../persistence/admission-leader.js';
import { notify, type Store, type Subscription } from '../persistence/store.js';
import type { AdmissionCheck, AdmissionClaims } from '../tickets/ticket-signer.js';
import { type Failure, failure } from './failure.js';
import {
  admissionsDue,
  automaticAdmitPerMinute,
  type OnsaleState,
  QueueOrder,
  type QueueRow,
  type QueueView,
  viewOf,
} from './onsale-queue.js';

/** Most shows one on-sale may cover (all shows of a movie in a city fit). */
export const MAX_SHOWS_PER_ONSALE = 200;
/** Most on-sales kept in memory (each with its queue); creation past it is refused. */
export const MAX_ONSALES = 1_000;
/** Most buyers one on-sale's queue takes; one more is refused (OVERLOADED). */
export const MAX_QUEUE_LENGTH = 2_000_000;
/** The channel nodes sharing a PostgreSQL database tell each other queue changes on. */
export const ONSALES_CHANNEL = 'boxoffice_onsales';
/** Admitted ids per notification: PostgreSQL's payload limit is 8000 bytes. */
const ADMITTED_IDS_PER_NOTICE = 100;

/**
 * A change another node made, applied to this node's memory (each is idempotent: a node hears its own
 * too). `j` a join, `a` admissions in order, `e` an admission ended, `r` reload the on-sale (created,
 * changed, opened, closed or deleted) from the store.
 */
type Notice =
  | { k: 'j'; o: string; u: string; s: number }
  | { k: 'a'; o: string; u: string[]; at: number; exp: number }
  | { k: 'e'; o: string; u: string }
  | { k: 'r'; o: string };

/** Most listeners (WebSocket feeds) per on-sale. */
export const MAX_LISTENERS_PER_ONSALE = 200_000;

export interface Onsale {
  id: string;
  showIds: string[];
  opensAt: string;
  admitPerMinute: number | null;
  state: OnsaleState;
  /** Set at opening: with the queue rows it replays the shuffle (an audit's input). */
  shuffleSeed: string | null;
  openedAt: string | null;
  closedAt: string | null;
  waiting: number;
  admitted: number;
  createdAt: string;
  updatedAt: string;
}

/** The signer's two admission methods (the ticket key family). */
export interface AdmissionSigner {
  signAdmission(claims: AdmissionClaims): string;
  verifyAdmission(token: string, nowMs: number): AdmissionCheck;
}

// Defined beside its PostgreSQL implementation: persistence must not import the domain (layering).
export type { AdmissionLeadership };

export interface OnsaleDeps {
  store: Store;
  signer: AdmissionSigner;
  /** Whether a show exists (the catalog's cache). */
  hasShow: (showId: string) => boolean;
  /** Live seat counts of a show (the seat-map mirror); undefined for an unknown show. */
  seatCounts: (showId: string) => Promise<{ available: number; held: number } | undefined>;
  holdTtlSeconds: number;
  admissionTtlSeconds: number;
  leadership?: AdmissionLeadership;
  now: () => number;
  /** The shuffle's seed at opening (hex); random by default, fixed in tests that replay it. */
  newSeed?: () => string;
  onError?: (err: unknown, what: string) => void;
}

export type QueueListener = (view: QueueView) => void;

interface Entry {
  id: string;
  showIds: string[];
  opensAtMs: number;
  admitPerMinute: number | null;
  state: OnsaleState;
  seed: string | null;
  openedAt: string | null;
  closedAt: string | null;
  createdAt: string;
  updatedAt: string;
  queue: QueueOrder;
  /** Fractional admissions carried between ticks, and when the last tick ran. */
  credit: number;
  lastTickMs: number | undefined;
  /** The rate in force (named, or computed from the seats left at the last tick). */
  ratePerMinute: number;
  /** Joins between their insert and their place in memory: opening waits for them. */
  joinsInFlight: number;
  drained: (() => void) | undefined;
  opening: Promise<void> | undefined;
  listeners: Map<string, Set<QueueListener>>;
  listenerCount: number;
}

interface OnsaleRow {
  id: string;
  show_ids: string;
  opens_at: string;
  admit_per_minute: number | null;
  state: OnsaleState;
  shuffle_seed: string | null;
  shuffled_through_seq: number | null;
  opened_at: string | null;
  closed_at: string | null;
  created_at: string;
  updated_at: string;
}

interface QueueDbRow {
  user_id: string;
  seq: number;
  shuffled: number;
  admitted_at: string | null;
  admission_expires_at: string | null;
  ended_at: string | null;
}

export interface CreateOnsaleInput {
  showIds: string[];
  opensAt: string;
  admitPerMinute?: number | null;
}

export interface UpdateOnsaleInput {
  opensAt?: string;
  admitPerMinute?: number | null;
}

const ALWAYS_LEADER: AdmissionLeadership = { isLeader: async () => true, close: async () => {} };

export class OnsaleService {
  readonly #entries = new Map<string, Entry>();
  /** Shows under an on-sale that is not closed: the hold path's one lookup. */
  readonly #activeByShow = new Map<string, Entry>();
  readonly #leadership: AdmissionLeadership;
  #subscription: Subscription | undefined;
  #runningTick: Promise<void> | undefined;
  #queuedTick: Promise<void> | undefined;

  constructor(private readonly d: OnsaleDeps) {
    this.#leadership = d.leadership ?? ALWAYS_LEADER;
  }

  /** Loads every on-sale and its queue; a restart neither loses nor reorders anyone. */
  async start(): Promise<void> {
    // Subscribed before loading, so no change made meanwhile is missed (applying one twice is harmless).
    this.#subscription = await this.d.store.subscribe(ONSALES_CHANNEL, {
      onMessage: (payload) => {
        this.#apply(payload).catch((err) => this.d.onError?.(err, 'on-sale notice'));
      },
      onResync: () => {
        this.#reloadAll().catch((err) => this.d.onError?.(err, 'on-sale reload'));
      },
    });
    await this.#reloadAll();
  }

  async close(): Promise<void> {
    await this.#subscription?.close();
    await this.#leadership.close();
  }

  async #reloadAll(): Promise<void> {
    const rows = await this.d.store.all<{ id: string }>('SELECT id FROM onsales ORDER BY created_at, id');
    const ids = new Set(rows.map((r) => r.id));
    for (const id of [...this.#entries.keys()]) if (!ids.has(id)) await this.#reload(id);
    for (const row of rows) await this.#reload(row.id);
  }

  /** Replaces what memory holds of one on-sale by what the store says (listeners and credit stay). */
  async #reload(id: string): Promise<void> {
    const row = await this.d.store.get<OnsaleRow>('SELECT * FROM onsales WHERE id = ?', [id]);
    const known = this.#entries.get(id);
    if (!row) {
      if (known) this.#forget(known);
      return;
    }
    const queue = QueueOrder.fromRows(
      (await this.#queueRows(id)).map(queueRowOf),
      row.shuffle_seed ?? undefined,
    );
    const fresh = entryOf(row, queue);
    if (!known) {
      this.#put(fresh);
      return;
    }
    for (const showId of known.showIds)
      if (this.#activeByShow.get(showId) === known) this.#activeByShow.delete(showId);
    Object.assign(known, {
      ...fresh,
      credit: known.credit,
      lastTickMs: known.lastTickMs,
      ratePerMinute: fresh.admitPerMinute ?? known.ratePerMinute,
      joinsInFlight: known.joinsInFlight,
      drained: known.drained,
      opening: known.opening,
      listeners: known.listeners,
      listenerCount: known.listenerCount,
    });
    this.#put(known);
    this.#broadcast(known);
  }

  #queueRows(id: string): Promise<QueueDbRow[]> {
    return this.d.store.all<QueueDbRow>(
      `SELECT user_id, seq, shuffled, admitted_at, admission_expires_at, ended_at FROM onsale_queue
       WHERE onsale_id = ? ORDER BY seq`,
      [id],
    );
  }

  async #tell(notice: Notice): Promise<void> {
    await notify(this.d.store, ONSALES_CHANNEL, JSON.stringify(notice));
  }

  async #apply(payload: string): Promise<void> {
    const notice = JSON.parse(payload) as Notice;
    const entry = this.#entries.get(notice.o);
    if (notice.k === 'r' || !entry) return this.#reload(notice.o);
    if (notice.k === 'j') {
      if (entry.queue.has(notice.u)) return;
      entry.queue.join(notice.u, notice.s);
      this.#broadcast(entry, notice.u);
    } else if (notice.k === 'e') {
      entry.queue.end(notice.u);
      this.#push(entry, notice.u);
    } else {
      const next = notice.u.filter((u) => !entry.queue.admissionOf(u));
      // Admissions follow the order; one that does not means this node missed something: reload.
      if (next.join('\n') !== entry.queue.nextWaiting(next.length).join('\n')) return this.#reload(entry.id);
      entry.queue.admit(next, notice.at, notice.exp);
      this.#broadcast(entry);
    }
  }

  #forget(entry: Entry): void {
    this.#entries.delete(entry.id);
    for (const showId of entry.showIds)
      if (this.#activeByShow.get(showId) === entry) this.#activeByShow.delete(showId);
    for (const [, set] of entry.listeners) for (const listener of set) listener(closedView());
    entry.listeners.clear();
  }

  // ---- admin ----

  async create(input: CreateOnsaleInput): Promise<{ ok: true; onsale: Onsale } | Failure> {
    const checked = this.#checkShows(input.showIds, undefined);
    if (checked) return checked;
    if (this.#entries.size >= MAX_ONSALES)
      return failure('RULE_VIOLATION', `at most ${MAX_ONSALES} on-sales are kept; delete old ones first`);
    const at = new Date(this.d.now()).toISOString();
    const showIds = [...new Set(input.showIds)];
    const row: OnsaleRow = {
      id: newId('ons'),
      show_ids: JSON.stringify(showIds),
      opens_at: new Date(Date.parse(input.opensAt)).toISOString(),
      admit_per_minute: input.admitPerMinute ?? null,
      state: 'scheduled',
      shuffle_seed: null,
      shuffled_through_seq: null,
      opened_at: null,
      closed_at: null,
      created_at: at,
      updated_at: at,
    };
    await this.d.store.run(
      `INSERT INTO onsales (id, show_ids, opens_at, admit_per_minute, state, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'scheduled', ?, ?)`,
      [row.id, row.show_ids, row.opens_at, row.admit_per_minute, at, at],
    );
    const entry = entryOf(row, new QueueOrder());
    this.#put(entry);
    await this.#tell({ k: 'r', o: entry.id });
    return { ok: true, onsale: publicOnsale(entry) };
  }

  get(id: string): { ok: true; onsale: Onsale } | Failure {
    const entry = this.#entries.get(id);
    return entry ? { ok: true, onsale: publicOnsale(entry) } : notFound(id);
  }

  /** The opening time moves only before opening; the rate may change at any time before closing. */
  async update(id: string, patch: UpdateOnsaleInput): Promise<{ ok: true; onsale: Onsale } | Failure> {
    const entry = this.#entries.get(id);
    if (!entry) return notFound(id);
    if (patch.opensAt !== undefined && entry.state !== 'scheduled')
      return failure('INVALID_STATE', 'the on-sale has opened: its opening time is history', {
        state: entry.state,
      });
    if (entry.state === 'closed')
      return failure('INVALID_STATE', 'the on-sale is closed', { state: 'closed' });
    const opensAtMs = patch.opensAt !== undefined ? Date.parse(patch.opensAt) : entry.opensAtMs;
    const rate = patch.admitPerMinute !== undefined ? patch.admitPerMinute : entry.admitPerMinute;
    const at = new Date(this.d.now()).toISOString();
    await this.d.store.run(
      'UPDATE onsales SET opens_at = ?, admit_per_minute = ?, updated_at = ? WHERE id = ?',
      [new Date(opensAtMs).toISOString(), rate, at, id],
    );
    entry.opensAtMs = opensAtMs;
    entry.admitPerMinute = rate;
    entry.updatedAt = at;
    if (rate !== null) entry.ratePerMinute = rate;
    this.#broadcast(entry);
    await this.#tell({ k: 'r', o: id });
    return { ok: true, onsale: publicOnsale(entry) };
  }

  /** Takes the on-sale down: its shows are open to every hold again, its queue is forgotten. */
  async remove(id: string): Promise<{ ok: true } | Failure> {
    const entry = this.#entries.get(id);
    if (!entry) return notFound(id);
    await this.d.store.transaction(async (tx) => {
      await tx.run('DELETE FROM onsale_queue WHERE onsale_id = ?', [id]);
      await tx.run('DELETE FROM onsales WHERE id = ?', [id]);
    });
    this.#forget(entry);
    await this.#tell({ k: 'r', o: id });
    return { ok: true };
  }

  // ---- buyers ----

  /** Joins the queue once per account; joining again answers the place already held. */
  async join(userId: string, id: string): Promise<{ ok: true; view: QueueView; isNew: boolean } | Failure> {
    const entry = this.#entries.get(id);
    if (!entry) return notFound(id);
    if (entry.queue.has(userId) || entry.state === 'closed') return this.#answer(entry, userId, false);
    if (entry.queue.size >= MAX_QUEUE_LENGTH) return failure('OVERLOADED', 'this queue is full');
    while (entry.opening) await entry.opening;
    entry.joinsInFlight++;
    try {
      const row = await this.d.store.get<{ seq: number }>(
        `INSERT INTO onsale_queue (onsale_id, user_id, joined_at) VALUES (?, ?, ?)
         ON CONFLICT (onsale_id, user_id) DO NOTHING RETURNING seq`,
        [id, userId, new Date(this.d.now()).toISOString()],
      );
      // No row: a concurrent join of the same account won; its place is the one kept.
      if (row && this.#entries.get(id) === entry) entry.queue.join(userId, Number(row.seq));
      if (row) await this.#tell({ k: 'j', o: id, u: userId, s: Number(row.seq) });
      const answered = this.#answer(entry, userId, row !== undefined);
      if (row) this.#broadcast(entry, userId);
      return answered;
    } finally {
      entry.joinsInFlight--;
      if (entry.joinsInFlight === 0) entry.drained?.();
    }
  }

  /** The caller's place, from memory. */
  poll(userId: string, id: string): { ok: true; view: QueueView } | Failure {
    const entry = this.#entries.get(id);
    if (!entry) return notFound(id);
    const answered = this.#answer(entry, userId, false);
    return answered.ok ? { ok: true, view: answered.view } : answered;
  }

  /** Follows the caller's place: `listener` gets the new answer whenever it may have changed. */
  listen(userId: string, id: string, listener: QueueListener): { ok: true; unlisten: () => void } | Failure {
    const entry = this.#entries.get(id);
    if (!entry) return notFound(id);
    if (!entry.queue.has(userId))
      return failure('NOT_FOUND', 'join the queue first (POST /api/onsales/{id}/queue)');
    if (entry.listenerCount >= MAX_LISTENERS_PER_ONSALE) return failure('OVERLOADED', 'too many listeners');
    let set = entry.listeners.get(userId);
    if (!set) {
      set = new Set();
      entry.listeners.set(userId, set);
    }
    const listeners = set;
    set.add(listener);
    entry.listenerCount++;
    return {
      ok: true,
      unlisten: () => {
        if (!listeners.delete(listener)) return;
        entry.listenerCount--;
        if (listeners.size === 0) entry.listeners.delete(userId);
      },
    };
  }

  #answer(
    entry: Entry,
    userId: string,
    isNew: boolean,
  ): { ok: true; view: QueueView; isNew: boolean } | Failure {
    const view = this.#viewOf(entry, userId);
    if (!view) {
      if (entry.state === 'closed') return { ok: true, view: closedView(), isNew: false };
      return failure('NOT_FOUND', 'you have not joined this queue (POST /api/onsales/{id}/queue)');
    }
    return { ok: true, view, isNew };
  }

  #viewOf(entry: Entry, userId: string): QueueView | undefined {
    return viewOf(
      entry.queue,
      userId,
      {
        onsaleState: entry.state,
        opensAtMs: entry.opensAtMs,
        admitPerMinute: entry.ratePerMinute,
        nowMs: this.d.now(),
      },
      (admission) =>
        this.d.signer.signAdmission({
          sub: userId,
          ons: entry.id,
          shows: entry.showIds,
          iat: Math.floor(admission.admittedAtMs / 1000),
          exp: Math.floor(admission.expiresAtMs / 1000),
        }),
    );
  }

  // ---- the hold path ----

  /**
   * Undefined when `userId` may hold on `showId` now: no open on-sale covers the show, or `token` is a
   * live admission to that on-sale for that user and show. A signature check and map lookups only.
   */
  checkAdmission(userId: string, showId: string, token: string | undefined): Failure | undefined {
    const entry = this.#activeByShow.get(showId);
    if (!entry) return undefined;
    const refuse = (reason: string) =>
      failure('ADMISSION_REQUIRED', `this show is on a queued on-sale: ${reason}`, {
        onsaleId: entry.id,
        reason,
      });
    if (!token)
      return refuse('send the Admission-Token header from the queue (POST /api/onsales/{id}/queue)');
    const check = this.d.signer.verifyAdmission(token, this.d.now());
    if (!check.valid) return refuse(check.reason);
    const { claims } = check;
    if (claims.ons !== entry.id) return refuse('the token is for another on-sale');
    if (claims.sub !== userId) return refuse('the token was issued to someone else');
    if (!claims.shows.includes(showId)) return refuse('the token does not cover this show');
    if (entry.queue.isEnded(userId)) return refuse('the admission was used by a booking');
    return undefined;
  }

  /** A booking ends the buyer's admission to the on-sale covering the show: its place does not return. */
  async endAdmission(userId: string, showId: string): Promise<void> {
    const entry = this.#activeByShow.get(showId);
    if (!entry?.queue.admissionOf(userId) || entry.queue.isEnded(userId)) return;
    const at = new Date(this.d.now()).toISOString();
    await this.d.store.run(
      'UPDATE onsale_queue SET ended_at = ? WHERE onsale_id = ? AND user_id = ? AND ended_at IS NULL',
      [at, entry.id, userId],
    );
    entry.queue.end(userId);
    this.#push(entry, userId);
    await this.#tell({ k: 'e', o: entry.id, u: userId });
  }

  // ---- the admission clock ----

  /**
   * One step of the clock: opens what is due (the shuffle), closes what sold out, admits what the rate
   * allows. Only the leader does it. Steps never overlap: a call during one waits for it and runs once
   * more after it (at most one waits, so a slow store cannot pile up ticks), so the caller always sees
   * a step that began after its call.
   */
  tick(): Promise<void> {
    if (this.#queuedTick) return this.#queuedTick;
    if (!this.#runningTick) {
      this.#runningTick = this.#tickAll().finally(() => {
        this.#runningTick = undefined;
      });
      return this.#runningTick;
    }
    this.#queuedTick = this.#runningTick.then(() => {
      this.#queuedTick = undefined;
      return this.tick();
    });
    return this.#queuedTick;
  }

  async #tickAll(): Promise<void> {
    if (!(await this.#leadership.isLeader())) return;
    for (const entry of [...this.#entries.values()]) {
      if (entry.state === 'closed' || !this.#entries.has(entry.id)) continue;
      try {
        await this.#tickOne(entry);
      } catch (err) {
        this.d.onError?.(err, `on-sale ${entry.id} tick`);
      }
    }
  }

  async #tickOne(entry: Entry): Promise<void> {
    const nowMs = this.d.now();
    const seats = await this.#seatsLeft(entry);
    if (seats.available + seats.held === 0) return this.#close(entry, nowMs);
    if (entry.state === 'scheduled') {
      if (nowMs < entry.opensAtMs) return;
      await this.#open(entry, nowMs);
      // Everyone learns their place now, whether or not anyone is admitted this tick.
      this.#broadcast(entry);
    }
    entry.ratePerMinute =
      entry.admitPerMinute ?? automaticAdmitPerMinute(seats.available, this.d.holdTtlSeconds);
    const elapsedMs = entry.lastTickMs === undefined ? 0 : nowMs - entry.lastTickMs;
    entry.lastTickMs = nowMs;
    const due = admissionsDue(entry.credit, entry.ratePerMinute, elapsedMs, entry.queue.waitingCount);
    entry.credit = due.credit;
    if (due.count === 0) return;
    const userIds = entry.queue.nextWaiting(due.count);
    const expiresAtMs = nowMs + this.d.admissionTtlSeconds * 1000;
    const placeholders = userIds.map(() => '?').join(', ');
    await this.d.store.run(
      `UPDATE onsale_queue SET admitted_at = ?, admission_expires_at = ?
       WHERE onsale_id = ? AND admitted_at IS NULL AND user_id IN (${placeholders})`,
      [new Date(nowMs).toISOString(), new Date(expiresAtMs).toISOString(), entry.id, ...userIds],
    );
    entry.queue.admit(userIds, nowMs, expiresAtMs);
    this.#broadcast(entry);
    for (let i = 0; i < userIds.length; i += ADMITTED_IDS_PER_NOTICE)
      await this.#tell({
        k: 'a',
        o: entry.id,
        u: userIds.slice(i, i + ADMITTED_IDS_PER_NOTICE),
        at: nowMs,
        exp: expiresAtMs,
      });
  }

  async #seatsLeft(entry: Entry): Promise<{ available: number; held: number }> {
    let available = 0;
    let held = 0;
    for (const showId of entry.showIds) {
      const counts = await this.d.seatCounts(showId);
      if (!counts) continue;
      available += counts.available;
      held += counts.held;
    }
    return { available, held };
  }

  /** Opening waits for joins in flight, so the shuffle covers everyone whose join was answered before. */
  async #open(entry: Entry, nowMs: number): Promise<void> {
    let release = () => {};
    entry.opening = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      if (entry.joinsInFlight > 0)
        await new Promise<void>((resolve) => {
          entry.drained = resolve;
        });
      entry.drained = undefined;
      const seed = this.d.newSeed?.() ?? randomBytes(16).toString('hex');
      const at = new Date(nowMs).toISOString();
      // The store decides who joined before opening, not memory: joins made on other nodes count too,
      // and the rows marked are exactly those committed when the UPDATE ran, which is what every node
      // and every restart replays (a join committing meanwhile queues behind, unmarked).
      const isOpened = await this.d.store.transaction(async (tx) => {
        // The state change first: on PostgreSQL it locks the row, so a second opener waits, then finds
        // it open and marks nothing.
        const opened = await tx.run(
          `UPDATE onsales SET state = 'open', shuffle_seed = ?, opened_at = ?, updated_at = ?
           WHERE id = ? AND state = 'scheduled'`,
          [seed, at, at, entry.id],
        );
        if (opened.changes === 0) return false;
        await tx.run('UPDATE onsale_queue SET shuffled = 1 WHERE onsale_id = ?', [entry.id]);
        await tx.run(
          `UPDATE onsales SET shuffled_through_seq = (SELECT MAX(seq) FROM onsale_queue WHERE onsale_id = ? AND shuffled = 1)
           WHERE id = ?`,
          [entry.id, entry.id],
        );
        return true;
      });
      // Opened elsewhere (another node, before a restart): take what the store says.
      if (!isOpened) return await this.#reload(entry.id);
      const rows = (await this.#queueRows(entry.id)).map(queueRowOf);
      entry.queue = QueueOrder.fromRows(rows, seed);
      entry.state = 'open';
      entry.seed = seed;
      entry.openedAt = at;
      entry.updatedAt = at;
      await this.#tell({ k: 'r', o: entry.id });
    } finally {
      entry.opening = undefined;
      release();
    }
  }

  /** Sold out: the on-sale closes and every buyer hears `closed` at once. */
  async #close(entry: Entry, nowMs: number): Promise<void> {
    const at = new Date(nowMs).toISOString();
    await this.d.store.run(
      "UPDATE onsales SET state = 'closed', closed_at = ?, updated_at = ? WHERE id = ? AND state <> 'closed'",
      [at, at, entry.id],
    );
    entry.state = 'closed';
    entry.closedAt = at;
    entry.updatedAt = at;
    for (const showId of entry.showIds)
      if (this.#activeByShow.get(showId) === entry) this.#activeByShow.delete(showId);
    this.#broadcast(entry);
    await this.#tell({ k: 'r', o: entry.id });
  }

  // ---- internals ----

  #checkShows(showIds: readonly string[], self: Entry | undefined): Failure | undefined {
    const missing = showIds.filter((id) => !this.d.hasShow(id));
    if (missing.length > 0)
      return failure('SHOW_NOT_FOUND', `no show ${missing[0]}`, { showIds: missing.slice(0, 20) });
    const taken = showIds.filter((id) => {
      const other = this.#activeByShow.get(id);
      return other !== undefined && other !== self;
    });
    if (taken.length > 0)
      return failure('CONFLICT', 'a show is already on another open on-sale', {
        showIds: taken.slice(0, 20),
        onsaleId: this.#activeByShow.get(taken[0]!)!.id,
      });
    return undefined;
  }

  #put(entry: Entry): void {
    this.#entries.set(entry.id, entry);
    if (entry.state !== 'closed') for (const showId of entry.showIds) this.#activeByShow.set(showId, entry);
  }

  #push(entry: Entry, userId: string): void {
    const set = entry.listeners.get(userId);
    if (!set || set.size === 0) return;
    const view = this.#viewOf(entry, userId) ?? closedView();
    for (const listener of set) listener(view);
  }

  /** Everyone listening hears their new answer (or, with `only`, that one buyer). */
  #broadcast(entry: Entry, only?: string): void {
    if (only !== undefined) {
      this.#push(entry, only);
      return;
    }
    for (const userId of entry.listeners.keys()) this.#push(entry, userId);
  }
}

function entryOf(row: OnsaleRow, queue: QueueOrder): Entry {
  const admitPerMinute = row.admit_per_minute === null ? null : Number(row.admit_per_minute);
  return {
    id: row.id,
    showIds: JSON.parse(row.show_ids) as string[],
    opensAtMs: Date.parse(row.opens_at),
    admitPerMinute,
    state: row.state,
    seed: row.shuffle_seed,
    openedAt: row.opened_at,
    closedAt: row.closed_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    queue,
    credit: 0,
    lastTickMs: undefined,
    ratePerMinute: admitPerMinute ?? 1,
    joinsInFlight: 0,
    drained: undefined,
    opening: undefined,
    listeners: new Map(),
    listenerCount: 0,
  };
}

function queueRowOf(row: QueueDbRow): QueueRow {
  return {
    userId: row.user_id,
    seq: Number(row.seq),
    isShuffled: Number(row.shuffled) === 1,
    admittedAtMs: row.admitted_at === null ? undefined : Date.parse(row.admitted_at),
    expiresAtMs: row.admission_expires_at === null ? undefined : Date.parse(row.admission_expires_at),
    isEnded: row.ended_at !== null,
  };
}

function publicOnsale(entry: Entry): Onsale {
  return {
    id: entry.id,
    showIds: entry.showIds,
    opensAt: new Date(entry.opensAtMs).toISOString(),
    admitPerMinute: entry.admitPerMinute,
    state: entry.state,
    shuffleSeed: entry.seed,
    openedAt: entry.openedAt,
    closedAt: entry.closedAt,
    waiting: entry.queue.waitingCount,
    admitted: entry.queue.admittedCount,
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
  };
}

function closedView(): QueueView {
  return { position: null, ahead: null, estimatedWaitSeconds: 0, state: 'closed' };
}

function notFound(id: string): Failure {
  return failure('ONSALE_NOT_FOUND', `no on-sale ${id}`);
}
