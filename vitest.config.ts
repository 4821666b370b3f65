import { defineConfig } from 'vitest/config';

/**
 * Two projects in one run (one PostgreSQL server for both, from the global setup):
 * - `sqlite`: every test, with the embedded default store. Domain tests cover PostgreSQL there too
 *   (describe.each over APP_STORES).
 * - `postgres`: the tests that start the whole service again, with BOXOFFICE_TEST_STORE=postgres, so each
 *   service gets DATABASE_URL of a fresh database (test/helpers/postgres.ts). Tests that are about SQLite
 *   files themselves skip there, saying why.
 * Projects extend this root config; arrays (include) would be appended to the root's, so only the
 * projects name files, and `env` objects merge, keeping the root's variables.
 */
export default defineConfig({
  test: {
    globalSetup: ['test/helpers/postgres-global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    env: { BOXOFFICE_ASSERT_INVARIANTS: '1', LOG_LEVEL: 'silent' },
    projects: [
      {
        extends: true,
        test: { name: 'sqlite', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'postgres',
          include: ['test/integration/**/*.test.ts', 'test/crash/**/*.test.ts', 'test/ops/shutdown.test.ts'],
          // These choose their stores themselves (both seat stores; a PostgreSQL server of its own).
          exclude: ['test/crash/shard-crash.test.ts', 'test/crash/postgres-outage.test.ts'],
          env: { BOXOFFICE_TEST_STORE: 'postgres' },
        },
      },
    ],
  },
});
