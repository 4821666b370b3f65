/**
 * The load-testing kit (`npm run load`) against a real server over real sockets: short runs of every
 * scenario, bounded by duration, request count or sell-out, with the report's figures and the
 * correctness check read back through the API. No assertion here is about time.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonClient } from '../../bench/http/client.js';
import { createShows } from '../../bench/http/fixtures.js';
import { parseLoadOptions } from '../../bench/load/options.js';
import { html, table } from '../../bench/load/report.js';
import { runLoadTest } from '../../bench/load/run.js';
import { judge } from '../../bench/load/verify.js';
import { REPO } from '../helpers/process.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ADMIN = { ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: 'admin-password-1' };
const ADMIN_ENV = { LOAD_ADMIN_EMAIL: ADMIN.ADMIN_EMAIL, LOAD_ADMIN_PASSWORD: ADMIN.ADMIN_PASSWORD };

let server: TestServer;
/** [reads and holds, hot show, bookings, mixed] */
let shows: string[];

function options(scenario: string, show: string, extra: string[] = []) {
  const args = ['--url', server.url, '--scenario', scenario, '--show', show, '--quiet'];
  return parseLoadOptions(
    [...args, '--duration', '1', '--connections', '2', '--users', '40', ...extra],
    ADMIN_ENV,
  );
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/load/cli.ts'), ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH, ...ADMIN_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += String(d);
  });
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  server = await startTestServer({ ...ADMIN, LOAD_TEST_MODE: 'true' });
  const client = new JsonClient(server.url, 4);
  const login = await client.request('POST', '/api/login', {
    body: { email: ADMIN.ADMIN_EMAIL, password: ADMIN.ADMIN_PASSWORD },
  });
  shows = await createShows(client, login.body.token, 4);
  client.close();
});
afterAll(() => server.destroy());

async function adminToken(target: TestServer = server): Promise<string> {
  const login = await target.api('POST', '/api/login', {
    body: { email: ADMIN.ADMIN_EMAIL, password: ADMIN.ADMIN_PASSWORD },
  });
  return login.body.token;
}

/** Takes every seat of `showId` off sale but the first `free`, through the admin API. */
async function leaveFree(showId: string, free: number, target: TestServer = server): Promise<void> {
  const map = await target.api('GET', `/api/shows/${showId}/seats`);
  const seats = (map.body.seats as { id: string }[]).slice(free).map((s) => s.id);
  const blocked = await target.api('POST', `/api/admin/shows/${showId}/block`, {
    token: await adminToken(target),
    body: { seats },
  });
  expect(blocked.status).toBe(200);
}

