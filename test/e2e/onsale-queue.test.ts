/**
 * The waiting room in the web app, in a real browser over the real server: a hold on a show under an
 * on-sale puts the buyer in its queue (place and wait shown, checked against axe-core's WCAG rules),
 * and once admitted the same selection is held with the admission token. The service's clock is
 * injected and the admission clock stepped by hand; the page finds out by polling, as it does live.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ENV, createShow, login, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { expectAccessible } from './axe.js';
import {
  CHROMIUM_SKIP_REASON,
  type Chromium,
  ensureWebBuild,
  hasChromium,
  launchChromium,
} from './browser.js';

if (!hasChromium) console.warn(CHROMIUM_SKIP_REASON);

const HOUR_MS = 3_600_000;
const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });
const seat = (page: Page, label: string) => page.getByRole('button', { name: new RegExp(`^${label},`) });

describe.skipIf(!hasChromium)('the waiting room in the web app', () => {
  let server: TestServer;
  let browser: Chromium;
  let nowMs = Date.now();

  beforeAll(async () => {
    ensureWebBuild();
    server = await startTestServer({ ...ADMIN_ENV, JWT_TTL_SECONDS: '604800' }, { now: () => nowMs });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.destroy();
  });

  it('queues a buyer whose hold needs an admission, then holds their seats once admitted', async () => {
    const adminToken = await login(server.api, ADMIN.email, ADMIN.password);
    const { showId } = await createShow(server.api, { adminToken });
    const created = await server.api('POST', '/api/admin/onsales', {
      token: adminToken,
      body: { showIds: [showId], opensAt: new Date(nowMs + HOUR_MS).toISOString(), admitPerMinute: 60 },
    });
    expect(created.status).toBe(201);
    const user = await newUser(server.api);
    const context = await browser.newContext({ token: user.token });
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/shows/${showId}`);
      await seat(page, 'A1').click();
      await page.getByRole('button', { name: 'Hold seats' }).click();
      const panel = page.getByRole('region', { name: 'You are in the queue' });
      await eventually(() => panel.textContent()).toContain(
        'Everyone who joined before it opens gets a random place',
      );
      await expectAccessible(page, 'seat map, waiting in the queue');
      nowMs += HOUR_MS;
      await server.deps.onsales.tick();
      nowMs += 1_000;
      await server.deps.onsales.tick();
      await eventually(() => page.getByRole('status').allTextContents()).toContain(
        'It is your turn: hold your seats now.',
      );
      await page.getByRole('button', { name: 'Hold seats' }).click();
      await eventually(() => page.getByRole('status').allTextContents()).toContainEqual(
        expect.stringContaining('Held A1 for you'),
      );
    } finally {
      await context.close();
    }
  });
});
