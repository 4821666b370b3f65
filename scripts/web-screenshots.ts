/**
 * Takes the README's screenshots of the web app (docs/screenshots/) in Debian's chromium, against a
 * running service with the demo catalog: `npm start`, then `npx tsx scripts/web-screenshots.ts [url]`.
 */
import path from 'node:path';
import { launchChromium } from '../test/e2e/browser.js';

const base = process.argv[2] ?? 'http://127.0.0.1:3000';
const out = path.resolve(import.meta.dirname, '..', 'docs', 'screenshots');

const browser = await launchChromium();
try {
  for (const [width, suffix] of [
    [1100, ''],
    [390, '-phone'],
  ] as const) {
    const context = await browser.newContext({ width });
    const page = await context.newPage();
    await page.goto(`${base}/register`);
    await page.getByLabel('Name').fill('Screenshot User');
    await page.getByLabel('Email').fill(`shots-${Date.now()}-${width}@example.com`);
    await page.getByLabel('Password').fill('password-123');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByLabel('City').selectOption('Mumbai');
    await page.locator('.movie-card').first().waitFor();
    await page.screenshot({ path: path.join(out, `movies${suffix}.png`) });
    await page.locator('.movie-card a').first().click();
    await page.locator('.show-time').first().click();
    await page
      .getByRole('button', { name: /, available$/ })
      .first()
      .waitFor();
    const free = page.getByRole('button', { name: /, available$/ });
    const count = await free.count();
    await free.nth(Math.floor(count / 2)).click();
    await page.screenshot({ path: path.join(out, `seat-map${suffix}.png`), fullPage: true });
    if (suffix) continue;
    await page.getByRole('button', { name: 'Hold seats' }).click();
    await page.getByRole('link', { name: 'Continue to checkout' }).click();
    await page.getByRole('button', { name: 'Continue to payment' }).click();
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByLabel('Expiry (MM/YY)').fill('12/34');
    await page.getByLabel('CVC').fill('123');
    await page.screenshot({ path: path.join(out, 'checkout.png'), fullPage: true });
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.getByRole('img', { name: /Ticket QR code/ }).waitFor();
    await page.screenshot({ path: path.join(out, 'ticket.png'), fullPage: true });
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(`screenshots in ${out}`);
