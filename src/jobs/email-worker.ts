/**
 * @module jobs/email-worker
 * The mail thread of `email.ts`: owns the nodemailer transport (and its SMTP connection pool), renders
 * and sends each posted notification, and answers by id. Sends run concurrently, as the pool allows.
 * A confirmation's ticket QR is drawn here too, by `renderEmail`.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createMailTransport, type MailReply, type MailRequest, type MailTransportOptions } from './email.js';

const port = parentPort!;
const transport = createMailTransport(workerData as MailTransportOptions);

port.on('message', async ({ id, notification }: MailRequest) => {
  try {
    const { log } = await transport.send(notification);
    port.postMessage({ id, ok: true, threadId, ...(log ? { log } : {}) } satisfies MailReply);
  } catch (err) {
    port.postMessage({ id, ok: false, message: (err as Error).message } satisfies MailReply);
  }
});
