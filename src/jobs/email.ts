/**
 * @module jobs/email
 * Email delivery: renders each template to text and HTML (the confirmation carries the ticket QR as an
 * inline PNG) and sends it over SMTP with nodemailer, or, when no SMTP_URL is set, through nodemailer's
 * JSON transport into the log, so delivery still completes and is recorded in development.
 *
 * Rendering and sending run in a thread of their own (`email-worker.ts`, which runs
 * `createMailTransport`): the templates, nodemailer's MIME build and the SMTP conversation cost a
 * confirmation ~2.5 ms of CPU on the HTTP thread, where it stalled every request behind it at an on-sale.
 * `createEmailSender` is the main thread's side: it posts each notification there and awaits the answer.
 */
import { Worker } from 'node:worker_threads';
import nodemailer from 'nodemailer';
import type { Logger } from '../logger.js';
import { drawQr } from '../tickets/qr.js';
import { workerEntry } from '../worker-entry.js';
import {
  formatAmount,
  formatStartTime,
  maskRecipient,
  type NotificationData,
  type NotificationTemplate,
} from './outbox.js';

/** One notification as delivery sees it: the row's fields, `data` parsed. */
export interface OutgoingNotification {
  id: string;
  template: NotificationTemplate;
  recipient: string;
  data: NotificationData;
}

export interface EmailSender {
  /** Resolves once the server accepted the message; rejects on any failure (the caller retries). */
  send(notification: OutgoingNotification): Promise<EmailSent>;
  close(): void;
}

export interface EmailSent {
  /** The thread that rendered and sent the message (`worker_threads.threadId`; 0 is the main thread). */
  threadId: number;
}

/** The log line of the log transport, written by whoever owns the logger (the main thread). */
export interface EmailLogRecord {
  notificationId: string;
  to: string;
  subject: string;
  text: string;
}

export const EMAIL_LOG_MESSAGE = 'email (log transport, SMTP_URL unset)';

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
  attachments: { filename: string; content: Buffer; contentType: string; cid: string }[];
}

/** SMTP connect, greeting and idle socket limits: a hung server fails the attempt instead of the worker. */
export const SMTP_TIMEOUT_MS = 15_000;
/** The header that ties a message to its notification row (support, and tests counting deliveries). */
export const NOTIFICATION_ID_HEADER = 'X-Notification-Id';
const QR_CID = 'ticket-qr@boxoffice';
const MAX_SUBJECT_LENGTH = 200;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function detailLines(data: NotificationData): [string, string][] {
  const lines: [string, string][] = [
    ['Booking', data.bookingId ?? ''],
    ['Movie', data.movieTitle ?? ''],
    ['Theater', [data.theaterName, data.screenName, data.city].filter(Boolean).join(', ')],
    ['Starts', formatStartTime(data.startTime, data.timeZone)],
    ['Seats', (data.seats ?? []).join(', ')],
    ['Amount', formatAmount(data.amount)],
  ];
  return lines.filter(([, value]) => value !== '');
}

function htmlDocument(blocks: string[]): string {
  return ['<!doctype html>', '<html><head><meta charset="utf-8"></head><body>', ...blocks, '</body></html>']
    .filter((line) => line !== '')
    .join('\n');
}

/** Width and height of a PNG, from its IHDR chunk (always the first). */
function pngSide(png: Buffer): number {
  return png.readUInt32BE(16);
}

