/**
 * @module crash-policy
 * What the process does when something throws that nothing expected: log it once at fatal level and exit
 * non-zero, for the supervisor to start a fresh process (docs/ARCHITECTURE.md, "When something unexpected
 * throws"). Every acknowledged change is journaled before it is acknowledged, so a restart loses nothing;
 * staying up could serve from a show actor or seat-map mirror left half-updated.
 */
import type { Logger } from './logger.js';

/** The exit code of a process that stopped on an unexpected exception. */
export const EXIT_UNEXPECTED = 1;
/** The longest the log gets to reach its destination before the process exits anyway. */
export const FATAL_FLUSH_TIMEOUT_MS = 2_000;

export function installCrashPolicy(logger: Logger): void {
  let isExiting = false;
  const die = (err: unknown, origin: string) => {
    // A second failure while the first is being logged adds nothing: the process is already leaving.
    if (isExiting) return;
    isExiting = true;
    logger.fatal({ err, origin }, 'unexpected exception: exiting for the supervisor to restart the service');
    const timer = setTimeout(() => process.exit(EXIT_UNEXPECTED), FATAL_FLUSH_TIMEOUT_MS);
    logger.flush(() => {
      clearTimeout(timer);
      process.exit(EXIT_UNEXPECTED);
    });
  };
  process.on('uncaughtException', (err, origin) => die(err, origin));
  process.on('unhandledRejection', (reason) => die(reason, 'unhandledRejection'));
}
