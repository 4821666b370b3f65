/**
 * @module group-commit
 * Group commit for the app database. Its connection commits at `synchronous=NORMAL` (a commit survives
 * a process crash at once: it is in the WAL, in the kernel's cache); surviving power loss needs the WAL
 * flushed, which `durable()` does off the JavaScript thread, shared by everyone who asks while a flush
 * runs. The rule callers keep: nothing that reports a change (an HTTP answer) and no external side
 * effect (a provider charge or refund, a message handed to its transport) leaves before `durable()`
 * resolves, so nobody outside ever learns of a commit a power cut could still take back.
 */

export interface GroupCommitOptions {
  /** Flushes everything committed so far to stable storage (fdatasync of the WAL). */
  flush: () => Promise<void>;
  /**
   * Rows the connection has changed since it opened (SQLite's `total_changes()`): rising means commits
   * a flush has yet to cover. A rolled-back change counts too, which only costs a needless flush.
   */
  changes: () => number;
  /**
   * A failed flush: pages may never reach the disk, and retrying would report them as safe
   * ("fsyncgate"). The owner must stop the process; pending and later `durable()` calls reject.
   */
  onFlushFailed: (err: unknown) => void;
}

/**
 * Where the app database's time on the disk goes, cumulative since the group commit was made (a
 * monitoring reader turns them into counters; this module stays free of prom-client).
 */
export interface GroupCommitStats {
  /** Flushes finished (successfully or not). */
  flushes: number;
  /** The flushes' own duration, summed: from asking the flusher until it settled. */
  flushSeconds: number;
  /** `durable()` calls that waited for a flush (`whenDurable()` with nothing to flush does not). */
  waits: number;
  /**
   * Wall time those callers waited, summed over callers: ten callers sharing a 2 ms flush count 20 ms.
   * A caller that joins while a flush runs waits for that one and the next.
   */
  waitSeconds: number;
}

/** Callers of one flush: their count and the sum of their start times (ms), settled in O(1) at its end. */
interface Waiters {
  count: number;
  startedSum: number;
}

export class GroupCommit {
  /** The flush running now: it covers only commits made before it started. */
  #running?: Promise<void>;
  /** The flush that starts when the running one ends, shared by everyone who asked meanwhile. */
  #next?: Promise<void>;
  /** Who waits for `#next`; those of `#running` are in its closure. */
  #nextWaiters?: Waiters;
  #failure?: unknown;
  #flushes = 0;
  readonly #stats: GroupCommitStats = { flushes: 0, flushSeconds: 0, waits: 0, waitSeconds: 0 };
  /** `changes()` as of the start of the latest flush that finished: everything up to it is durable. */
  #durableMark: number;

  constructor(private readonly options: GroupCommitOptions) {
    this.#durableMark = options.changes();
  }

  /** Whether every commit so far is on stable storage. */
  get isDurable(): boolean {
    return this.#failure === undefined && this.options.changes() <= this.#durableMark;
  }

  /** `durable()`, skipped when nothing is waiting to be flushed: what answers and side effects call. */
  whenDurable(): Promise<void> {
    return this.isDurable ? Promise.resolve() : this.durable();
  }

  /** Resolves once every commit made before this call is on stable storage. */
  durable(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    // One clock read per caller and no promise of its own: this runs once per answer on the HTTP thread.
    const now = performance.now();
    if (!this.#running) {
      this.#running = this.#start({ count: 1, startedSum: now });
      return this.#running;
    }
    // The running flush may have started before our commit: wait for the next one.
    if (!this.#next) {
      const waiters: Waiters = { count: 0, startedSum: 0 };
      this.#nextWaiters = waiters;
      this.#next = this.#running.then(
        () => this.#promoteNext(waiters),
        () => this.#promoteNext(waiters),
      );
    }
    this.#nextWaiters!.count += 1;
    this.#nextWaiters!.startedSum += now;
    return this.#next;
  }

  /** Flushes started so far (a gauge of how well commits are grouped). */
  get flushCount(): number {
    return this.#flushes;
  }

  /** Cumulative flush and wait figures (a copy). */
  stats(): GroupCommitStats {
    return { ...this.#stats };
  }

  #promoteNext(waiters: Waiters): Promise<void> {
    this.#next = undefined;
    this.#nextWaiters = undefined;
    if (this.#failure !== undefined) {
      this.#settleWaiters(waiters, performance.now());
      return Promise.reject(this.#failure);
    }
    this.#running = this.#start(waiters);
    return this.#running;
  }

  #start(waiters: Waiters): Promise<void> {
    this.#flushes += 1;
    const mark = this.options.changes();
    const started = performance.now();
    const finished = () => {
      const now = performance.now();
      this.#stats.flushes += 1;
      this.#stats.flushSeconds += (now - started) / 1000;
      // Before the waiters' own continuations run: they are resumed by this promise's settling.
      this.#settleWaiters(waiters, now);
    };
    const flushing = this.options.flush().then(
      () => {
        finished();
        this.#durableMark = Math.max(this.#durableMark, mark);
        if (this.#running === flushing) this.#running = undefined;
      },
      (err: unknown) => {
        finished();
        this.#failure ??= err;
        if (this.#running === flushing) this.#running = undefined;
        this.options.onFlushFailed(err);
        throw err;
      },
    );
    return flushing;
  }

  #settleWaiters(waiters: Waiters, now: number): void {
    this.#stats.waits += waiters.count;
    this.#stats.waitSeconds += (waiters.count * now - waiters.startedSum) / 1000;
  }
}
