/**
 * @module bench/load/report
 * The run's report for people: a table for the terminal and a self-contained HTML page (inline SVG
 * charts of latency over time and the latency histogram, no script, no network: it opens offline).
 * The JSON report is the LoadReport itself.
 */
import type { HistogramEntries } from '../http/latency.js';
import type { LoadReport } from './run.js';

/** Latencies keep 10 µs units (bench/http/latency). */
const UNITS_PER_MS = 100;
/** Bucket upper bounds in ms, 1-2-5 steps: readable on a log axis from loopback to a slow WAN. */
const BUCKET_BOUNDS_MS = [
  0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000,
];

export interface HistogramBucket {
  /** Latencies up to this many ms (and above the previous bucket's bound); the last has Infinity. */
  upToMs: number;
  count: number;
}

export function histogramBuckets(entries: HistogramEntries): HistogramBucket[] {
  const buckets = [...BUCKET_BOUNDS_MS, Number.POSITIVE_INFINITY].map((upToMs) => ({ upToMs, count: 0 }));
  for (const [key, count] of entries) {
    const ms = key / UNITS_PER_MS;
    buckets.find((b) => ms <= b.upToMs)!.count += count;
  }
  // Trailing and leading empty buckets say nothing.
  const first = buckets.findIndex((b) => b.count > 0);
  const last = buckets.length - 1 - [...buckets].reverse().findIndex((b) => b.count > 0);
  return first < 0 ? [] : buckets.slice(first, last + 1);
}

const counts = (record: Record<string, number>) =>
  Object.entries(record)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ') || 'none';

const ms = (n: number) => `${n.toFixed(2)} ms`;

/** The verdict of the correctness check, in one line. */
export function checkLine(report: LoadReport): string | undefined {
  const c = report.check;
  if (c) {
    const verdict = c.isOk ? 'OK: no seat sold twice, every confirmed booking holds its seats' : 'FAILED';
    return `${verdict} (${c.bookingsChecked}/${c.bookingsConfirmed} bookings read back; in two bookings ${c.seatsInTwoBookings}, missing from the map ${c.seatsMissingFromMap}, granted twice ${c.seatsGrantedTwice}, not confirmed ${c.bookingsNotConfirmed})`;
  }
  if (report.holds)
    return `${report.holds.grantedTwice === 0 ? 'OK' : 'FAILED'}: ${report.holds.grantedTwice} of ${report.holds.granted} holds granted a seat still held`;
  return undefined;
}