describe('npm run load', () => {
  it('seat-maps: reads for the duration, every response a 200, with a timeline and a histogram', async () => {
    const report = await runLoadTest(options('seat-maps', shows[0]!));
    expect(report.stoppedBecause).toBe('duration');
    expect(report.requests).toBeGreaterThan(0);
    expect(report.statuses).toEqual({ 200: report.requests });
    expect(report.steps['seat-map']!.latencyMs.count).toBe(report.requests);
    expect(report.timeline.reduce((n, p) => n + p.count, 0)).toBe(report.requests);
    expect(report.histogram.reduce((n, b) => n + b.count, 0)).toBe(report.requests);
    expect(report.latencyMs.p50Ms).toBeLessThanOrEqual(report.latencyMs.p99Ms);
  });

  it('stops after --requests responses', async () => {
    const report = await runLoadTest(options('seat-maps', shows[0]!, ['--requests', '30']));
    expect(report.stoppedBecause).toBe('requests');
    expect(report.requests).toBe(30);
  });

  it('holds to --rate over all connections', async () => {
    const report = await runLoadTest(options('seat-maps', shows[0]!, ['--rate', '10', '--connections', '2']));
    expect(report.requests).toBeGreaterThan(0);
    // 10/s for a 1 s run; autocannon paces per connection per second, so allow one second's more.
    expect(report.requests).toBeLessThanOrEqual(20);
  });

  it('warms up with seat-map reads it does not count', async () => {
    const served = async () => {
      const text = (await server.api('GET', '/metrics')).body as string;
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('boxoffice_http_request_duration_seconds_count') &&
            l.includes('seats"') &&
            l.includes('status="200"'),
        );
      return Number(line?.split(' ').pop() ?? 0);
    };
    const before = await served();
    const report = await runLoadTest(options('seat-maps', shows[0]!, ['--warmup', '1']));
    const after = await served();
    expect(report.requests).toBeGreaterThan(0);
    // The set-up reads the map once; everything else above the report's count is the warm-up.
    expect(after - before - report.requests).toBeGreaterThan(10);
  });

  it('hold-release: holds and releases as different users, no seat granted while still held', async () => {
    const report = await runLoadTest(options('hold-release', shows[0]!));
    expect(report.steps.hold!.statuses[201]).toBeGreaterThan(0);
    expect(report.steps.release!.statuses[204]).toBeGreaterThan(0);
    expect(report.holds!.granted).toBe(report.steps.hold!.statuses[201]);
    expect(report.holds!.grantedTwice).toBe(0);
    const map = await server.api('GET', `/api/shows/${shows[0]}/seats`);
    expect(map.body.counts.booked).toBe(0);
  });

  it('hot-show: runs until the show is sold out, then checks every booking through the API', async () => {
    const report = await runLoadTest(
      options('hot-show', shows[1]!, ['--duration', '60', '--connections', '4', '--users', '200']),
    );
    expect(report.stoppedBecause).toBe('sold out');
    expect(report.steps.hold!.statuses[409]).toBeGreaterThan(0);
    expect(report.errorKinds['409 SEATS_UNAVAILABLE']).toBe(report.steps.hold!.statuses[409]);
    expect(report.check).toMatchObject({
      isOk: true,
      seatsInTwoBookings: 0,
      seatsMissingFromMap: 0,
      seatsGrantedTwice: 0,
    });
    expect(report.check!.bookingsChecked).toBe(report.check!.bookingsConfirmed);
    expect(report.check!.bookingsConfirmed).toBe(report.steps.pay!.statuses[200]);
    const map = await server.api('GET', `/api/shows/${shows[1]}/seats`);
    expect(map.body.counts.available).toBe(0);
    expect(map.body.counts.booked).toBe(300);
  });

  it('booking: hold, book, pay and fetch the ticket until the seats run out, then the bookings check out', async () => {
    // A show with 12 free seats: the run ends by running out of seats, so no journey is cut short by
    // the clock and every paid booking has had its ticket asked for.
    await leaveFree(shows[2]!, 12);
    const report = await runLoadTest(
      options('booking', shows[2]!, ['--duration', '60', '--min-free-seats', '1']),
    );
    expect(report.stoppedBecause).toBe('out of seats');
    const paid = report.steps.pay!.statuses[200]!;
    expect(paid).toBeGreaterThan(0);
    expect(report.steps.ticket!.statuses).toEqual({ 200: paid });
    expect(report.check).toMatchObject({ isOk: true, bookingsConfirmed: paid, bookingsChecked: paid });
    const map = await server.api('GET', `/api/shows/${shows[2]}/seats`);
    expect(map.body.counts.booked).toBe(paid);
  });

  it('mixed: blends seat-map reads, holds and bookings by weight', async () => {
    const report = await runLoadTest(
      options('mixed', shows[3]!, ['--mix', '50,30,20', '--connections', '3']),
    );
    expect(report.steps['seat-map']!.latencyMs.count).toBeGreaterThan(0);
    expect(report.steps.hold!.latencyMs.count).toBeGreaterThan(0);
    expect(report.check?.isOk).toBe(true);
    expect(report.holds!.grantedTwice).toBe(0);
  });

  it('feed: WebSocket subscribers receive the holds’ deltas and the lag is measured', async () => {
    const report = await runLoadTest(options('feed', shows[0]!, ['--subscribers', '5']));
    expect(report.feed!.connected).toBe(5);
    expect(report.feed!.deliveries).toBeGreaterThan(0);
    expect(report.feed!.lagMs.count).toBeGreaterThan(0);
    expect(report.feed!.drops).toBe(0);
  });

  it('writes an HTML report with both charts as inline SVG and nothing fetched from elsewhere', async () => {
    const report = await runLoadTest(options('seat-maps', shows[0]!));
    const page = html(report);
    expect(page.match(/<svg /g)).toHaveLength(2);
    expect(page).toContain('Latency over time');
    expect(page).toContain('Latency histogram');
    expect(page).not.toMatch(/<script|<link|src=/);
    // The charts draw the run's own figures: one point per second per series, one bar per bucket.
    const series = [...page.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
    expect(series).toEqual([report.timeline.length, report.timeline.length, report.timeline.length]);
    const bars = [...page.matchAll(/<rect [^>]*><title>[^<]* ms: (\d+)<\/title>/g)].map((m) => Number(m[1]));
    expect(bars).toEqual(report.histogram.map((b) => b.count));
    expect(bars.reduce((n, c) => n + c, 0)).toBe(report.requests);
  });
});

