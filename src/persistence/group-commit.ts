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

export class GroupCommit {
  /** The flush running now: it covers only commits made before it started. */
  #running?: Promise<void>;
  /** The flush that starts when the running one ends, shared by everyone who asked meanwhile. */
  #next?: Promise<void>;
  #failure?: unknown;
  #flushes = 0;
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
    if (!this.#running) {
      this.#running = this.#start();
      return this.#running;
    }
    // The running flush may have started before our commit: wait for the next one.
    this.#next ??= this.#running.then(
      () => this.#promoteNext(),
      () => this.#promoteNext(),
    );
    return this.#next;
  }

  /** Flushes started so far (a gauge of how well commits are grouped). */
  get flushCount(): number {
    return this.#flushes;
  }

  #promoteNext(): Promise<void> {
    this.#next = undefined;
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    this.#running = this.#start();
    return this.#running;
  }

  #start(): Promise<void> {
    this.#flushes += 1;
    const mark = this.options.changes();
    const flushing = this.options.flush().then(
      () => {
        this.#durableMark = Math.max(this.#durableMark, mark);
        if (this.#running === flushing) this.#running = undefined;
      },
      (err: unknown) => {
        this.#failure ??= err;
        if (this.#running === flushing) this.#running = undefined;
        this.options.onFlushFailed(err);
        throw err;
      },
    );
    return flushing;
  }
}
