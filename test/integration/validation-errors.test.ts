/**
 * A refused request says what to fix: a 400 names the missing or bad fields (for an either/or body, of
 * the form the client came closest to) and its message says what is wrong, not "invalid json"; a body
 * without a JSON Content-Type is told to send `application/json`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let token: string;
beforeAll(async () => {
  server = await startTestServer({ ...ADMIN_ENV });
  ({ token } = await newUser(server.api));
});
afterAll(() => server?.destroy());

describe('validation errors', () => {
  it('names paymentMethod when a booking from a hold leaves it out', async () => {
    const res = await server.api('POST', '/api/bookings', { body: { holdId: 'h_1' }, token });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(res.body.error.details.fields).toEqual({ paymentMethod: 'required' });
    expect(res.body.error.message).toContain('paymentMethod is required');
    expect(res.body.error.message).not.toMatch(/invalid json/i);
  });

  it('offers both ways out when a body could be either form', async () => {
    const res = await server.api('POST', '/api/bookings', {
      body: { showId: 's_1', paymentMethod: 'card' },
      token,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.fields).toEqual({ seats: 'required', count: 'required' });
    expect(res.body.error.message).toMatch(/seats is required; or count is required/);
  });

  it('names the field that does not belong to the form the client chose', async () => {
    const res = await server.api('POST', '/api/bookings', {
      body: { holdId: 'h_1', paymentMethod: 'card', seats: ['A1'] },
      token,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.fields).toEqual({ seats: 'not allowed here' });
  });

  it('names the bad field of a hold request, and refuses seats and count together', async () => {
    const bad = await server.api('POST', '/api/shows/s_1/holds', { body: { count: 'two' }, token });
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.body.error.details.fields)).toEqual(['count']);
    expect(bad.body.error.message).toMatch(/^bad fields in the request body: count: /);
    const both = await server.api('POST', '/api/shows/s_1/holds', {
      body: { seats: ['A1'], count: 1 },
      token,
    });
    expect(both.status).toBe(400);
    expect(Object.keys(both.body.error.details.fields).sort()).toEqual(['count', 'seats']);
  });

  it('names category when a show has no such category, listing the ones it has', async () => {
    const { showId } = await createShow(server.api);
    const res = await server.api('POST', `/api/shows/${showId}/holds`, {
      body: { count: 2, category: 'PLATINUM' },
      token,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(Object.keys(res.body.error.details.fields)).toEqual(['category']);
    expect(res.body.error.message).toContain('PLATINUM');
  });

  it('says which part of the request was wrong: query string, path or body', async () => {
    const query = await server.api('GET', '/api/movies?minRating=lots');
    expect(query.status).toBe(400);
    expect(query.body.error.message).toMatch(/^bad fields in the query string: minRating/);
    const register = await server.api('POST', '/api/register', { body: { name: 'A', email: 'nope' } });
    expect(register.body.error.details.fields).toMatchObject({
      email: expect.any(String),
      password: 'required',
    });
    expect(register.body.error.message).toContain('password is required');
  });

  it('tells a client without a JSON Content-Type to send application/json', async () => {
    const res = await server.api('POST', '/api/register', {
      raw: JSON.stringify({ name: 'A', email: 'a@example.test', password: 'long-enough-1' }),
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(res.body.error.message).toContain('Content-Type: application/json');
  });
});

describe('cursors', () => {
  it('refuses a notifications cursor that the API did not give out, and takes the ones it did', async () => {
    for (const cursor of ['garbage!', 'bm90LWEtY3Vyc29y', '%20']) {
      const res = await server.api('GET', `/api/me/notifications?cursor=${cursor}`, { token });
      expect(res.status, cursor).toBe(400);
      expect(res.body.error.details.fields).toEqual({ cursor: expect.stringContaining('nextCursor') });
    }
    const first = await server.api('GET', '/api/me/notifications?limit=1', { token });
    expect(first.status).toBe(200);
    const made = Buffer.from(`${new Date().toISOString()}|n_1`).toString('base64url');
    expect((await server.api('GET', `/api/me/notifications?cursor=${made}`, { token })).status).toBe(200);
    expect((await server.api('GET', '/api/me/notifications?cursor=', { token })).status).toBe(200);
  });
});
