/**
 * The kit's command line: every run is bounded, and what is out of bounds is refused with a message
 * naming the option.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS, parseLoadOptions } from '../../bench/load/options.js';

const base = ['--url', 'http://127.0.0.1:3000/some/path', '--scenario', 'seat-maps'];

describe('npm run load options', () => {
  it('defaults to a bounded run: 10 connections for 10 s, the URL reduced to its origin', () => {
    const options = parseLoadOptions(base);
    expect(options).toMatchObject({
      url: 'http://127.0.0.1:3000',
      connections: 10,
      seconds: 10,
      warmupSeconds: 0,
    });
    expect(options.requests).toBeUndefined();
  });

  it('gives a request-count run a deadline', () => {
    const options = parseLoadOptions([...base, '--requests', '500']);
    expect(options.requests).toBe(500);
    expect(options.seconds).toBeGreaterThan(0);
    expect(options.seconds).toBeLessThanOrEqual(LIMITS.seconds);
  });

  it.each([
    [['--duration', String(LIMITS.seconds + 1)], '--duration must be a number from 1 to 600'],
    [['--connections', '0'], '--connections must be'],
    [['--requests', String(LIMITS.requests + 1)], '--requests must be'],
    [['--rate', '0'], '--rate must be'],
    [['--users', String(LIMITS.users + 1)], '--users must be'],
    [['--subscribers', String(LIMITS.subscribers + 1)], '--subscribers must be'],
    [['--mix', '1,2'], '--mix must be three weights'],
    [['--mix', '0,0,0'], '--mix must be three weights'],
  ])('refuses %j', (extra, message) => {
    expect(() => parseLoadOptions([...base, ...extra])).toThrow(message);
  });

  it('needs a URL and a known scenario', () => {
    expect(() => parseLoadOptions(['--scenario', 'seat-maps'])).toThrow('--url is required');
    expect(() => parseLoadOptions(['--url', 'ftp://x', '--scenario', 'seat-maps'])).toThrow('http or https');
    expect(() => parseLoadOptions(['--url', 'http://x', '--scenario', 'everything'])).toThrow(
      '--scenario must be',
    );
  });

  it('takes the admin from the environment unless given, and keeps stdout clean under --json', () => {
    const env = { LOAD_ADMIN_EMAIL: 'a@example.com', LOAD_ADMIN_PASSWORD: 'secret-1' };
    const options = parseLoadOptions([...base, '--json'], env, false);
    expect(options).toMatchObject({ adminEmail: 'a@example.com', adminPassword: 'secret-1', isJson: true });
    expect(options.isProgressShown).toBe(false);
    expect(parseLoadOptions([...base, '--admin-email', 'b@example.com'], env).adminEmail).toBe(
      'b@example.com',
    );
  });
});
