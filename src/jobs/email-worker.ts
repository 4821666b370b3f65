/**
 * @module jobs/email-worker
 * The mail thread of `email.ts`: owns the nodemailer transport (and its SMTP connection pool), renders
 * and sends each posted notification, and answers by id. Sends run concurrently, as the pool allows.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createMailTransport, type MailReply, type MailRequest, type MailTransportOptions } from './email.js';

const port = parentPort!;
const transport = createMailTransport(workerData as MailTransportOptions);

port.on('message', async ({ id, notification, ticketQrPng }: MailRequest) => {
  try {
    const png =
      ticketQrPng && Buffer.from(ticketQrPng.buffer, ticketQrPng.byteOffset, ticketQrPng.byteLength);
    const { log } = await transport.send(notification, png);
    port.postMessage({ id, ok: true, threadId, ...(log ? { log } : {}) } satisfies MailReply);
  } catch (err) {
    port.postMessage({ id, ok: false, message: (err as Error).message } satisfies MailReply);
  }
});
