/**
 * What the Docker image runs, without Docker: the compiled build (`tsc -p tsconfig.build.json`) started
 * as `node dist/src/main.js` from a directory that holds only the build, package.json and the production
 * dependencies (`npm ls --omit=dev`). Its worker threads (shards, QR drawing, mail) must start from
 * JavaScript, it must serve a hold and a paid booking's ticket, and it must stop cleanly on SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureWebBuild } from '../e2e/browser.js';
import { ADMIN_ENV, createShow, GOOD_CARD, newUser } from '../helpers/catalog.js';
import { REPO, spawnService } from '../helpers/process.js';
import { client } from '../helpers/server.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-prod-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Links the top-level production packages (their own nested node_modules come with them). */
function linkProductionDependencies(target: string): string[] {
  const listed = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: REPO,
    encoding: 'utf8',
  });
  const top = listed
    .split('\n')
    .map((p) => path.relative(REPO, p.trim()))
    .filter(
      (rel) =>
        rel.startsWith('node_modules/') && !rel.slice('node_modules/'.length).includes('node_modules/'),
    );
  for (const rel of new Set(top)) {
    const link = path.join(target, rel);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(REPO, rel), link, 'dir');
  }
  return top;
}

describe('production build', () => {
  // tsc alone takes ~20 s on this 2-core machine, and longer while other test files run beside it.
  it('starts with production dependencies only, serves a hold and a ticket, and stops on SIGTERM', {
    timeout: 240_000,
  }, async () => {
    execFileSync(
      process.execPath,
      [
        path.join(REPO, 'node_modules/typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        path.join(root, 'dist'),
      ],
      {
        cwd: REPO,
        stdio: 'inherit',
      },
    );
    // `npm run build` also builds the web app into dist/web, which the image ships with dist.
    ensureWebBuild();
    fs.cpSync(path.join(REPO, 'dist/web'), path.join(root, 'dist/web'), { recursive: true });
    fs.copyFileSync(path.join(REPO, 'package.json'), path.join(root, 'package.json'));
    const packages = linkProductionDependencies(root);
    expect(packages).toContain('node_modules/better-sqlite3');
    expect(packages).not.toContain('node_modules/tsx');
    expect(fs.existsSync(path.join(root, 'node_modules/tsx'))).toBe(false);

    const service = await spawnService({
      command: ['dist/src/main.js'],
      cwd: root,
      env: {
        ...ADMIN_ENV,
        NODE_ENV: 'production',
        DATA_DIR: path.join(root, 'data'),
        SEED_DEMO: 'false',
        WORKERS: '1',
      },
    });
    try {
      const api = client(service.url);
      expect((await api('GET', '/readyz')).status).toBe(200);
      const page = await api('GET', '/shows/any', { headers: { accept: 'text/html' } });
      expect(page.status).toBe(200);
      expect(page.body).toContain('<div id="app"></div>');
      const { showId } = await createShow(api);
      const user = await newUser(api);
      const hold = await api('POST', `/api/shows/${showId}/holds`, {
        body: { seats: ['A1'] },
        token: user.token,
      });
      expect(hold.status).toBe(201);
      expect((await api('GET', `/api/shows/${showId}/seats`)).body.counts.held).toBe(1);
      const created = await api('POST', '/api/bookings', {
        body: { holdId: hold.body.hold.id, paymentMethod: 'card' },
        token: user.token,
      });
      expect(created.status).toBe(201);
      const paid = await api('POST', '/api/payments', {
        body: { bookingId: created.body.booking.id, method: 'card', card: GOOD_CARD },
        token: user.token,
      });
      expect(paid.status).toBe(200);
      const ticket = await api('GET', `/api/bookings/${created.body.booking.id}/ticket`, {
        token: user.token,
      });
      expect(ticket.status).toBe(200);
      expect(ticket.body.ticket.qr).toMatch(/^data:image\/svg\+xml;base64,/);
      // The confirmation email is rendered and sent by the mail thread, which must start from JavaScript.
      const deadline = Date.now() + 30_000;
      let email: { status: string } | undefined;
      while (email?.status !== 'sent' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        const listed = await api('GET', '/api/me/notifications', { token: user.token });
        email = (listed.body.notifications as { channel: string; template: string; status: string }[]).find(
          (n) => n.channel === 'email' && n.template === 'booking_confirmed',
        );
      }
      expect(email?.status).toBe('sent');
    } finally {
      service.child.kill('SIGTERM');
    }
    expect((await service.exited).code).toBe(0);
  });
});
