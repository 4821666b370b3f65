/**
 * @module startup-preflight
 * What a start checks before it writes anything: that the data directory can be made, written and
 * owned by this process alone, and that HOST:PORT can be listened on. A failure is a StartupError whose
 * message is one line naming the variable to change, so nothing is seeded or recovered for a start that
 * cannot serve.
 */
import net from 'node:net';
import type { Config } from './config.js';
import {
  type DataDirLock,
  lockDataDir,
  makePrivateDirectory,
  tightenPermissions,
} from './persistence/data-dir.js';

/** A start that cannot go on; the message is one line, naming the setting to change. */
export class StartupError extends Error {}

/** Creates the data directory (owner-only), takes its lock, and tightens what an older version left open. */
export function claimDataDir(dir: string): DataDirLock {
  let claimed: ReturnType<typeof lockDataDir>;
  try {
    makePrivateDirectory(dir);
    claimed = lockDataDir(dir);
  } catch (err) {
    throw new StartupError(
      `DATA_DIR=${dir}: cannot create or write the data directory (${describeError(err)})`,
    );
  }
  if (!claimed.ok) {
    const holder = claimed.holderPid === undefined ? 'another process' : `process ${claimed.holderPid}`;
    throw new StartupError(
      `DATA_DIR=${dir} is in use by ${holder}; stop it or choose another DATA_DIR (one process per data directory)`,
    );
  }
  try {
    tightenPermissions(dir);
  } catch (err) {
    claimed.lock.release();
    throw new StartupError(`DATA_DIR=${dir}: cannot make the data directory private (${describeError(err)})`);
  }
  return claimed.lock;
}

/**
 * Listens on HOST:PORT and closes again at once: a port in use or an address this machine does not have
 * is reported before the slow part of a start. The real listen (after recovery) reports the same way.
 */
export function probeListen(config: Pick<Config, 'HOST' | 'PORT'>): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err) => reject(listenError(config, err)));
    probe.listen(config.PORT, config.HOST, () => probe.close(() => resolve()));
  });
}

/** A listen failure as the one line that names the variable to change. */
export function listenError(config: Pick<Config, 'HOST' | 'PORT'>, err: unknown): StartupError {
  const code = (err as { code?: string }).code;
  const where = `${config.HOST}:${config.PORT}`;
  if (code === 'EADDRINUSE') return new StartupError(`PORT=${config.PORT}: ${where} is already in use`);
  if (code === 'EACCES')
    return new StartupError(`PORT=${config.PORT}: not allowed to listen on ${where} (${describeError(err)})`);
  return new StartupError(`HOST=${config.HOST}: cannot listen on ${where} (${describeError(err)})`);
}

/** An error in a few words for a one-line startup message: its code and the first line of its message. */
export function describeError(err: unknown): string {
  const code = (err as { code?: string }).code;
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  if (!message) return code ?? (err instanceof Error ? err.name : 'unknown error');
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
