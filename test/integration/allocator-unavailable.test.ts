/**
 * A seat allocator shard that is down is the service being briefly unavailable, not a bug: clients are
 * told 503 with the shard's code and a retry-after, and are served again once it has recovered.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitLogFile } from '../../src/actors/shard-protocol.js';
import { workerLogName } from '../../src/actors/shard-router.js';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...ADMIN_ENV });
});
afterAll(() => server?.destroy());

describe('a shard that cannot serve', () => {
  // The fault is made by corrupting the worker's SQLite commit log file; with PostgreSQL the commits are
  // in the database and there is no such file to break.
  it.skipIf(process.env.BOXOFFICE_TEST_STORE === 'postgres')(
    'answers 503 WORKER_FAILED with retry-after while its worker cannot recover, then serves again',
    async () => {
      const { showId } = await createShow(server.api);
      const alice = await newUser(server.api);
      const hold = (seat: string) =>
        server.api('POST', `/api/shows/${showId}/holds`, { token: alice.token, body: { seats: [seat] } });
      expect((await hold('A1')).status).toBe(201);

      // The worker dies (as on a failed disk write), and its commit log is unreadable while it is down,
      // so every restart's recovery fails.
      await server.deps.router.killWorker(0);
      const file = commitLogFile(server.dataDir, workerLogName(0));
      const parked = ['', '-wal', '-shm'].filter((suffix) => fs.existsSync(file + suffix));
      for (const suffix of parked) fs.renameSync(file + suffix, `${file + suffix}.parked`);
      fs.writeFileSync(file, 'this is not a database, and recovery cannot open it');

      const refused = await hold('A2');
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('WORKER_FAILED');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

      fs.rmSync(file);
      for (const suffix of parked) fs.renameSync(`${file + suffix}.parked`, file + suffix);
      let retried = refused;
      for (let attempt = 0; attempt < 200 && retried.status === 503; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        retried = await hold('A2');
      }
      expect(retried.status).toBe(201);
    },
  );
});
