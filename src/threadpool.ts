/**
 * @module threadpool
 * Imported first by the entry points. libuv's thread pool (4 threads by default) runs the journals'
 * concurrent fdatasync calls, scrypt and file I/O; a batch that wrote 20 partitions would otherwise sync
 * them four at a time. The size is read once, when the pool first starts, so this must run before any
 * asynchronous fs, crypto or dns call. An operator's own UV_THREADPOOL_SIZE wins.
 */
export const THREADPOOL_SIZE = 32;
process.env.UV_THREADPOOL_SIZE ??= String(THREADPOOL_SIZE);
