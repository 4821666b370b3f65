/**
 * @module store
 * The seam between the domain and its database: one async interface (`Store`) with two thin adapters,
 * SQLite (better-sqlite3, the embedded default) and PostgreSQL (a bounded `pg` pool). SQL is written
 * once, with `?` placeholders, in the subset both dialects share; the PostgreSQL adapter numbers the
 * placeholders (`$1`, `$2`…) once per statement text. Chosen over a query builder by measuring
 * (`npm run bench -- store-seam`, figures and reasons in docs/ARCHITECTURE.md, "Two stores").
 */
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import type Database from 'better-sqlite3';
import pg from 'pg';

export type Dialect = 'sqlite' | 'postgres';
export type SqlValue = string | number | bigint | null | Buffer;

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

/** Statements on a store or inside one of its transactions. */
export interface Queryable {
  readonly dialect: Dialect;
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult>;
}

export interface Store extends Queryable {
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws. Statements
   * of the transaction go through `tx`; a statement made on the store meanwhile runs outside it (on
   * SQLite: after it, since the one connection is busy with it). `work` must await nothing but `tx`'s
   * statements: on SQLite a statement made on the store, even before the transaction began, resolves
   * only at its turn's commit, which waits for this transaction: awaiting it here never ends.
   */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Follows `channel`: `onMessage` gets every payload that `notify` sends on it after the subscription
   * is made, from any process on the same database; `onResync` is called whenever messages may have
   * been missed (the listening connection was lost and is back), so the caller reloads what it keeps.
   * SQLite serves one process, which changes its memory itself: nothing to follow there.
   */
  subscribe(channel: string, handlers: ChangeHandlers): Promise<Subscription>;
  /** A pool's connections and waiters (PostgreSQL; SQLite has one connection and no pool). */
  poolStats?(): PoolStats;
  close(): Promise<void>;
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface ChangeHandlers {
  onMessage(payload: string): void;
  onResync(): void;
}

export interface Subscription {
  close(): Promise<void>;
}

/** Payloads are short (PostgreSQL's limit is 8000 bytes); channels are plain identifiers. */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Tells the store's other processes about a change, in `q`'s transaction: on PostgreSQL a NOTIFY that
 * is delivered when (and only if) the transaction commits; on SQLite nothing (one process).
 */
export async function notify(q: Queryable, channel: string, payload: string): Promise<void> {
  if (q.dialect !== 'postgres') return;
  if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`);
  await q.get('SELECT pg_notify(?, ?)', [channel, payload]);
}

/** Statement texts whose placeholders were numbered, kept so each is rewritten once. */
const MAX_CACHED_STATEMENTS = 2_000;

/**
 * `?` → `$n`, skipping quoted text ('…', "…") so a literal question mark stays one. SQL comments are
 * not parsed: statements given to the store carry none.
 */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | undefined;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') out += `$${++n}`;
    else out += ch;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// SQLite

/**
 * better-sqlite3 is synchronous and has one connection: an async transaction keeps it open across
 * awaits, so everything else on the store waits for it (a FIFO lock). Without the lock, a statement
 * made by another request during the transaction's await would silently join (and commit or roll back
 * with) a transaction that is not its own.
 *
 * **Commits are per turn of the event loop, not per statement or transaction.** The first write of a
 * turn opens one transaction (`BEGIN IMMEDIATE`, "the batch"); every transaction of the turn is a
 * savepoint inside it, every write outside one a statement inside it; `setImmediate` commits the batch
 * once the turn's I/O callbacks have run. A commit writes each changed page to the WAL once for the
 * whole turn, where it wrote it once per transaction (the main thread's largest cost in a full-booking
 * profile: 22% in `BEGIN`/`COMMIT`, two `pwrite`s per page). What callers see does not change: a
 * statement or transaction made while a batch is open resolves only once the batch committed (a read
 * too: it may have seen the batch's writes), so nobody learns of a write a crash could still undo, and
 * `committedChanges` (what group commit flushes) counts only committed rows. A transaction that
 * throws rolls back to its savepoint alone; a batch whose `COMMIT` fails, or that SQLite aborted
 * (disk full, I/O error), fails everyone in it. Statements inside a transaction resolve at once, as
 * before (its work goes on; its own promise waits for the batch).
 */
export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #totalChanges: Database.Statement;
  #turn: Promise<void> = Promise.resolve();
  #locked = false;
  /** The open batch: who waits for its commit. */
  #batch?: Batch;
  #committedChanges: number;
  #savepoints = 0;
  #isClosed = false;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#totalChanges = db.prepare('SELECT total_changes()').pluck();
    this.#committedChanges = this.#totalChanges.get() as number;
  }

  /** Rows changed by commits so far (SQLite's `total_changes()` as of the latest commit). */
  get committedChanges(): number {
    return this.#committedChanges;
  }

  #prepare(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      if (this.#statements.size >= MAX_CACHED_STATEMENTS) this.#statements.clear();
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #allNow<T>(statement: Database.Statement, params: readonly SqlValue[]): T[] {
    return statement.all(...params) as T[];
  }
  #getNow<T>(statement: Database.Statement, params: readonly SqlValue[]): T | undefined {
    return statement.get(...params) as T | undefined;
  }
  #runNow(statement: Database.Statement, params: readonly SqlValue[]): RunResult {
    return { changes: statement.run(...params).changes };
  }

  /**
   * A statement outside any transaction: now when no transaction is open, else after the open ones.
   * Inside the batch when it writes or a batch is open (it then resolves at the batch's commit); a read
   * with no batch open runs on its own and resolves at once.
   */
  async #outside<T>(sql: string, op: (statement: Database.Statement) => T): Promise<T> {
    while (this.#locked) await this.#acquire().then((release) => release());
    const statement = this.#prepare(sql);
    if (!this.#batch && statement.readonly) return op(statement);
    const batch = this.#openBatch();
    let result: T;
    try {
      result = op(statement);
    } catch (error) {
      this.#checkBatchAlive(batch, error);
      return batch.failAfter(error);
    }
    return batch.after(result);
  }

  #openBatch(): Batch {
    if (this.#batch) return this.#batch;
    if (this.#isClosed) throw new Error('the store is closed');
    this.#db.exec('BEGIN IMMEDIATE');
    const batch = new Batch();
    this.#batch = batch;
    setImmediate(() => void this.#commit(batch));
    return batch;
  }

  /** SQLite ends the whole transaction on some errors (disk full, I/O): then the batch is lost. */
  #checkBatchAlive(batch: Batch, error: unknown): void {
    if (this.#batch === batch && !this.#db.inTransaction) {
      this.#batch = undefined;
      batch.fail(error);
    }
  }

  async #commit(batch: Batch): Promise<void> {
    // After any transaction open now: it is part of the batch, and must end before the batch does.
    const release = await this.#acquire();
    try {
      this.#commitLocked(batch);
    } finally {
      release();
    }
  }

  /** Commits `batch` if it is still the open one; the caller holds the lock. */
  #commitLocked(batch: Batch): void {
    if (this.#batch !== batch) return;
    this.#batch = undefined;
    try {
      this.#db.exec('COMMIT');
    } catch (error) {
      batch.fail(error);
      try {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      } catch {
        // The connection is unusable; the next statement reports it to its own caller.
      }
      return;
    }
    this.#committedChanges = this.#totalChanges.get() as number;
    batch.commit();
  }

  async #acquire(): Promise<() => void> {
    const previous = this.#turn;
    let release!: () => void;
    this.#turn = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    return release;
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#outside(sql, (statement) => this.#allNow<T>(statement, params));
  }
  get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.#outside(sql, (statement) => this.#getNow<T>(statement, params));
  }
  run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    return this.#outside(sql, (statement) => this.#runNow(statement, params));
  }

  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const release = await this.#acquire();
    this.#locked = true;
    let open = true;
    const ifOpen = <R>(op: () => R): Promise<R> => {
      if (!open) return Promise.reject(new Error('statement on a transaction that has ended'));
      return Promise.resolve().then(op);
    };
    const tx: Queryable = {
      dialect: 'sqlite',
      all: <R>(sql: string, params: readonly SqlValue[] = []) =>
        ifOpen(() => this.#allNow<R>(this.#prepare(sql), params)),
      get: <R>(sql: string, params: readonly SqlValue[] = []) =>
        ifOpen(() => this.#getNow<R>(this.#prepare(sql), params)),
      run: (sql, params = []) => ifOpen(() => this.#runNow(this.#prepare(sql), params)),
    };
    const savepoint = `tx${++this.#savepoints}`;
    let batch: Batch | undefined;
    let result: T | undefined;
    let failure: { error: unknown } | undefined;
    try {
      batch = this.#openBatch();
      this.#db.exec(`SAVEPOINT ${savepoint}`);
      try {
        result = await work(tx);
        this.#db.exec(`RELEASE ${savepoint}`);
      } catch (error) {
        if (this.#batch === batch && this.#db.inTransaction) {
          this.#db.exec(`ROLLBACK TO ${savepoint}`);
          this.#db.exec(`RELEASE ${savepoint}`);
        } else this.#checkBatchAlive(batch, error);
        failure = { error };
      }
    } finally {
      // The lock goes before the commit, which needs it (and others may join the batch meanwhile).
      open = false;
      this.#locked = false;
      release();
    }
    // Even a refusal waits for the batch: it may rest on another request's write that is not committed
    // yet (a unique key, an offer's last use), and must not be told before that write is.
    // (`batch` and `result` are set: an exception before them left through the `finally`.)
    if (failure) return batch!.failAfter(failure.error);
    return batch!.after(result!);
  }

  async subscribe(): Promise<Subscription> {
    return { close: async () => undefined };
  }

  /** Commits the open batch, refuses every later write, and closes the connection. */
  async close(): Promise<void> {
    const release = await this.#acquire();
    try {
      this.#isClosed = true;
      if (this.#batch) this.#commitLocked(this.#batch);
      this.#statements.clear();
      this.#db.close();
    } finally {
      release();
    }
  }
}

/** The statements and transactions of one SQLite commit, and who waits for it. */
class Batch {
  readonly #waiting: { resolve: () => void; reject: (err: unknown) => void }[] = [];

  /** `value` once the batch committed (rejected if it failed). */
  after<T>(value: T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ resolve: () => resolve(value), reject });
    });
  }

  /**
   * Rejects with `error` once the batch committed, or with the batch's failure if it failed: a
   * statement's refusal (a unique key taken) may rest on a write of the batch that never commits.
   */
  failAfter(error: unknown): Promise<never> {
    return new Promise<never>((_, reject) => {
      this.#waiting.push({ resolve: () => reject(error), reject });
    });
  }

  commit(): void {
    for (const w of this.#waiting.splice(0)) w.resolve();
  }

  fail(error: unknown): void {
    const failure = new Error(`the commit of this statement's batch failed: ${String(error)}`, {
      cause: error,
    });
    for (const w of this.#waiting.splice(0)) w.reject(failure);
  }
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL

export interface PostgresStoreOptions {
  /** Connections at most; callers beyond it wait for one (the pool's queue). */
  maxConnections: number;
  /** A statement running longer is cancelled by the server. */
  statementTimeoutMs: number;
}

/**
 * Our integers (money in minor units, counts, epoch milliseconds) fit in a double, so `bigint` columns
 * and `COUNT(*)` come back as numbers, as they do from SQLite, rather than pg's default strings.
 */
const INT8_OID = 20;
const parseInt8 = (value: string) => Number(value);
const types = {
  // Asked for every column of every result: one parser for all, not a new closure per column.
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

/** How often a lost subscription connection is tried again. */
const RESUBSCRIBE_MS = 1_000;
/** The client gives the server this long beyond its statement timeout to report the cancellation. */
const CLIENT_TIMEOUT_MARGIN_MS = 1_000;

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  readonly #numbered = new Map<string, { name: string; text: string }>();
  readonly #url: string;
  readonly #statementTimeoutMs: number;
  /** The pool's statements, made once rather than per statement. */
  readonly #onPool: Queryable;

  constructor(url: string, options: PostgresStoreOptions) {
    if (!(options.maxConnections >= 1)) throw new Error('maxConnections must be at least 1');
    this.#url = url;
    this.#statementTimeoutMs = options.statementTimeoutMs;
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections,
      statement_timeout: options.statementTimeoutMs,
      // A server that hangs (or a network that drops packets) answers nothing, so statement_timeout
      // never fires: bound the wait for a connection and for every answer on our side too.
      connectionTimeoutMillis: options.statementTimeoutMs,
      query_timeout: options.statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
      types,
      // A client sends each query as it is made instead of after the previous answer: what lets a
      // transaction's BEGIN share a round trip with its first statement (`transaction`). Every other
      // caller awaits each answer before its next query, so nothing else changes.
      pipeline: true,
    });
    // An idle connection the server ended (a restart) is dropped from the pool; the next query opens
    // a new one. Without a listener the error would end the process.
    this.pool.on('error', () => undefined);
    this.#onPool = this.#on(this.pool);
  }

  /**
   * The statement as sent: placeholders numbered, and a name, so each connection parses and plans it
   * once and then only binds and executes it. The name is a digest of the text, never a counter: pg
   * refuses one name for two texts on a connection, and the cache here may be cleared while the
   * connections keep their prepared statements.
   */
  #statement(sql: string, params: readonly SqlValue[]): NamedQuery {
    let prepared = this.#numbered.get(sql);
    if (prepared === undefined) {
      if (this.#numbered.size >= MAX_CACHED_STATEMENTS) this.#numbered.clear();
      const text = numberPlaceholders(sql);
      prepared = { name: `bo_${createHash('sha1').update(text).digest('base64url')}`, text };
      this.#numbered.set(sql, prepared);
    }
    // A query object made from the text and named after, rather than a config object: pg copies a
    // config object through its property descriptors for every query (measured at ~8 µs each on this
    // VM, on the HTTP thread), and takes a query object as it is.
    const query = new pg.Query(prepared.text, params as unknown[]) as NamedQuery;
    query.name = prepared.name;
    return query;
  }

  /** Runs a query on the pool (which checks a client out for it) or on a client of ours. */
  #send(client: pg.Pool | pg.PoolClient, query: NamedQuery): Promise<pg.QueryResult> {
    if (client instanceof pg.Pool) return client.query(query as unknown as pg.QueryConfig);
    return new Promise((resolve, reject) => {
      query.callback = (err, result) => (err ? reject(err) : resolve(result as pg.QueryResult));
      client.query(query);
    });
  }

  /** `socket`: a transaction's connection, corked for the statements made in one turn (`corkForTurn`). */
  #on(client: pg.Pool | pg.PoolClient, socket?: Writable): Queryable {
    const send = (sql: string, params: readonly SqlValue[]) => {
      if (socket) corkForTurn(socket);
      return this.#send(client, this.#statement(sql, params));
    };
    return {
      dialect: 'postgres',
      all: async <T>(sql: string, params: readonly SqlValue[] = []) => (await send(sql, params)).rows as T[],
      get: async <T>(sql: string, params: readonly SqlValue[] = []) =>
        (await send(sql, params)).rows[0] as T | undefined,
      run: async (sql: string, params: readonly SqlValue[] = []) => ({
        changes: (await send(sql, params)).rowCount ?? 0,
      }),
    };
  }

  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.#onPool.all<T>(sql, params);
  }
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    return this.#onPool.get<T>(sql, params);
  }
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult> {
    return this.#onPool.run(sql, params);
  }

  /**
   * Statements made in one turn go out in one write and their answers come back in one round trip (the
   * pool's clients pipeline, and the socket is corked until the turn's microtasks ran): so does BEGIN
   * with the first statement, and so do statements a caller makes together (`Promise.all`) because
   * none needs another's answer. Each round trip is a write and a read on the HTTP thread. The server
   * runs them in order, each inside the transaction; one that fails aborts it, which fails the ones
   * after it and the transaction. BEGIN can only fail with the connection, which fails the statement
   * too, and it is awaited before COMMIT all the same.
   */
  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A connection lost while it is ours (a pipelining client ends its connection when an answer
    // times out) also emits 'error' on the client, which would end the process without a listener:
    // the statements in flight fail with it, and the rollback's failure drops the connection.
    client.on('error', ignoreError);
    let broken: Error | undefined;
    try {
      const socket = (client as unknown as pg.Client).connection?.stream;
      if (socket) corkForTurn(socket);
      const begun = client.query('BEGIN');
      // Settled below; a failure here is also the first statement's, which rejects `work` first.
      begun.catch(() => undefined);
      const result = await work(this.#on(client, socket));
      await begun;
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw error;
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
      client.off('error', ignoreError);
      client.release(broken);
    }
  }

  /**
   * One connection of its own per subscription, outside the pool. Should it fail, it is opened again
   * (every RESUBSCRIBE_MS until it succeeds) and `onResync` tells the caller it may have missed messages.
   */
  async subscribe(channel: string, handlers: ChangeHandlers): Promise<Subscription> {
    if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`);
    let client: pg.Client | undefined;
    let isClosed = false;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const next = new pg.Client({
        connectionString: this.#url,
        connectionTimeoutMillis: this.#statementTimeoutMs,
      });
      next.on('notification', (message) => {
        if (message.channel === channel) handlers.onMessage(message.payload ?? '');
      });
      next.on('error', () => lost(next));
      next.on('end', () => lost(next));
      try {
        await next.connect();
        await next.query(`LISTEN ${channel}`);
      } catch (err) {
        await next.end().catch(() => undefined);
        throw err;
      }
      if (isClosed) {
        await next.end().catch(() => undefined);
        return;
      }
      client = next;
    };
    const lost = (which: pg.Client) => {
      if (client !== which || isClosed) return;
      client = undefined;
      which.end().catch(() => undefined);
      schedule();
    };
    const schedule = () => {
      retry = setTimeout(() => {
        connect().then(
          () => {
            if (!isClosed) handlers.onResync();
          },
          () => {
            if (!isClosed) schedule();
          },
        );
      }, RESUBSCRIBE_MS);
      retry.unref();
    };
    await connect();
    return {
      close: async () => {
        isClosed = true;
        clearTimeout(retry);
        await client?.end().catch(() => undefined);
        client = undefined;
      },
    };
  }

  poolStats(): PoolStats {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** What pg's Query carries beyond its typings: its statement name, and the callback it answers. */
type NamedQuery = pg.Query & {
  name?: string;
  callback?: (err: Error | undefined, result: unknown) => void;
};

const ignoreError = () => undefined;
const corkedSockets = new WeakSet<Writable>();

/**
 * Holds `socket`'s writes until the microtasks queued now have run, so that the queries made in this
 * turn (pg submits each as it is made, in pipeline mode) leave in one write: one syscall, not one each.
 */
function corkForTurn(socket: Writable): void {
  if (corkedSockets.has(socket)) return;
  corkedSockets.add(socket);
  socket.cork();
  queueMicrotask(() => {
    corkedSockets.delete(socket);
    socket.uncork();
  });
}

/**
 * ` FOR UPDATE` on PostgreSQL, nothing on SQLite: a transaction that reads a row to decide a write
 * locks it there, so a concurrent transaction doing the same waits and then reads the new row.
 * SQLite needs no row lock: its transactions (`BEGIN IMMEDIATE`) run one at a time.
 */
export function forUpdate(q: Queryable): string {
  return q.dialect === 'postgres' ? ' FOR UPDATE' : '';
}

/** PostgreSQL SQLSTATE classes and codes that mean "not now", not "wrong": connection exceptions (08),
 * insufficient resources (53), operator intervention (57: shutdown, statement timeout), system errors
 * (58), and a serialization failure or deadlock that escaped its retries (40001, 40P01). */
const UNAVAILABLE_SQLSTATE = /^(08|53|57|58)|^40001$|^40P01$/;
const UNAVAILABLE_SQLITE = new Set([
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
  'SQLITE_BUSY_TIMEOUT',
  'SQLITE_LOCKED',
]);
const UNAVAILABLE_NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** What `pg` says, without a code, when a connection ends or a client-side timeout fires. */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection ended unexpectedly/i;

/**
 * Whether an error from a store means the database cannot serve right now (down, restarting, slow,
 * out of connections, busy), so the request may be retried, rather than a bug in the statement. The
 * edge answers these with 503 STORE_UNAVAILABLE and Retry-After instead of 500.
 */
export function isStoreUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (/^[0-9A-Z]{5}$/.test(code) && UNAVAILABLE_SQLSTATE.test(code)) return true;
    if (UNAVAILABLE_SQLITE.has(code) || UNAVAILABLE_NETWORK.has(code)) return true;
  }
  if (err instanceof AggregateError && err.errors.some(isStoreUnavailable)) return true;
  return UNAVAILABLE_MESSAGE.test(err.message);
}

/**
 * Diagnosis (tests, benches): `base` with a count of what was asked of it, statements and transactions
 * alike, to show that a path reads nothing (an on-sale poll) or how much it reads. `roundTrips` counts
 * what a server sees: every statement, those inside transactions too, and a transaction's BEGIN and
 * COMMIT (each a round trip of its own on PostgreSQL).
 */
export function countingStore(base: Store): { store: Store; count(): number; roundTrips(): number } {
  let made = 0;
  let trips = 0;
  const counted = <T>(op: () => Promise<T>): Promise<T> => {
    made++;
    trips++;
    return op();
  };
  const inTransaction = (tx: Queryable): Queryable => ({
    dialect: tx.dialect,
    all: (sql, params) => {
      trips++;
      return tx.all(sql, params);
    },
    get: (sql, params) => {
      trips++;
      return tx.get(sql, params);
    },
    run: (sql, params) => {
      trips++;
      return tx.run(sql, params);
    },
  });
  return {
    store: {
      dialect: base.dialect,
      all: (sql, params) => counted(() => base.all(sql, params)),
      get: (sql, params) => counted(() => base.get(sql, params)),
      run: (sql, params) => counted(() => base.run(sql, params)),
      transaction: (work) => {
        made++;
        trips += 2; // BEGIN and COMMIT
        return base.transaction((tx) => work(inTransaction(tx)));
      },
      subscribe: (channel, handlers) => base.subscribe(channel, handlers),
      close: () => base.close(),
    },
    count: () => made,
    roundTrips: () => trips,
  };
}
