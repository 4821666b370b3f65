/**
 * /metrics after real traffic: HTTP latency by route and status, hold outcomes, journal group-commit
 * sizes and latency, worker mailbox depth, feed subscribers, outbox lag and event-loop lag.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_ENV, createShow, newUser } from '../helpers/catalog.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(ADMIN_ENV);
});
afterAll(() => server?.destroy());

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Number.NaN;
}

describe('metrics', () => {
  it('counts holds, journal commits, subscribers and latency by route after real traffic', async () => {
    const { showId } = await createShow(server.api);
    const user = await newUser(server.api);
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws/shows/${showId}`);
    await new Promise((resolve) => ws.once('message', resolve));
    expect(
      (await server.api('POST', `/api/shows/${showId}/holds`, { body: { seats: ['A1'] }, token: user.token }))
        .status,
    ).toBe(201);
    expect(
      (await server.api('POST', `/api/shows/${showId}/holds`, { body: { seats: ['A1'] }, token: user.token }))
        .status,
    ).toBe(409);
    const text = (await server.api('GET', '/metrics')).body as string;
    ws.close();
    expect(sample(text, 'boxoffice_holds_total{outcome="held"}')).toBe(1);
    expect(sample(text, 'boxoffice_holds_total{outcome="SEATS_UNAVAILABLE"}')).toBe(1);
    expect(sample(text, 'boxoffice_journal_batch_commands_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'boxoffice_journal_commit_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'boxoffice_ws_subscribers')).toBe(1);
    expect(sample(text, 'boxoffice_worker_mailbox_depth{worker="0"}')).toBe(0);
    expect(sample(text, 'boxoffice_shard_restarts')).toBe(0);
    expect(text).toContain('boxoffice_outbox_lag_seconds');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toMatch(
      /boxoffice_http_request_duration_seconds_count\{method="POST",route="\/api\/shows\/:id\/holds",status="201"\} 1/,
    );
  });
});
