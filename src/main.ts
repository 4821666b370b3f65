/**
 * @module main
 * The composition root: reads the config, starts the server, and stops it cleanly on SIGTERM/SIGINT.
 */
import './threadpool.js';
import { ConfigError, loadConfig } from './config.js';
import { installCrashPolicy } from './crash-policy.js';
import { createLogger } from './logger.js';
import { startServer } from './server.js';
import { StartupError } from './startup-preflight.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);
  installCrashPolicy(logger);
  const running = await startServer(config, { logger });
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    // pino writes through an asynchronous buffer: flush it, or the last lines ("BoxOffice stopped")
    // can be lost when the process exits with a full stdout pipe.
    const exitFlushed = (code: number) => logger.flush(() => process.exit(code));
    // Should the event loop run dry before close() settles, something close() awaits has no handle
    // keeping it alive (once an unref'd checkpoint thread): Node would exit 0 with the stop unfinished.
    process.once('beforeExit', () => {
      logger.error('shutdown stalled: the event loop ran dry before the service had stopped');
      exitFlushed(1);
    });
    running.close().then(
      () => exitFlushed(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        exitFlushed(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  // A StartupError is one line naming the variable to change; anything else is a bug, with its stack.
  console.error(err instanceof StartupError ? err.message : err);
  process.exit(1);
});
