/**
 * `npm run bench -- <name> [options]`: runs one benchmark from bench/. Each prints its own table (and
 * JSON with --json). Benchmarks are not tests: nothing here asserts a time.
 */
import '../src/threadpool.js';

const BENCHES: Record<string, string> = {
  actor: './actor.ts',
  http: './http.ts',
  fsyncs: './fsyncs.ts',
  web: './web.ts',
  commits: './commits.ts',
  'booking-cpu': './booking-cpu.ts',
  'store-seam': './store-seam.ts',
  'pg-statements': './pg-statements.ts',
  onsale: './onsale.ts',
  cluster: './cluster.ts',
  relay: './relay.ts',
  'pg-roundtrip': './pg-roundtrip.ts',
};

const name = process.argv[2];
const file = name ? BENCHES[name] : undefined;
if (!file) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [--json] [options]`);
  process.exit(2);
}
process.argv.splice(2, 1);
await import(file);
