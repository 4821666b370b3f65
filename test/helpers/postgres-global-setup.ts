/**
 * @module test/helpers/postgres-global-setup
 * Vitest global setup: one PostgreSQL server for the whole run, its admin URL published to every test
 * worker in `BOXOFFICE_TEST_POSTGRES_URL` (workers are forked after this runs and inherit the env).
 * When that variable is already set, the suite uses that server (a local PostgreSQL) and starts none.
 */
import { startTestPostgres, TEST_POSTGRES_URL_ENV, type TestPostgres } from './postgres.js';

let server: TestPostgres | undefined;

export default async function setup(): Promise<() => Promise<void>> {
  if (!process.env[TEST_POSTGRES_URL_ENV]) {
    server = await startTestPostgres();
    process.env[TEST_POSTGRES_URL_ENV] = server.url;
  }
  return async () => {
    await server?.stop();
    server = undefined;
  };
}
