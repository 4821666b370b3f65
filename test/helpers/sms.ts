/**
 * @module test/helpers/sms
 * A real SMS webhook on a loopback port (node:http) that keeps every text it receives, as the gateway
 * SMS_WEBHOOK_URL names would.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSms {
  to: string;
  body: string;
  notificationId: string | undefined;
  receivedAtMs: number;
}

export interface TestSms {
  url: string;
  texts: ReceivedSms[];
  close(): Promise<void>;
}

/** The SMS gateway: a node:http server that accepts `{to, body}` and keeps what it got. */
export async function startSmsWebhook(): Promise<TestSms> {
  const texts: ReceivedSms[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const message = JSON.parse(body) as { to: string; body: string };
      const id = req.headers['x-notification-id'];
      texts.push({
        to: message.to,
        body: message.body,
        notificationId: typeof id === 'string' ? id : undefined,
        receivedAtMs: Date.now(),
      });
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`,
    texts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
