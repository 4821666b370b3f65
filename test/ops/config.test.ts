/**
 * Configuration is read once from the environment and validated: defaults are the embedded ones, and a
 * bad value stops the process at start with a message naming the variable.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { REPO } from '../helpers/process.js';

describe('configuration', () => {
  it('defaults to the embedded setup: port 3000, ./data, 64 partitions, full sync, simulated payments', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      PARTITIONS: 64,
      JOURNAL_SYNC: 'full',
      PAYMENT_PROVIDER: 'simulated',
    });
    expect(config.dataDir).toBe(path.resolve('./data'));
    expect(config.WORKERS).toBeGreaterThanOrEqual(1);
    expect(config.REDIS_URL).toBeUndefined();
  });

  it.each([
    ['PORT', 'eighty'],
    ['WORKERS', '0'],
    ['JOURNAL_SYNC', 'sometimes'],
    ['JWT_SECRET', 'short'],
    ['REDIS_URL', 'not a url'],
    ['HOLD_TTL_SECONDS', '-5'],
  ])('names %s when it is bad', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it('refuses Stripe without its keys, and a hold maximum below the hold time', () => {
    expect(() => loadConfig({ PAYMENT_PROVIDER: 'stripe' })).toThrow(/STRIPE_SECRET_KEY/);
    expect(() => loadConfig({ HOLD_TTL_SECONDS: '600', HOLD_MAX_SECONDS: '300' })).toThrow(
      /HOLD_MAX_SECONDS/,
    );
  });

  it('stops the process with exit code 2 and the variable named', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/main.ts')], {
      env: { PATH: process.env.PATH, PORT: 'eighty' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/PORT/);
  });
});
