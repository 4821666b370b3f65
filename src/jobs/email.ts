/**
 * @module jobs/email
 * Email delivery: renders each template to text and HTML (the confirmation carries the ticket QR as an
 * inline PNG) and sends it over SMTP with nodemailer, or, when no SMTP_URL is set, through nodemailer's
 * JSON transport into the log, so delivery still completes and is recorded in development.
 */
import nodemailer from 'nodemailer';
import type { Logger } from '../logger.js';
import { qrPng } from '../tickets/qr.js';
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
  send(notification: OutgoingNotification): Promise<void>;
  close(): void;
}

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

/** Renders a template. Pure except for drawing the QR image. */
export async function renderEmail(notification: OutgoingNotification): Promise<RenderedEmail> {
  const d = notification.data;
  const movie = d.movieTitle || 'your show';
  const greeting = d.userName ? `Hi ${d.userName},` : 'Hi,';
  switch (notification.template) {
    case 'booking_confirmed': {
      // The same image as GET /api/bookings/:id/ticket: whole pixels per module, so it scans at the gate.
      const qr = d.ticketCode ? await qrPng(d.ticketCode) : undefined;
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

export interface EmailSenderOptions {
  /** smtp:// or smtps:// URL; unset means the log transport. */
  smtpUrl?: string;
  from: string;
  logger: Logger;
  timeoutMs?: number;
}

/**
 * @example
 * const email = createEmailSender({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, logger });
 * await email.send({ id, template: 'custom', recipient: 'a@b.c', data: { subject: 'Hi', body: 'Hello' } });
 */
export function createEmailSender(options: EmailSenderOptions): EmailSender {
  const timeoutMs = options.timeoutMs ?? SMTP_TIMEOUT_MS;
  const isLogOnly = !options.smtpUrl;
  const transport = options.smtpUrl
    ? nodemailer.createTransport({
        url: options.smtpUrl,
        // Kept-open connections: a new SMTP session per message (connect, greeting, EHLO, maybe TLS)
        // was most of a confirmation's cost on the HTTP thread.
        pool: true,
        maxConnections: SMTP_POOL_CONNECTIONS,
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
      })
    : nodemailer.createTransport({ jsonTransport: true });
  return {
    async send(notification) {
      const rendered = await renderEmail(notification);
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
        options.logger.info(
          {
            notificationId: notification.id,
            to: maskRecipient(notification.recipient),
            subject: rendered.subject,
            text: withoutTicketCode(rendered.text, notification.data.ticketCode),
          },
          'email (log transport, SMTP_URL unset)',
        );
      } else if ((info as { rejected?: unknown[] }).rejected?.length) {
        throw new Error(`SMTP server rejected ${notification.recipient}`);
      }
    },
    close() {
      transport.close();
    },
  };
}
