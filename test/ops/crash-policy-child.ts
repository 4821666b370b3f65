/**
 * A process with the service's crash policy installed, as main.ts installs it, that then fails in the way
 * argv[2] names. Run by crash-policy.test.ts; nothing here is reachable from a client.
 */
import { installCrashPolicy } from '../../src/crash-policy.js';
import { createLogger } from '../../src/logger.js';

const logger = createLogger('info');
installCrashPolicy(logger);
const how = process.argv[2];
// Work still scheduled must not keep the process up.
setInterval(() => logger.info('still running'), 1_000);
setTimeout(() => {
  if (how === 'throw') throw new Error('boom from a timer');
  if (how === 'reject') void Promise.reject(new Error('boom from a promise'));
  if (how === 'twice') {
    setImmediate(() => {
      throw new Error('second boom');
    });
    throw new Error('first boom');
  }
}, 10);
