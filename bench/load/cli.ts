/**
 * `npm run load -- --url URL --scenario NAME [options]`: a bounded load run against a running BoxOffice
 * (one node, or a cluster behind nginx), with a progress bar on stderr and a report at the end: a table,
 * or JSON with --json; --html FILE writes a page with charts. Exit status 1 when the run's correctness
 * check failed, 2 on bad options or a failed set-up. See README "Load testing a deployment".
 */
import fs from 'node:fs';
import { LIMITS, parseLoadOptions, USAGE } from './options.js';
import { html, table } from './report.js';
import { runLoadTest } from './run.js';

let options: ReturnType<typeof parseLoadOptions>;
try {
  options = parseLoadOptions(process.argv.slice(2), process.env, process.stderr.isTTY === true);
} catch (err) {
  console.error(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}

// Whatever the target does, the process ends: the run's own deadline plus set-up and check time.
const HARD_LIMIT_MS = (options.seconds + options.warmupSeconds + LIMITS.seconds) * 1000;
setTimeout(() => {
  console.error('load: hard time limit reached; stopping');
  process.exit(3);
}, HARD_LIMIT_MS).unref();

try {
  const report = await runLoadTest(options, (line) => console.error(line));
  if (options.jsonPath) fs.writeFileSync(options.jsonPath, JSON.stringify(report, null, 2));
  if (options.htmlPath) fs.writeFileSync(options.htmlPath, html(report));
  console.log(options.isJson ? JSON.stringify(report, null, 2) : table(report));
  const isBroken = report.check?.isOk === false || (report.holds?.grantedTwice ?? 0) > 0;
  process.exit(isBroken ? 1 : 0);
} catch (err) {
  console.error(`load: ${(err as Error).message}`);
  process.exit(2);
}
