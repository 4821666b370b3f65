/**
 * The process the booking crash test kills: the real server on a data directory, with the saga's fault
 * hook armed so the process dies (SIGKILL, no cleanup) right after the show actor confirmed a booking
 * and before the booking row is updated. Prints `READY <url>` when serving and `CRASHING <bookingId>`
 * just before it kills itself.
 *
 * The hook is startServer's test-only `afterActorConfirm` option; the environment variable that arms it
 * is read here only, never in src.
 */
import { startTestServer } from '../helpers/server.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: booking-child.ts <dataDir>');

const crashAfterConfirm = () => {
  // Writes to a pipe are synchronous on Linux, so the line is out before the signal.
  process.stdout.write('CRASHING\n');
  process.kill(process.pid, 'SIGKILL');
  // Nothing after the actor's confirm may run: block until the signal lands.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
};
// The tests' own server settings, on the parent's data directory (kept across the child's restarts).
const running = await startTestServer(
  {
    DATA_DIR: dataDir,
    JWT_SECRET: process.env.CHILD_JWT_SECRET!,
    ADMIN_EMAIL: process.env.CHILD_ADMIN_EMAIL!,
    ADMIN_PASSWORD: process.env.CHILD_ADMIN_PASSWORD!,
    // In the PostgreSQL pass, the parent's database for this data directory: the parent restarts the
    // service on it, and a database made here would be one the parent never sees.
    ...(process.env.CHILD_DATABASE_URL ? { DATABASE_URL: process.env.CHILD_DATABASE_URL } : {}),
  },
  {
    afterActorConfirm: process.env.BOOKING_CRASH_AFTER_ACTOR_CONFIRM === '1' ? crashAfterConfirm : undefined,
  },
);
process.stdout.write(`READY ${running.url}\n`);