describe('a target at its ordinary settings', () => {
  // Hold budget per address at 5 a minute (the default is 60): the kit is one address.
  let target: TestServer;
  /** Free seats: 250, 200, 10. */
  let catalog: string[];

  beforeAll(async () => {
    target = await startTestServer({ ...ADMIN, LOAD_TEST_MODE: 'true', HOLDS_PER_ADDRESS_PER_MINUTE: '5' });
    const client = new JsonClient(target.url, 4);
    catalog = await createShows(client, await adminToken(target), 3);
    client.close();
    for (const [i, free] of [250, 200, 10].entries()) await leaveFree(catalog[i]!, free, target);
  });
  afterAll(() => target.destroy());

  const run = (scenario: string, extra: string[]) =>
    parseLoadOptions(
      [
        '--url',
        target.url,
        '--scenario',
        scenario,
        '--quiet',
        '--connections',
        '2',
        '--users',
        '10',
        ...extra,
      ],
      ADMIN_ENV,
    );

  it('picks the shows with the most free seats from the public catalog, at least --min-free-seats', async () => {
    const report = await runLoadTest(
      run('seat-maps', ['--requests', '20', '--shows', '3', '--min-free-seats', '100']),
    );
    expect(report.options.shows).toEqual([catalog[0], catalog[1]]);
    const one = await runLoadTest(
      run('seat-maps', ['--requests', '20', '--shows', '1', '--min-free-seats', '5']),
    );
    expect(one.options.shows).toEqual([catalog[0]]);
  });

  it('says so when no show of the catalog has enough free seats', async () => {
    await expect(
      runLoadTest(run('seat-maps', ['--requests', '20', '--min-free-seats', '251'])),
    ).rejects.toThrow('no show with at least 251 available seats');
  });

  it('warns in the report when the target’s per-address hold limit answered the holds', async () => {
    const report = await runLoadTest(run('hold-release', ['--show', catalog[0]!, '--requests', '40']));
    expect(report.steps.hold!.statuses[201]).toBeLessThanOrEqual(5);
    expect(report.errorKinds['429 RATE_LIMITED']).toBeGreaterThan(0);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toContain('HOLDS_PER_ADDRESS_PER_MINUTE');
    expect(table(report)).toMatch(/^warning +\d+ responses were 429 RATE_LIMITED/m);
  });

  it('has no warning when nothing was limited', async () => {
    const report = await runLoadTest(run('seat-maps', ['--show', catalog[0]!, '--requests', '20']));
    expect(report.warnings).toEqual([]);
    expect(table(report)).not.toContain('warning');
  });
});

