/**
 * `npm run bench -- web [--runs 5] [--deltas 20] [--json]`: the web app's seat map page in Debian's
 * chromium (playwright-core, headless, as the e2e tests drive it) over the real service on 127.0.0.1,
 * on a show of 500 seats. Each run opens the page in a fresh browser context (empty cache) and reports:
 *
 * - JavaScript shipped: the compressed bytes of every script the page loaded (Resource Timing's
 *   `encodedBodySize`; the service sends them gzipped), and their size once unzipped.
 * - Time to interactive: from navigation start (`performance.timeOrigin`) until the first seat button is
 *   in the document. Preact attaches a seat's handlers as it inserts the button, so from then a click or
 *   a key on the map works; the whole map is one render, so it is also when all 500 seats are there.
 * - Render of the 500-seat map: from the moment the later of the page's two API answers (the show and
 *   its seat map) was fully received until the 500 seat buttons are in the document.
 * - Delta applied: a second user holds a seat, then releases it, through the API; from the moment the
 *   feed's delta message reaches the page until that seat's button names its new state (a
 *   MutationObserver on the buttons' `aria-label`). Both ends are read on the page's own clock.
 *
 * Nothing here asserts a time: it prints a table (and JSON with --json).
 */

import { ensureWebBuild, hasChromium, launchChromium } from '../test/e2e/browser.js';
import { ADMIN_ENV, createShow, newUser } from '../test/helpers/catalog.js';
import { startTestServer } from '../test/helpers/server.js';

const option = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) || fallback : fallback;
};
const RUNS = Math.min(option('runs', 5), 50);
const DELTAS = Math.min(option('deltas', 20), 200);
const asJson = process.argv.includes('--json');
const SEAT_COUNT = 500;
const WAIT_MS = 15_000;

if (!hasChromium) {
  console.error('bench web: /usr/bin/chromium is not installed (apt-get install chromium)');
  process.exit(2);
}

/** 20 rows of 25 seats with two aisles, three categories: a big multiplex screen. */
const ROWS = 'ABCDEFGHJKLMNOPQRSTU'.split('');
const layout = {
  rows: ROWS.map((label, i) => ({
    label,
    category: i < 8 ? 'CLASSIC' : i < 16 ? 'PRIME' : 'RECLINER',
    seats: 25,
    aislesAfter: [5, 20],
  })),
};

