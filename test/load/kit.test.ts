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
import { html } from '../../bench/load/report.js';
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

  it('booking: hold, book, pay and fetch the ticket, then the bookings check out', async () => {
    const report = await runLoadTest(options('booking', shows[2]!));
    const paid = report.steps.pay!.statuses[200]!;
    expect(paid).toBeGreaterThan(0);
    // A journey still in flight when the duration ends is cut: its ticket may not have been asked for.
    expect(report.steps.ticket!.statuses[200]).toBeGreaterThan(0);
    expect(report.steps.ticket!.statuses[200]).toBeLessThanOrEqual(paid);
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
