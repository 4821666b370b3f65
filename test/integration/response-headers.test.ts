/**
 * Headers that protect clients: no content sniffing on any reply, no caching of replies that carry
 * tokens or tickets, no framing of the HTML pages, and /metrics behind METRICS_TOKEN when it is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENV, createShow, GOOD_CARD, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const METRICS_TOKEN = 'metrics-token-0123456789';
let server: TestServer;
let guarded: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...ADMIN_ENV });
  guarded = await startTestServer({ METRICS_TOKEN });
});
afterAll(async () => {
  await server?.destroy();
  await guarded?.destroy();
});

describe('response headers', () => {
  it('sends nosniff on every reply: success, error, unknown route, HTML', async () => {
    const replies = await Promise.all([
      server.api('GET', '/healthz'),
      server.api('GET', '/api/movies'),
      server.api('POST', '/api/login', { raw: '{not json' }),
      server.api('GET', '/api/no-such-route'),
      server.api('GET', '/docs'),
      server.api('GET', '/metrics'),
    ]);
    for (const reply of replies) expect(reply.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('forbids caching the replies that carry a token or a ticket', async () => {
    const alice = await newUser(server.api, { email: `alice-${Date.now()}@example.com` });
    const registered = await server.api('POST', '/api/register', {
      body: { name: 'Bo', email: `bo-${Date.now()}@example.com`, password: 'password-123' },
    });
    const loggedIn = await server.api('POST', '/api/login', {
      body: { email: alice.email, password: alice.password },
    });
    const { showId } = await createShow(server.api);
    const booked = await server.api('POST', '/api/bookings', {
      token: alice.token,
      body: { showId, seats: ['A1'], paymentMethod: 'card' },
    });
    const paid = await server.api('POST', '/api/payments', {
      token: alice.token,
      body: { bookingId: booked.body.booking.id, method: 'card', card: GOOD_CARD },
    });
    const ticket = await server.api('GET', `/api/bookings/${booked.body.booking.id}/ticket`, {
      token: alice.token,
    });
    const me = await server.api('GET', '/api/me', { token: alice.token });
    expect(paid.body.booking.ticket.code).toEqual(expect.any(String));
    for (const reply of [registered, loggedIn, booked, paid, ticket, me]) {
      expect(reply.status).toBeLessThan(300);
      expect(reply.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('leaves public replies cacheable as their route says', async () => {
    expect((await server.api('GET', '/api/movies')).headers.get('cache-control')).toBeNull();
    const jwks = await server.api('GET', '/.well-known/jwks.json');
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=300');
  });

  it('keeps the docs page out of frames', async () => {
    const docs = await server.api('GET', '/docs');
    expect(docs.headers.get('content-type')).toContain('text/html');
    expect(docs.headers.get('x-frame-options')).toBe('DENY');
    expect(docs.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });
});

describe('/metrics', () => {
  it('is open when METRICS_TOKEN is not set', async () => {
    const res = await server.api('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.body).toContain('# TYPE');
  });

  it('needs the bearer token when METRICS_TOKEN is set', async () => {
    const without = await guarded.api('GET', '/metrics');
    expect(without.status).toBe(401);
    expect(without.body.error.code).toBe('UNAUTHENTICATED');
    expect(without.headers.get('www-authenticate')).toContain('Bearer');
    const wrong = await guarded.api('GET', '/metrics', { token: `${METRICS_TOKEN}x` });
    expect(wrong.status).toBe(401);
    const right = await guarded.api('GET', '/metrics', { token: METRICS_TOKEN });
    expect(right.status).toBe(200);
    expect(right.body).toContain('# TYPE');
    expect((await guarded.api('GET', '/healthz')).status).toBe(200);
  });
});