/** Runs in the page before its own scripts: marks when seats appear and when deltas arrive/apply. */
function instrument(seatCount: number) {
  const w = window as unknown as Record<string, unknown>;
  const marks = {
    firstSeat: -1,
    allSeats: -1,
    deltaAt: {} as Record<string, number>,
    appliedAt: {} as Record<string, number>,
  };
  w.__bench = marks;
  const NativeSocket = WebSocket;
  w.WebSocket = class extends NativeSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      // Registered before the app sets onmessage, so it runs first: the arrival time of each delta.
      this.addEventListener('message', (event) => {
        const message = JSON.parse(String(event.data)) as {
          type: string;
          changes?: { id: string; status: string }[];
        };
        if (message.type !== 'delta') return;
        for (const change of message.changes ?? [])
          marks.deltaAt[`${change.id}:${change.status}`] = performance.now();
      });
    }
  };
  new MutationObserver((records) => {
    const now = performance.now();
    if (marks.allSeats < 0) {
      const seats = document.querySelectorAll('button[data-seat]').length;
      if (seats > 0 && marks.firstSeat < 0) marks.firstSeat = now;
      if (seats >= seatCount) marks.allSeats = now;
    }
    for (const record of records) {
      const el = record.target as HTMLElement;
      if (record.type !== 'attributes' || !el.dataset?.seat) continue;
      const status = /, (available|held)$/.exec(el.getAttribute('aria-label') ?? '')?.[1];
      if (status) marks.appliedAt[`${el.dataset.seat}:${status}`] ??= now;
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-label'] });
}

interface Run {
  jsGzipBytes: number;
  jsBytes: number;
  scripts: number;
  interactiveMs: number;
  renderMs: number;
  deltaMs: number[];
}

// The in-process service's workers and timers are unref'd (a test runner keeps the loop alive): without
// a ref'd handle of our own, node could exit while awaiting a worker's reply.
const keepAlive = setInterval(() => {}, 1_000);
ensureWebBuild(); // before the service starts: it loads the built assets once, at start
const server = await startTestServer({ ...ADMIN_ENV, LOG_LEVEL: 'silent' });
const browser = await launchChromium();
const results: Run[] = [];
try {
  const { showId } = await createShow(server.api, {
    layout,
    prices: { CLASSIC: 24000, PRIME: 35000, RECLINER: 62000 },
  });
  const seats = (await server.api('GET', `/api/shows/${showId}/seats`)).body.seats as { id: string }[];
  if (seats.length !== SEAT_COUNT) throw new Error(`the show has ${seats.length} seats, not ${SEAT_COUNT}`);
  const other = await newUser(server.api);

  for (let run = 0; run < RUNS; run++) {
    const context = await browser.newContext();
    try {
      await context.addInitScript(instrument, SEAT_COUNT);
      const page = await context.newPage();
      await page.goto(`${server.url}/shows/${showId}`);
      await page.waitForFunction(() => (window as any).__bench.allSeats > 0, undefined, { timeout: WAIT_MS });
      await page.getByText('Seats update live.').waitFor({ timeout: WAIT_MS });

      const loaded = await page.evaluate(() => {
        const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
        const scripts = resources.filter((r) => new URL(r.name).pathname.endsWith('.js'));
        const apis = resources.filter((r) => /\/api\/shows\/[^/]+(\/seats)?$/.test(new URL(r.name).pathname));
        const marks = (window as any).__bench;
        return {
          jsGzipBytes: scripts.reduce((sum, r) => sum + r.encodedBodySize, 0),
          jsBytes: scripts.reduce((sum, r) => sum + r.decodedBodySize, 0),
          scripts: scripts.length,
          interactiveMs: marks.firstSeat as number,
          renderMs: (marks.allSeats as number) - Math.max(...apis.map((r) => r.responseEnd)),
          apiCalls: apis.length,
        };
      });
      if (loaded.apiCalls !== 2)
        throw new Error(`expected the show and its seat map, saw ${loaded.apiCalls} calls`);

      // Seats away from row A's first seat, one at a time: held by another user, then released.
      const deltaMs: number[] = [];
      for (let i = 0; i < DELTAS; i++) {
        const seat = seats[(i * 37 + 60) % SEAT_COUNT]!.id;
        const held = await server.api('POST', `/api/shows/${showId}/holds`, {
          body: { seats: [seat] },
          token: other.token,
          headers: { 'idempotency-key': `bench-${run}-${i}-${Math.random()}` },
        });
        if (held.status !== 201) throw new Error(`hold ${seat}: ${held.status} ${JSON.stringify(held.body)}`);
        for (const [status, act] of [
          ['held', async () => {}],
          [
            'available',
            async () => {
              const res = await server.api('DELETE', `/api/holds/${held.body.hold.id}`, {
                token: other.token,
              });
              if (res.status >= 300) throw new Error(`release ${seat}: ${res.status}`);
            },
          ],
        ] as const) {
          await act();
          const key = `${seat}:${status}`;
          await page.waitForFunction(
            (k) =>
              (window as any).__bench.appliedAt[k] !== undefined &&
              (window as any).__bench.deltaAt[k] !== undefined,
            key,
            { timeout: WAIT_MS },
          );
          deltaMs.push(
            await page.evaluate(
              (k) => (window as any).__bench.appliedAt[k] - (window as any).__bench.deltaAt[k],
              key,
            ),
          );
          // The next change starts clean: forget this one's marks (a seat comes back in a later run).
          await page.evaluate((k) => {
            delete (window as any).__bench.appliedAt[k];
            delete (window as any).__bench.deltaAt[k];
          }, key);
        }
      }
      const { apiCalls: _, ...figures } = loaded;
      results.push({ ...figures, deltaMs });
    } finally {
      await context.close();
    }
  }
} finally {
  await browser.close();
  await server.destroy();
  clearInterval(keepAlive);
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};
const spread = (xs: number[]) =>
  `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
const deltas = results.flatMap((r) => r.deltaMs);
const sortedDeltas = [...deltas].sort((a, b) => a - b);
const summary = {
  runs: RUNS,
  seats: SEAT_COUNT,
  jsGzipKiB: results[0]!.jsGzipBytes / 1024,
  jsKiB: results[0]!.jsBytes / 1024,
  scripts: results[0]!.scripts,
  interactiveMs: {
    median: median(results.map((r) => r.interactiveMs)),
    all: results.map((r) => r.interactiveMs),
  },
  renderMs: { median: median(results.map((r) => r.renderMs)), all: results.map((r) => r.renderMs) },
  deltaMs: {
    count: deltas.length,
    median: median(deltas),
    p95: sortedDeltas[Math.floor(sortedDeltas.length * 0.95)]!,
    max: sortedDeltas[sortedDeltas.length - 1]!,
  },
};
if (asJson) console.log(JSON.stringify(summary, null, 2));
else {
  console.log(
    `web app, seat map page of a ${SEAT_COUNT}-seat show, ${RUNS} cold loads in chromium (median (min–max))`,
  );
  console.table({
    'JavaScript shipped, gzipped': `${summary.jsGzipKiB.toFixed(1)} KiB in ${summary.scripts} file(s) (${summary.jsKiB.toFixed(1)} KiB unzipped)`,
    'time to interactive (navigation → first seat button)': `${spread(results.map((r) => r.interactiveMs))} ms`,
    [`render of the ${SEAT_COUNT}-seat map (data in → seats in DOM)`]: `${spread(results.map((r) => r.renderMs))} ms`,
    [`delta applied (feed message → seat's name), ${deltas.length} changes`]: `median ${summary.deltaMs.median.toFixed(1)} ms, p95 ${summary.deltaMs.p95.toFixed(1)} ms, max ${summary.deltaMs.max.toFixed(1)} ms`,
  });
}
