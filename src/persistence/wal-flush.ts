/**
 * @module wal-flush
 * Flushing a SQLite WAL file to stable storage ourselves: the connection runs at
 * `synchronous=NORMAL` (a commit survives a process crash), and for power loss the caller flushes the
 * WAL after committing, with `fdatasync` on libuv's thread pool, so flushes of many files overlap and
 * the JavaScript thread keeps working meanwhile. That is what SQLite's FULL does in WAL mode.
 */
import fs from 'node:fs';

export class WalFlusher {
  #fd?: number;

  /** `databaseFile`'s WAL is flushed on `flush()` when enabled; otherwise `flush()` does nothing. */
  constructor(
    private readonly databaseFile: string,
    private readonly isEnabled: boolean,
  ) {}

  flush(): Promise<void> {
    if (!this.isEnabled) return Promise.resolve();
    // The WAL exists once anything was committed; SQLite keeps the same file while the database is open.
    this.#fd ??= fs.openSync(`${this.databaseFile}-wal`, 'r');
    const fd = this.#fd;
    return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }
}