describe('the correctness check', () => {
  it('fails on a seat in two confirmed bookings and on a booked seat missing from the map', () => {
    const booking = (id: string, seats: string[]) => ({ id, showId: 's', seats, status: 'confirmed' });
    const check = judge(new Map([['s/A1', 2]]), 2, {
      bookings: [booking('b1', ['A1', 'A2']), booking('b2', ['A2', 'A3'])],
      maps: [
        {
          showId: 's',
          version: 1,
          counts: {},
          seats: [
            { id: 'A1', status: 'booked' },
            { id: 'A2', status: 'booked' },
            { id: 'A3', status: 'available' },
          ],
        },
      ],
    });
    expect(check).toMatchObject({
      isOk: false,
      seatsInTwoBookings: 1,
      seatsMissingFromMap: 1,
      seatsGrantedTwice: 1,
    });
  });
});

describe('the command line', () => {
  it('prints JSON, writes the HTML file and exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-cli-'));
    try {
      const file = path.join(dir, 'report.html');
      const run = await cli([
        '--url',
        server.url,
        '--scenario',
        'seat-maps',
        '--show',
        shows[0]!,
        '--duration',
        '1',
        '--connections',
        '2',
        '--json',
        '--html',
        file,
      ]);
      expect(run.stderr).not.toContain('load:');
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout).scenario).toBe('seat-maps');
      expect(fs.readFileSync(file, 'utf8')).toContain('<svg ');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints the table: req/s, latency percentiles, status counts, error kinds and the sold-twice check', async () => {
    const run = await cli([
      '--url',
      server.url,
      '--scenario',
      'hold-release',
      '--show',
      shows[0]!,
      '--requests',
      '20',
      '--connections',
      '2',
      '--users',
      '10',
      '--quiet',
    ]);
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? '';
    expect(row('requests')).toMatch(/^requests +20 \(\d+ req\/s\), 2 connections$/);
    expect(row('latency')).toMatch(/p50 [\d.]+ ms +p90 [\d.]+ ms +p99 [\d.]+ ms +max [\d.]+ ms/);
    expect(row('statuses')).toMatch(/201: \d+/);
    expect(row('errors')).toMatch(/non-2xx, \d+ transport/);
    expect(row('sold twice')).toMatch(/^sold twice +OK: 0 of \d+ holds granted a seat still held$/);
    expect(lines.some((l) => /^step +requests +p50 ms +p90 ms +p99 ms +max ms +statuses$/.test(l))).toBe(
      true,
    );
    expect(lines.some((l) => /^release +\d+/.test(l))).toBe(true);
  });

  it('stops at its deadline when the request count is out of reach, with progress lines on stderr meanwhile', async () => {
    // 20 requests/s cannot reach a million responses: the run ends 5 s past its 2 s duration. Off a
    // terminal the progress bar writes a line every 5 s, so this run writes at least one.
    const run = await cli([
      '--url',
      server.url,
      '--scenario',
      'seat-maps',
      '--show',
      shows[0]!,
      '--requests',
      '1000000',
      '--duration',
      '2',
      '--rate',
      '20',
      '--connections',
      '2',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^duration +[\d.]+ s, stopped: deadline$/m);
    const progress = run.stderr.split('\n').filter((l) => l.startsWith('['));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]).toMatch(/^\[=* *\] +\d+% +\d+s +\d+ req +\d+ err\/non-2xx +\d+ req\/s$/);
  });

  it('refuses out-of-bound options with exit 2 and the usage', async () => {
    const run = await cli(['--url', server.url, '--scenario', 'seat-maps', '--connections', '100000']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--connections must be a number from 1 to 1000');
    expect(run.stderr).toContain('usage: npm run load');
  });

  it('says so when the target has load-test mode off', async () => {
    const plain = await startTestServer(ADMIN);
    try {
      const run = await cli([
        '--url',
        plain.url,
        '--scenario',
        'hold-release',
        '--duration',
        '1',
        '--create-shows',
        '1',
      ]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('LOAD_TEST_MODE=true');
    } finally {
      await plain.destroy();
    }
  });
});
