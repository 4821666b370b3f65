/**
 * @module bench/http/report
 * The table the HTTP bench prints: one row per scenario and target, with requests/s, p50/p99 latency,
 * errors, non-2xx, the ratio to the ceiling and the scenario's own figures in a short note.
 */
import type { Row } from './context.js';

function note(row: Row): string {
  const n = row.notes as Record<string, any>;
  const parts: string[] = [];
  if (n.non2xxPercent !== undefined) parts.push(`non-2xx ${n.non2xxPercent}%`);
  if (n.bodyBytes !== undefined && row.target === 'ceiling') parts.push(`body ${Math.round(n.bodyBytes)} B`);
  if (n.soldOutSeconds !== undefined)
    parts.push(n.soldOutSeconds === null ? 'not sold out' : `sold out in ${n.soldOutSeconds} s`);
  if (n.allConfirmedSeconds !== undefined)
    parts.push(`${n.seatsConfirmed} seats paid by ${n.allConfirmedSeconds} s`);
  if (n.check) parts.push(`sold twice ${n.check.seatsGrantedTwice}, unaccounted ${n.check.unaccounted}`);
  if (n.bookingsPerSecond !== undefined)
    parts.push(`${n.bookingsPerSecond} bookings/s, booking p99 ${n.bookingP99Ms} ms`);
  if (n.subscribers !== undefined)
    parts.push(`${n.subscribers} subscribers, ${n.changesPerSecond} changes/s, drops ${n.drops}`);
  if (n.journal)
    parts.push(`${n.journal.commandsPerCommit} cmds/commit, commit ${n.journal.meanCommitMs} ms`);
  if (n.seatsLockedTwice !== undefined) parts.push(`seats locked twice: ${n.seatsLockedTwice}`);
  else if (n.doubleGrants !== undefined) parts.push(`double grants ${n.doubleGrants}`);
  return parts.join('; ');
}

export function table(rows: Row[]): string {
  const header = [
    'scenario',
    'target',
    'req/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'non-2xx',
    'x ceiling',
    'cpu ms/req',
    'notes',
  ];
  const lines = rows.map((r) => [
    r.scenario,
    r.target,
    String(r.requestsPerSecond),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    String(r.errors),
    String(r.non2xx),
    r.ratio === undefined ? '' : r.ratio.toFixed(2),
    r.cpuMsPerRequest === undefined ? '' : r.cpuMsPerRequest.toFixed(3),
    note(r),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) =>
    `| ${cells.map((c, i) => (i >= 2 && i <= 8 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i >= 2 && i <= 8 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [format(header), rule, ...lines.map(format)].join('\n');
}

/** The issue's targets for PostgreSQL over SQLite, by scenario. */
const STORE_TARGETS: Record<string, number> = { '2 hold + release': 0.6, '4 full booking': 0.5 };

/**
 * With `--store both`: each scenario's service on PostgreSQL against SQLite. `pg/sqlite` is req/s over
 * req/s; `pg/sqlite by ceiling` divides each store's figure by the ceiling of its own pass first, which
 * takes out the machine's drift between the passes. CPU is the service's, plus the PostgreSQL server's.
 */
export function storeComparison(rows: Row[]): { table: string; rows: Record<string, unknown>[] } {
  const out: Record<string, unknown>[] = [];
  for (const scenario of [...new Set(rows.map((r) => r.scenario))]) {
    const of = (store: string) =>
      rows.find((r) => r.scenario === scenario && r.target === `service, ${store}`);
    const sqlite = of('sqlite');
    const postgres = of('postgres');
    if (!sqlite || !postgres) continue;
    const byRatio =
      sqlite.ratio && postgres.ratio ? Math.round((postgres.ratio / sqlite.ratio) * 100) / 100 : undefined;
    const n = (row: Row) => row.notes as Record<string, any>;
    out.push({
      scenario,
      sqliteRequestsPerSecond: sqlite.requestsPerSecond,
      postgresRequestsPerSecond: postgres.requestsPerSecond,
      ratio: Math.round((postgres.requestsPerSecond / Math.max(1, sqlite.requestsPerSecond)) * 100) / 100,
      ratioByCeiling: byRatio,
      target: STORE_TARGETS[scenario],
      sqliteCpuMsPerRequest: sqlite.cpuMsPerRequest,
      postgresCpuMsPerRequest: postgres.cpuMsPerRequest,
      postgresServerCpuMsPerRequest: n(postgres).pgCpuMsPerRequest,
      sqliteBookingsPerSecond: n(sqlite).bookingsPerSecond,
      postgresBookingsPerSecond: n(postgres).bookingsPerSecond,
    });
  }
  const header = [
    'scenario',
    'sqlite req/s',
    'pg req/s',
    'pg/sqlite',
    'by ceiling',
    'target',
    'sqlite cpu ms/req',
    'pg cpu ms/req (server)',
    'bookings/s sqlite, pg',
  ];
  const fmt = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  const lines = out.map((r) => [
    fmt(r.scenario),
    fmt(r.sqliteRequestsPerSecond),
    fmt(r.postgresRequestsPerSecond),
    fmt(r.ratio),
    fmt(r.ratioByCeiling),
    r.target === undefined ? '' : `≥ ${r.target}`,
    fmt(r.sqliteCpuMsPerRequest),
    `${fmt(r.postgresCpuMsPerRequest)} (${fmt(r.postgresServerCpuMsPerRequest)})`,
    r.sqliteBookingsPerSecond === undefined
      ? ''
      : `${r.sqliteBookingsPerSecond}, ${r.postgresBookingsPerSecond}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return { table: [format(header), rule, ...lines.map(format)].join('\n'), rows: out };
}
