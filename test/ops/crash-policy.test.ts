/**
 * On an exception nothing expected, the process logs it once at fatal level and exits non-zero for its
 * supervisor to restart it (docs/ARCHITECTURE.md, "When something unexpected throws").
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CHILD = path.join(import.meta.dirname, 'crash-policy-child.ts');

async function runChild(how: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, how], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH },
  });
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += String(d);
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string }; origin?: string });
  return { code, fatal: lines.filter((l) => l.level === 60) };
}

describe('an unexpected exception', () => {
  it('is logged at fatal level with the error, and the process exits 1', async () => {
    const { code, fatal } = await runChild('throw');
    expect(code).toBe(1);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.err?.message).toBe('boom from a timer');
    expect(fatal[0]!.origin).toBe('uncaughtException');
  });

  it('includes an unhandled rejection', async () => {
    const { code, fatal } = await runChild('reject');
    expect(code).toBe(1);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.err?.message).toBe('boom from a promise');
    expect(fatal[0]!.origin).toBe('unhandledRejection');
  });

  it('is logged once even when a second one follows while the process is leaving', async () => {
    const { code, fatal } = await runChild('twice');
    expect(code).toBe(1);
    expect(fatal.map((l) => l.err?.message)).toEqual(['first boom']);
  });
});
