/**
 * The bulk test-user route and its safety rule: refused unless LOAD_TEST_MODE is on, bounded per
 * request, and the users it creates are real accounts whose tokens and password work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LOAD_TEST_USERS_PER_REQUEST } from '../../src/domain/load-test-users.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ADMIN = { ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: 'admin-password-1' };
const ROUTE = '/api/admin/load-test/users';

async function adminToken(server: TestServer): Promise<string> {
  const login = await server.api('POST', '/api/login', {
    body: { email: ADMIN.ADMIN_EMAIL, password: ADMIN.ADMIN_PASSWORD },
  });
  expect(login.status).toBe(200);
  return login.body.token;
}

describe('bulk test users, load-test mode off (the default)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(ADMIN);
  });
  afterAll(() => server.destroy());

  it('refuses an admin with 403 and creates nobody', async () => {
    const token = await adminToken(server);
    const reply = await server.api('POST', ROUTE, { token, body: { count: 2, runId: 'off' } });
    expect(reply.status).toBe(403);
    expect(reply.body.error.code).toBe('FORBIDDEN');
    expect(reply.body.error.message).toContain('LOAD_TEST_MODE');
    const login = await server.api('POST', '/api/login', {
      body: { email: 'loadtest-off-0@load.test', password: 'load-test-password' },
    });
    expect(login.status).toBe(401);
  });

  it('refuses without a token as well', async () => {
    const reply = await server.api('POST', ROUTE, { body: { count: 2 } });
    expect(reply.status).toBe(403);
  });
});

describe('bulk test users, LOAD_TEST_MODE=true', () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ ...ADMIN, LOAD_TEST_MODE: 'true' });
    token = await adminToken(server);
  });
  afterAll(() => server.destroy());

  it('creates N users under load.test whose tokens and shared password work', async () => {
    const reply = await server.api('POST', ROUTE, { token, body: { count: 25, runId: 'run1' } });
    expect(reply.status).toBe(201);
    expect(reply.body.runId).toBe('run1');
    expect(reply.body.users).toHaveLength(25);
    expect(new Set(reply.body.users.map((u: { id: string }) => u.id)).size).toBe(25);
    expect(reply.body.users[7].email).toBe('loadtest-run1-7@load.test');
    for (const user of [reply.body.users[0], reply.body.users[24]]) {
      const me = await server.api('GET', '/api/me', { token: user.token });
      expect(me.status).toBe(200);
      expect(me.body.user).toMatchObject({ id: user.id, email: user.email, role: 'user' });
    }
    const login = await server.api('POST', '/api/login', {
      body: { email: 'loadtest-run1-24@load.test', password: 'load-test-password' },
    });
    expect(login.status).toBe(200);
  });

  it('gives the users a password of the caller’s choosing, and continues a run from firstIndex', async () => {
    const reply = await server.api('POST', ROUTE, {
      token,
      body: { count: 2, runId: 'run2', firstIndex: 100, password: 'another-password' },
    });
    expect(reply.status).toBe(201);
    expect(reply.body.users.map((u: { email: string }) => u.email)).toEqual([
      'loadtest-run2-100@load.test',
      'loadtest-run2-101@load.test',
    ]);
    const login = await server.api('POST', '/api/login', {
      body: { email: 'loadtest-run2-101@load.test', password: 'another-password' },
    });
    expect(login.status).toBe(200);
  });

  it(`refuses more than ${MAX_LOAD_TEST_USERS_PER_REQUEST} users in one request with 400`, async () => {
    const reply = await server.api('POST', ROUTE, {
      token,
      body: { count: MAX_LOAD_TEST_USERS_PER_REQUEST + 1, runId: 'big' },
    });
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe('VALIDATION_FAILED');
    expect(reply.body.error.details.fields).toHaveProperty('count');
  });

  it('refuses a run and index range already used with 409, creating none of the batch', async () => {
    const first = await server.api('POST', ROUTE, { token, body: { count: 3, runId: 'dup' } });
    expect(first.status).toBe(201);
    const again = await server.api('POST', ROUTE, {
      token,
      body: { count: 3, runId: 'dup', firstIndex: 2 },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('EMAIL_TAKEN');
    const login = await server.api('POST', '/api/login', {
      body: { email: 'loadtest-dup-3@load.test', password: 'load-test-password' },
    });
    expect(login.status).toBe(401);
  });

  it('refuses an ordinary user with 403', async () => {
    const reply = await server.api('POST', ROUTE, { token, body: { count: 1, runId: 'plain' } });
    const plain = reply.body.users[0].token;
    const refused = await server.api('POST', ROUTE, { token: plain, body: { count: 1 } });
    expect(refused.status).toBe(403);
  });
});
