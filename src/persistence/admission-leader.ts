/**
 * @module admission-leader
 * Which process runs the on-sale admission clock. On SQLite there is one process per data directory, so
 * it always does. On PostgreSQL every node asks for a session-level advisory lock on a connection of its
 * own: the node holding it admits, the others only answer polls; the lock goes with its connection, so
 * a node that dies (or loses the connection) hands the clock to the next one that asks.
 */
import pg from 'pg';

/** Whether this process runs the admission clock: one node in a cluster, always on SQLite. */
export interface AdmissionLeadership {
  isLeader(): Promise<boolean>;
  close(): Promise<void>;
}

/** The advisory lock's key: any constant no other part of BoxOffice uses ("onsale" in ASCII). */
export const ADMISSION_LOCK_KEY = 0x6f6e73616c65;

/** The lock of the cluster's other singletons: the booking sweeps and start-up reconciliation. */
export const SWEEPER_LOCK_KEY = 0x7377656570; // "sweep"

export function admissionLeadership(databaseUrl: string | undefined): AdmissionLeadership {
  return advisoryLeadership(databaseUrl, ADMISSION_LOCK_KEY);
}

/**
 * Leadership by a session-level advisory lock under `key` (see the module's note); always the leader
 * without a database URL (one process).
 */
export function advisoryLeadership(databaseUrl: string | undefined, key: number): AdmissionLeadership {
  if (!databaseUrl) return { isLeader: async () => true, close: async () => {} };
  let client: pg.Client | undefined;
  let isHeld = false;
  let isClosed = false;
  const drop = () => {
    const c = client;
    client = undefined;
    isHeld = false;
    c?.end().catch(() => undefined);
  };
  return {
    async isLeader() {
      if (isClosed) return false;
      if (isHeld && client) return true;
      try {
        if (!client) {
          const c = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
          // A lost connection loses the lock with it: ask again on the next tick.
          c.on('error', drop);
          await c.connect();
          client = c;
        }
        const row = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1) AS held', [key]);
        isHeld = row.rows[0]?.held === true;
        return isHeld;
      } catch {
        drop();
        return false;
      }
    },
    async close() {
      isClosed = true;
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
