/**
 * @module process-limits
 * What the operating system lets this process hold, read once at start so bounds (open feeds) can stay
 * below it instead of failing with EMFILE once the limit is reached.
 */
import fs from 'node:fs';

/**
 * The soft "Max open files" limit from a Linux `/proc/<pid>/limits` text; undefined when it is missing or
 * "unlimited" (then only our own bounds apply).
 */
export function parseOpenFilesSoftLimit(limitsText: string): number | undefined {
  const line = limitsText.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  if (!soft || !/^\d+$/.test(soft)) return undefined;
  return Number(soft);
}

/** This process's soft open-files limit, on Linux; undefined elsewhere or when it cannot be read. */
export function readOpenFilesSoftLimit(): number | undefined {
  try {
    return parseOpenFilesSoftLimit(fs.readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}