export function table(report: LoadReport): string {
  const l = report.latencyMs;
  const rows: [string, string][] = [
    [
      'scenario',
      `${report.scenario} on ${report.url} (${report.options.shows.length} show(s), ${report.options.users} users)`,
    ],
    ['duration', `${report.seconds} s, stopped: ${report.stoppedBecause}`],
    [
      'requests',
      `${report.requests} (${report.requestsPerSecond} req/s), ${report.options.connections} connections`,
    ],
    ['latency', `p50 ${ms(l.p50Ms)}  p90 ${ms(l.p90Ms)}  p99 ${ms(l.p99Ms)}  max ${ms(l.maxMs)}`],
    ['statuses', counts(report.statuses)],
    ['errors', `${report.non2xx} non-2xx, ${report.transportErrors} transport; ${counts(report.errorKinds)}`],
  ];
  const verdict = checkLine(report);
  if (verdict) rows.push(['sold twice', verdict]);
  if (report.feed) {
    const f = report.feed;
    rows.push([
      'feed',
      `${f.connected}/${f.subscribers} subscribers, ${f.deliveries} deliveries, lag p50 ${ms(f.lagMs.p50Ms)} p99 ${ms(f.lagMs.p99Ms)} max ${ms(f.lagMs.maxMs)}, unmatched ${f.unmatched}, drops ${f.drops}`,
    ]);
  }
  for (const warning of report.warnings) rows.push(['warning', warning]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  const header = ['step', 'requests', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'statuses'];
  const steps = Object.entries(report.steps).map(([kind, s]) => [
    kind,
    String(s.latencyMs.count),
    s.latencyMs.p50Ms.toFixed(2),
    s.latencyMs.p90Ms.toFixed(2),
    s.latencyMs.p99Ms.toFixed(2),
    s.latencyMs.maxMs.toFixed(2),
    counts(s.statuses),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...steps.map((r) => r[i]!.length)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => (i > 0 && i < 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [...lines, '', format(header), ...steps.map(format)].join('\n');
}

// ---------------------------------------------------------------------------------------------------
// HTML: two inline SVG charts.

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const W = 720;
const H = 260;
const PAD = { left: 56, right: 16, top: 16, bottom: 36 };

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * step).find((v) => v >= value)!;
}

const SERIES = [
  { key: 'p50Ms', label: 'p50', color: '#2b7bb9' },
  { key: 'p99Ms', label: 'p99', color: '#e08a1e' },
  { key: 'maxMs', label: 'max', color: '#c0392b' },
] as const;

export function latencyOverTimeSvg(report: LoadReport): string {
  const points = report.timeline;
  const yMax = niceMax(Math.max(0, ...points.map((p) => p.maxMs)));
  const xMax = Math.max(1, points.length);
  const x = (second: number) => PAD.left + ((second + 0.5) / xMax) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  const lines = SERIES.map(
    (s) =>
      `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points.map((p) => `${x(p.second).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ')}"><title>${s.label}</title></polyline>`,
  );
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(
    (f) =>
      `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(f * yMax)}" y2="${y(f * yMax)}" stroke="#ddd"/><text x="${PAD.left - 6}" y="${y(f * yMax) + 4}" text-anchor="end">${round2(f * yMax)}</text>`,
  );
  const legend = SERIES.map(
    (s, i) => `<text x="${PAD.left + 10 + i * 70}" y="${PAD.top + 4}" fill="${s.color}">${s.label}</text>`,
  );
  return svg(
    'Latency over time (ms, per second of the run)',
    [...ticks, ...lines, ...legend, axisLabel(`seconds (0–${points.length})`)].join(''),
  );
}

export function histogramSvg(report: LoadReport): string {
  const buckets = report.histogram;
  const yMax = niceMax(Math.max(0, ...buckets.map((b) => b.count)));
  const slot = (W - PAD.left - PAD.right) / Math.max(1, buckets.length);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  const bars = buckets.map((b, i) => {
    const label = Number.isFinite(b.upToMs) ? `≤${b.upToMs}` : '>';
    return `<rect x="${(PAD.left + i * slot + 2).toFixed(1)}" y="${y(b.count).toFixed(1)}" width="${(slot - 4).toFixed(1)}" height="${(H - PAD.bottom - y(b.count)).toFixed(1)}" fill="#2b7bb9"><title>${label} ms: ${b.count}</title></rect><text x="${(PAD.left + (i + 0.5) * slot).toFixed(1)}" y="${H - PAD.bottom + 14}" text-anchor="middle">${label}</text>`;
  });
  const ticks = [0, 0.5, 1].map(
    (f) =>
      `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(f * yMax)}" y2="${y(f * yMax)}" stroke="#ddd"/><text x="${PAD.left - 6}" y="${y(f * yMax) + 4}" text-anchor="end">${Math.round(f * yMax)}</text>`,
  );
  return svg(
    'Latency histogram (responses per latency bucket, ms)',
    [...ticks, ...bars, axisLabel('latency (ms)')].join(''),
  );
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const axisLabel = (text: string) => `<text x="${W / 2}" y="${H - 4}" text-anchor="middle">${text}</text>`;

function svg(title: string, body: string): string {
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11" role="img" aria-label="${escapeHtml(title)}">${body}</svg></figure>`;
}

export function html(report: LoadReport): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BoxOffice load test: ${escapeHtml(report.scenario)}</title>
<style>body{font-family:sans-serif;max-width:760px;margin:2em auto;color:#222}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:.5em}</style>
</head><body>
<h1>Load test: ${escapeHtml(report.scenario)}</h1>
<p>${escapeHtml(report.url)}, started ${escapeHtml(report.startedAt)}</p>
<pre>${escapeHtml(table(report))}</pre>
${latencyOverTimeSvg(report)}
${histogramSvg(report)}
</body></html>
`;
}
