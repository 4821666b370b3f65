/**
 * @module jobs/email-worker
 * The mail thread of `email.ts`: owns the nodemailer transport (and its SMTP connection pool), renders
 * and sends each posted notification, and answers by id. Sends run concurrently, as the pool allows.
 * A confirmation's ticket QR is drawn here too (~0.4 ms): asking the QR thread cost a message to it, one
 * back to the main thread and the image posted on to here, per booking.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { drawQr } from '../tickets/qr.js';
import { createMailTransport, type MailReply, type MailRequest, type MailTransportOptions } from './email.js';

const port = parentPort!;
const transport = createMailTransport(workerData as MailTransportOptions);

async function ticketPng({ template, data }: MailRequest['notification']): Promise<Buffer | undefined> {
  if (template !== 'booking_confirmed' || !data.ticketCode) return undefined;
  // Drawn once per confirmation: nothing to keep (see `MAX_CACHED_QR_MATRICES`).
  const png = await drawQr('png', data.ticketCode, { remember: false });
  if (typeof png === 'string') throw new Error('drew no PNG');
  return png;
}

port.on('message', async ({ id, notification }: MailRequest) => {
  try {
    const { log } = await transport.send(notification, await ticketPng(notification));
    port.postMessage({ id, ok: true, threadId, ...(log ? { log } : {}) } satisfies MailReply);
  } catch (err) {
    port.postMessage({ id, ok: false, message: (err as Error).message } satisfies MailReply);
  }
});
