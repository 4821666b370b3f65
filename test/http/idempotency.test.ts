/**
 * The Idempotency-Key middleware on both stores, in front of a route that counts its runs: a retry with
 * the same key and body replays the first answer, another body is 409 IDEMPOTENCY_KEY_REUSED, a retry
 * while the first still runs is 409 IDEMPOTENCY_KEY_IN_USE, a 5xx frees the key, an expired key is
 * claimed afresh; and under many concurrent retries with one key exactly one request runs.
 */
import { createHmac } from 'node:crypto';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthUser, TokenService } from '../../src/domain/auth-tokens.js';
import type { AppDeps, AppEnv } from '../../src/http/context.js';
import { ApiError, errorBody, statusOf } from '../../src/http/errors.js';
import { IDEMPOTENCY_TTL_MS, idempotent } from '../../src/http/idempotency.js';
import type { Store } from '../../src/persistence/store.js';
import { APP_STORES } from '../helpers/app-stores.js';

interface Harness {
  request(body: unknown, options?: { key?: string; user?: string }): Promise<Response>;
  runs: number;
  /** While set, the route waits for it before answering (a slow payment, say). */
  gate: Promise<void> | undefined;
  /** The status the route answers with next. */
  status: 201 | 500;
  clockMs: number;
}

function harness(store: Store): Harness {
  const state: Harness = {
    runs: 0,
    gate: undefined,
    status: 201,
    clockMs: Date.parse('2026-12-01T10:00:00.000Z'),
    request: async () => new Response(),
  };
  // The middleware needs of its deps only the store, the clock and the server's keyed digest.
  const deps = {
    store,
    now: () => state.clockMs,
    tokens: {
      keyedDigest: (text: string) => createHmac('sha256', 'test-secret').update(text).digest('base64url'),
    } as Pick<TokenService, 'keyedDigest'>,
  } as unknown as AppDeps;
  const app = new Hono<AppEnv>();
  app.use('*', async (c, next) => {
    const user = c.req.header('x-test-user');
    if (user) c.set('user', { id: user } as AuthUser);
    await next();
  });
  app.post('/api/things', idempotent(deps), async (c) => {
    state.runs++;
    const run = state.runs;
    await state.gate;
    if (state.status === 500) return c.json(errorBody('INTERNAL', 'boom'), 500);
    return c.json({ run, body: await c.req.json() }, 201);
  });
  app.onError((err, c) => {
    if (err instanceof ApiError)
      return c.json(errorBody(err.code, err.message, err.details), statusOf(err.code));
    throw err;
  });
  state.request = (body, options = {}) =>
    Promise.resolve(
      app.request('/api/things', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': options.key ?? 'key-1',
          ...(options.user === undefined
            ? { 'x-test-user': 'usr_1' }
            : options.user
              ? { 'x-test-user': options.user }
              : {}),
        },
        body: JSON.stringify(body),
      }),
    );
  return state;
}

async function codeOf(response: Response): Promise<string | undefined> {
  return ((await response.json()) as { error?: { code: string } }).error?.code;
}

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe.each(APP_STORES)('Idempotency-Key on $name', (fixture) => {
  it('replays the first answer, refuses another body, and frees a key after a server error', async () => {
    store = await fixture.open('idempotency-basics');
    const h = harness(store);
    const first = await h.request({ showId: 'shw_1', seats: ['A1'] });
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ run: 1, body: { showId: 'shw_1', seats: ['A1'] } });
    // Keys in another order: the same request, replayed without running again.
    const again = await h.request({ seats: ['A1'], showId: 'shw_1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual({ run: 1, body: { showId: 'shw_1', seats: ['A1'] } });
    const other = await h.request({ showId: 'shw_1', seats: ['B2'] });
    expect(other.status).toBe(409);
    expect(await codeOf(other)).toBe('IDEMPOTENCY_KEY_REUSED');
    // Another user's key of the same name is another key.
    expect((await h.request({ showId: 'shw_1', seats: ['A1'] }, { user: 'usr_2' })).status).toBe(201);
    expect(h.runs).toBe(2);

    h.status = 500;
    expect((await h.request({ n: 1 }, { key: 'key-2' })).status).toBe(500);
    h.status = 201;
    const retried = await h.request({ n: 1 }, { key: 'key-2' });
    expect(retried.status).toBe(201);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect(h.runs).toBe(4);
  });

  it('answers 409 in use while the first request runs, and claims an expired key afresh', async () => {
    store = await fixture.open('idempotency-expiry');
    const h = harness(store);
    let release!: () => void;
    h.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = h.request({ a: 1 });
    while (h.runs === 0) await new Promise((r) => setTimeout(r, 5));
    const during = await h.request({ a: 1 });
    expect(during.status).toBe(409);
    expect(await codeOf(during)).toBe('IDEMPOTENCY_KEY_IN_USE');
    release();
    h.gate = undefined;
    expect((await first).status).toBe(201);

    h.clockMs += IDEMPOTENCY_TTL_MS + 1;
    const later = await h.request({ a: 2 });
    expect(later.status).toBe(201);
    expect(await later.json()).toEqual({ run: 2, body: { a: 2 } });
  });

  it('runs exactly one of many concurrent retries with one key; the others get 409 or the replay', async () => {
    store = await fixture.open('idempotency-race');
    const h = harness(store);
    let release!: () => void;
    h.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // Sixteen retries at once; the one that claims the key is held until every other has its answer.
    const responses = Array.from({ length: 16 }, () => h.request({ seats: ['C4'] }));
    const others = await firstSettled(responses, responses.length - 1);
    release();
    const all = await Promise.all(responses);
    expect(h.runs).toBe(1);
    for (const response of others) {
      expect(response.status).toBe(409);
      expect(await codeOf(response)).toBe('IDEMPOTENCY_KEY_IN_USE');
    }
    const winner = all.find((r) => !others.includes(r));
    expect(winner?.status).toBe(201);
    // Once it finished, the same retries replay its answer and still run nothing.
    const replays = await Promise.all(Array.from({ length: 8 }, () => h.request({ seats: ['C4'] })));
    expect(replays.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(replays.every((r) => r.headers.get('idempotent-replayed') === 'true')).toBe(true);
    expect(h.runs).toBe(1);
  });
});

/** The first `count` promises to resolve, in the order they resolved. */
function firstSettled<T>(promises: Promise<T>[], count: number): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const settled: T[] = [];
    for (const promise of promises)
      promise.then((value) => {
        settled.push(value);
        if (settled.length === count) resolve(settled.slice());
      }, reject);
  });
}