function renderBodies(intro: string, lines: [string, string][], outro: string, qr?: Buffer) {
  const text = [intro, '', ...lines.map(([k, v]) => `${k}: ${v}`), '', outro].join('\n');
  const rows = lines.map(
    ([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`,
  );
  const side = qr ? pngSide(qr) : 0;
  const html = htmlDocument([
    `<p>${escapeHtml(intro)}</p>`,
    `<table>${rows.join('')}</table>`,
    qr ? `<p><img src="cid:${QR_CID}" alt="Ticket QR code" width="${side}" height="${side}"></p>` : '',
    `<p>${escapeHtml(outro)}</p>`,
  ]);
  return { text, html };
}

/**
 * Renders a template, drawing a confirmation's QR image on the calling thread (the mail thread: ~0.4 ms;
 * asking the QR thread cost three thread messages per booking, the image passing through the HTTP
 * thread). Drawn once per confirmation, so its matrix is not kept.
 */
export function renderEmail(notification: OutgoingNotification): RenderedEmail {
  const d = notification.data;
  const movie = d.movieTitle || 'your show';
  const greeting = d.userName ? `Hi ${d.userName},` : 'Hi,';
  switch (notification.template) {
    case 'booking_confirmed': {
      // The same image as GET /api/bookings/:id/ticket: whole pixels per module, so it scans at the gate.
      const qr = d.ticketCode ? drawQr('png', d.ticketCode, { remember: false }) : undefined;
      const { text, html } = renderBodies(
        `${greeting} your booking for ${movie} is confirmed.`,
        detailLines(d),
        qr ? `Show this QR code at the entrance. Ticket code: ${d.ticketCode}` : 'Enjoy the show!',
        qr,
      );
      const attachments = qr
        ? [{ filename: 'ticket.png', content: qr, contentType: 'image/png', cid: QR_CID }]
        : [];
      return { subject: `Your tickets for ${movie}`, text, html, attachments };
    }
    case 'booking_cancelled': {
      const { text, html } = renderBodies(
        `${greeting} your booking for ${movie} has been cancelled.`,
        detailLines(d),
        d.reason ?? 'Any refund goes back to your original payment method.',
      );
      return { subject: `Booking cancelled: ${movie}`, text, html, attachments: [] };
    }
    case 'show_reminder': {
      const { text, html } = renderBodies(
        `${greeting} a reminder that ${movie} starts at ${formatStartTime(d.startTime, d.timeZone)}.`,
        detailLines(d),
        'Please arrive a few minutes early.',
      );
      return { subject: `Reminder: ${movie} starts soon`, text, html, attachments: [] };
    }
    case 'custom': {
      const body = d.body ?? '';
      const html = htmlDocument(
        body.split(/\n{2,}/).map((p) => `<p>${escapeHtml(p).replace(/\n/g, '<br>')}</p>`),
      );
      return { subject: d.subject || 'A message from BoxOffice', text: body, html, attachments: [] };
    }
  }
}

/** The first four and last three characters: enough to tell tickets apart in a log, too little to pass the gate. */
export function maskTicketCode(code: string): string {
  return code.length <= 12 ? '…' : `${code.slice(0, 4)}…${code.slice(-3)}`;
}

function withoutTicketCode(text: string, code: string | undefined): string {
  return code ? text.split(code).join(maskTicketCode(code)) : text;
}

/** SMTP connections kept open to the server; messages queue for a free one. */
export const SMTP_POOL_CONNECTIONS = 4;

export interface MailTransportOptions {
  /** smtp:// or smtps:// URL; unset means the log transport. */
  smtpUrl?: string;
  from: string;
  timeoutMs?: number;
}

export interface MailTransport {
  /** Renders and sends; with the log transport, answers the record to log. Rejects on any failure. */
  send(notification: OutgoingNotification): Promise<{ log?: EmailLogRecord }>;
  close(): void;
}

/** Renders and sends on the calling thread: what the mail thread runs. */
export function createMailTransport(options: MailTransportOptions): MailTransport {
  const timeoutMs = options.timeoutMs ?? SMTP_TIMEOUT_MS;
  const isLogOnly = !options.smtpUrl;
  const transport = options.smtpUrl
    ? nodemailer.createTransport({
        url: options.smtpUrl,
        // Kept-open connections: a new SMTP session per message (connect, greeting, EHLO, maybe TLS)
        // was most of a confirmation's cost.
        pool: true,
        maxConnections: SMTP_POOL_CONNECTIONS,
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
      })
    : nodemailer.createTransport({ jsonTransport: true });
  return {
    async send(notification) {
      const rendered = renderEmail(notification);
      const info = await transport.sendMail({
        from: options.from,
        to: notification.recipient,
        subject: rendered.subject.slice(0, MAX_SUBJECT_LENGTH),
        text: rendered.text,
        html: rendered.html,
        attachments: rendered.attachments,
        headers: { [NOTIFICATION_ID_HEADER]: notification.id },
      });
      if (isLogOnly) {
        // Logs outlive mail and reach more people: a full ticket code there is a ticket anyone can use.
        return {
          log: {
            notificationId: notification.id,
            to: maskRecipient(notification.recipient),
            subject: rendered.subject,
            text: withoutTicketCode(rendered.text, notification.data.ticketCode),
          },
        };
      }
      if ((info as { rejected?: unknown[] }).rejected?.length)
        throw new Error(`SMTP server rejected ${notification.recipient}`);
      return {};
    },
    close() {
      transport.close();
    },
  };
}

/**
 * Sends posted to the mail thread and not yet answered. Both job queues run 4 deliveries at a time, so
 * this is a guard against a runaway caller, not a throttle: a send beyond it fails and is retried.
 */
export const MAX_EMAILS_IN_FLIGHT = 64;

export interface EmailSenderOptions extends MailTransportOptions {
  logger: Logger;
  maxInFlight?: number;
}

/** What the main thread posts to the mail thread, and what it answers. */
export interface MailRequest {
  id: number;
  notification: OutgoingNotification;
}
export type MailReply =
  | { id: number; ok: true; threadId: number; log?: EmailLogRecord }
  | { id: number; ok: false; message: string };

/** The main thread's side of an email sender: the thread it runs on, and a way to end that thread. */
export interface ThreadedEmailSender extends EmailSender {
  /**
   * Ends the mail thread at once, as a crash would: its sends in flight fail (the job queue retries
   * them; a message the SMTP server had not accepted is not sent twice) and the next send starts a new
   * thread. Resolves when the thread has exited.
   */
  killThread(): Promise<void>;
}

interface Waiting {
  resolve(reply: MailReply): void;
  reject(err: Error): void;
}

/**
 * @example
 * const email = createEmailSender({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, logger });
 * await email.send({ id, template: 'custom', recipient: 'a@b.c', data: { subject: 'Hi', body: 'Hello' } });
 */
export function createEmailSender(options: EmailSenderOptions): ThreadedEmailSender {
  const { logger, ...transportOptions } = options;
  const maxInFlight = options.maxInFlight ?? MAX_EMAILS_IN_FLIGHT;
  const waiting = new Map<number, Waiting>();
  let worker: Worker | undefined;
  let nextId = 1;
  /** Sends begun and not finished: owed by the thread. */
  let sending = 0;
  let isClosed = false;

  // Started on first send, so a process that sends nothing starts no thread; a dead one fails its
  // callers and the next send starts another.
  function start(): Worker {
    const { filename, isEval } = workerEntry(import.meta.url, './email-worker');
    const started = new Worker(filename, {
      eval: isEval,
      name: 'mail',
      workerData: {
        smtpUrl: transportOptions.smtpUrl,
        from: transportOptions.from,
        timeoutMs: transportOptions.timeoutMs,
      } satisfies MailTransportOptions,
    });
    started.unref();
    started.on('message', (reply: MailReply) => {
      const owed = waiting.get(reply.id);
      waiting.delete(reply.id);
      if (waiting.size === 0) started.unref();
      owed?.resolve(reply);
    });
    const fail = (err: Error) => {
      if (worker !== started) return;
      worker = undefined;
      for (const owed of waiting.values()) owed.reject(err);
      waiting.clear();
    };
    started.on('error', (err) => {
      logger.error({ err: err.message }, 'the mail thread crashed; its sends in flight are retried');
      fail(err);
    });
    started.on('exit', (code) => fail(new Error(`the mail thread exited (code ${code})`)));
    worker = started;
    return started;
  }

  async function sendOnThread(notification: OutgoingNotification): Promise<EmailSent> {
    const thread = worker ?? start();
    const id = nextId++;
    const reply = await new Promise<MailReply>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      thread.postMessage({ id, notification } satisfies MailRequest);
      // Only while a send is owed does the thread keep the process alive.
      if (waiting.size === 1) thread.ref();
    });
    if (!reply.ok) throw new Error(reply.message);
    if (reply.log) logger.info(reply.log, EMAIL_LOG_MESSAGE);
    return { threadId: reply.threadId };
  }

  return {
    async send(notification) {
      if (isClosed) throw new Error('the email sender is closed');
      if (sending >= maxInFlight)
        throw new Error(`the mail thread already has ${maxInFlight} messages in flight`);
      sending++;
      try {
        return await sendOnThread(notification);
      } finally {
        sending--;
      }
    },
    async killThread() {
      const thread = worker;
      if (!thread) return;
      await thread.terminate();
    },
    close() {
      isClosed = true;
      // The queues have finished their jobs by now; ending the thread closes the SMTP pool's sockets.
      void worker?.terminate();
    },
  };
}
