/**
 * Debian's chromium driven by playwright-core (its own browser download does not work here), with a
 * fresh profile per launch. `hasChromium` lets a suite skip cleanly on a machine without it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { REPO } from '../helpers/process.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const hasChromium = fs.existsSync(CHROMIUM_PATH);
export const CHROMIUM_SKIP_REASON = `${CHROMIUM_PATH} is not installed (apt-get install chromium): browser tests skipped`;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Chromium {
  /** A new, isolated context (own storage): a second browser for live-update tests. */
  newContext(options?: { token?: string; width?: number }): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Chromium> {
  // Playwright gives every launch a fresh profile directory of its own and deletes it on close.
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, headless: true });
  return {
    async newContext(options = {}) {
      const context = await browser.newContext({
        viewport: { width: options.width ?? 1100, height: 900 },
        locale: 'en-IN',
      });
      if (options.token)
        await context.addInitScript((token) => localStorage.setItem('boxoffice.token', token), options.token);
      return context;
    },
    async close() {
      await browser.close();
    },
  };
}

/** Builds the web app when its sources changed since the last build (a no-op otherwise). */
export function ensureWebBuild(): void {
  execFileSync(process.execPath, [path.join(REPO, 'scripts/build-web.mjs'), '--if-stale'], {
    cwd: REPO,
    stdio: 'inherit',
  });
}

/**
 * Where the tests' screenshots go: the README's own (docs/screenshots/) with UPDATE_SCREENSHOTS=1, else
 * dist/screenshots/, so that an ordinary test run takes them all the same but leaves the tree clean.
 */
export const SCREENSHOT_DIR =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? path.join(REPO, 'docs', 'screenshots')
    : path.join(REPO, 'dist', 'screenshots');

/** A full-page screenshot named for the page it shows (`seat-map` → seat-map.png). */
export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({
    path: path.join(SCREENSHOT_DIR, `${name}.png`),
    fullPage: true,
    animations: 'disabled',
    caret: 'hide',
  });
}
