/**
 * @module hash-gate
 * Bounds how many password hashes (scrypt) run at once. scrypt runs on libuv's thread pool, the same
 * pool the journals' fdatasync calls run on: a registration flood that filled the pool made every hold
 * wait behind hundreds of milliseconds of hashing (hold p50 2 ms → 2.8 s). With at most `concurrency`
 * hashes on the pool, a flush always finds a free thread; callers beyond that wait in a bounded queue,
 * and past it get OVERLOADED (503 with retry-after) instead of an unbounded wait.
 */
import { type Failure, failure } from './failure.js';

export interface HashLoad {
  running: number;
  queued: number;
  /** Most hashes that ever ran at once: an operator (and a test) can see the bound was kept. */
  peakRunning: number;
}

/** A guess at one hash's time (~70 ms on a small core), for the retry-after of a refused caller. */
const HASH_ESTIMATE_MS = 100;

export class HashGate {
  #running = 0;
  #peakRunning = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    readonly concurrency: number,
    readonly maxQueued: number,
    private readonly onLoad: (load: HashLoad) => void = () => {},
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('concurrency must be ≥ 1');
    if (!Number.isInteger(maxQueued) || maxQueued < 0) throw new Error('maxQueued must be ≥ 0');
  }

  get load(): HashLoad {
    return { running: this.#running, queued: this.#waiting.length, peakRunning: this.#peakRunning };
  }

  /** Runs `hash` when a slot is free; OVERLOADED when the queue is full. */
  async run<T>(hash: () => Promise<T>): Promise<{ ok: true; value: T } | Failure> {
    if (this.#running >= this.concurrency) {
      if (this.#waiting.length >= this.maxQueued) {
        const backlog = this.#waiting.length + this.#running;
        return failure('OVERLOADED', 'too many sign-ups and logins at once; try again shortly', {
          retryAfterSeconds: Math.max(1, Math.ceil((backlog * HASH_ESTIMATE_MS) / this.concurrency / 1000)),
        });
      }
      // The slot is handed over by the finishing hash, so #running never passes the bound.
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve);
        this.#report();
      });
    } else this.#running++;
    if (this.#running > this.#peakRunning) this.#peakRunning = this.#running;
    this.#report();
    try {
      return { ok: true, value: await hash() };
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#running--;
    if (this.#running < 0 || this.#running > this.concurrency) throw new Error('hash gate out of bounds');
    this.#report();
  }

  #report(): void {
    this.onLoad(this.load);
  }
}
