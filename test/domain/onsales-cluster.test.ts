/**
 * Two nodes on one PostgreSQL database: only the holder of the advisory lock runs the admission clock,
 * and the other node answers the same places and admissions from its own memory, kept current by the
 * nodes' notices (joins on either node, the opening's shuffle, admissions, a booking's end).
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { QueueView } from '../../src/domain/onsale-queue.js';
import { OnsaleService } from '../../src/domain/onsales.js';
import { admissionLeadership } from '../../src/persistence/admission-leader.js';
import { migratePostgres } from '../../src/persistence/pg-app-db.js';
import { PostgresStore } from '../../src/persistence/store.js';
import { TicketSigner } from '../../src/tickets/ticket-signer.js';
import { freshPostgresDatabase } from '../helpers/postgres.js';

const OPENS_AT_MS = Date.UTC(2030, 2, 15, 12, 0, 0);
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function until(condition: () => boolean): Promise<void> {
  // Notices arrive over a separate connection; wait for them by condition, bounded by the test timeout.
  while (!condition()) await new Promise((r) => setTimeout(r, 10));
}

describe('on-sale across two nodes on PostgreSQL', () => {
  it('lets one node admit and the other answer the same places and admissions', async () => {
    const url = await freshPostgresDatabase('onsale-cluster');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    await migratePostgres(pool);
    await pool.end();
    let nowMs = OPENS_AT_MS - 60_000;
    const signer = TicketSigner.ephemeral(() => nowMs);
    const node = async () => {
      const store = new PostgresStore(url, { maxConnections: 4, statementTimeoutMs: 5_000 });
      const service = new OnsaleService({
        store,
        signer,
        hasShow: (id) => id === 'shw_1',
        seatCounts: async () => ({ available: 100, held: 0 }),
        holdTtlSeconds: 300,
        admissionTtlSeconds: 600,
        leadership: admissionLeadership(url),
        now: () => nowMs,
      });
      await service.start();
      closers.push(async () => {
        await service.close();
        await store.close();
      });
      return service;
    };
    const a = await node();
    const b = await node();
    const created = await a.create({
      showIds: ['shw_1'],
      opensAt: new Date(OPENS_AT_MS).toISOString(),
      admitPerMinute: 300,
    });
    if (!created.ok) throw new Error(created.message);
    const id = created.onsale.id;
    await until(() => b.get(id).ok);
    const users = Array.from({ length: 30 }, (_, i) => `usr_${i}`);
    // Half join on each node.
    for (const [i, u] of users.entries()) await (i % 2 === 0 ? a : b).join(u, id);
    nowMs = OPENS_AT_MS;
    // Whoever holds the lock admits; the first node to ask gets it and keeps it.
    await a.tick();
    await b.tick();
    nowMs += 2_000;
    await a.tick();
    await b.tick();
    const view = (s: OnsaleService, u: string) => (s.poll(u, id) as { ok: true; view: QueueView }).view;
    const onA = () => users.map((u) => view(a, u));
    const onB = () => users.map((u) => view(b, u));
    await until(() => JSON.stringify(onA()) === JSON.stringify(onB()));
    expect(onA().filter((v) => v.state === 'admitted')).toHaveLength(10);
    expect(new Set(onB().map((v) => v.position))).toEqual(new Set(users.map((_, i) => i + 1)));
    // A booking's end on one node is refused on the other.
    const admitted = users.find((u) => view(a, u).state === 'admitted')!;
    const token = view(a, admitted).admission!.token;
    expect(b.checkAdmission(admitted, 'shw_1', token)).toBeUndefined();
    await a.endAdmission(admitted, 'shw_1');
    await until(() => b.checkAdmission(admitted, 'shw_1', token) !== undefined);
    expect(b.checkAdmission(admitted, 'shw_1', token)?.code).toBe('ADMISSION_REQUIRED');
  });

  it('gives the admission clock to one node at a time', async () => {
    const url = await freshPostgresDatabase('onsale-leader');
    const first = admissionLeadership(url);
    const second = admissionLeadership(url);
    closers.push(() => second.close());
    expect(await first.isLeader()).toBe(true);
    expect(await second.isLeader()).toBe(false);
    expect(await first.isLeader()).toBe(true);
    // The lock goes with its connection: the other node takes over.
    await first.close();
    expect(await second.isLeader()).toBe(true);
  });

  it('stops claiming the clock once the server ended its connection', async () => {
    const url = await freshPostgresDatabase('onsale-leader-cut');
    const first = admissionLeadership(url);
    const second = admissionLeadership(url);
    closers.push(
      () => first.close(),
      () => second.close(),
    );
    expect(await first.isLeader()).toBe(true);
    // The server ends the leader's session (a restart, an operator, a network cut): its lock is gone.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(
      "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = current_database() AND l.pid <> pg_backend_pid()",
    );
    await admin.end();
    expect(await second.isLeader()).toBe(true);
    // The old leader learns it from its connection's end, and does not admit beside the new one.
    for (let attempt = 0; attempt < 100 && (await first.isLeader()); attempt++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await first.isLeader()).toBe(false);
  });
});
