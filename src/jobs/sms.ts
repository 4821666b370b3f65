/**
 * @module jobs/sms
 * SMS delivery behind the `SmsSender` port: `HttpSmsSender` posts `{to, body}` as JSON to a webhook (a
 * gateway or a relay service), `LogSmsSender` writes the message to the log (the default in development).
 * Each message carries its notification id, which the webhook receives as its idempotency key.
 */
import type { Logger } from '../logger.js';
import type { OutgoingNotification } from './email.js';
import { formatAmount, formatStartTime, maskRecipient } from './outbox.js';

export interface SmsMessage {
  /** E.164 phone number. */
  to: string;
  body: string;
  /** The notification row's id: the same for every attempt at one message. */
  notificationId: string;
}

export interface SmsSender {
  /** Resolves once the gateway accepted the message; rejects on any failure (the caller retries). */
  send(message: SmsMessage): Promise<void>;
}

/** Names the notification on the webhook request, as `X-Notification-Id` does on an email. */
export const SMS_NOTIFICATION_ID_HEADER = 'X-Notification-Id';

/** One SMS segment is 160 GSM characters; we allow a few segments and cut the rest. */
export const MAX_SMS_LENGTH = 480;
export const SMS_TIMEOUT_MS = 10_000;

/** The SMS text of a template: short, the facts needed at the door. */
export function renderSms(notification: OutgoingNotification): string {
  const d = notification.data;
  const movie = d.movieTitle || 'your show';
  const when = formatStartTime(d.startTime, d.timeZone);
  const seats = d.seats?.length ? ` Seats ${d.seats.join(', ')}.` : '';
  let text: string;
  switch (notification.template) {
    case 'booking_confirmed':
      text = `BoxOffice: booking ${d.bookingId ?? ''} confirmed. ${movie}${d.theaterName ? ` at ${d.theaterName}` : ''}${when ? `, ${when}` : ''}.${seats}${d.amount ? ` Paid ${formatAmount(d.amount)}.` : ''}`;
      break;
    case 'booking_cancelled':
      text = `BoxOffice: booking ${d.bookingId ?? ''} for ${movie} is cancelled. ${d.reason ?? 'Any refund goes to your original payment method.'}`;
      break;
    case 'show_reminder':
      text = `BoxOffice: reminder, ${movie}${d.theaterName ? ` at ${d.theaterName}` : ''} starts ${when || 'soon'}.${seats}`;
      break;
    case 'custom':
      text = d.body ?? d.subject ?? '';
      break;
  }
  return text.slice(0, MAX_SMS_LENGTH);
}

/**
 * POSTs `{"to": "+91…", "body": "…"}`; any non-2xx answer or a timeout is a failed attempt. A timed-out
 * attempt may still have reached the gateway, so each request carries the notification id in
 * `X-Notification-Id` and `Idempotency-Key`: a retry of the same message has the same key, and a gateway
 * that honours it texts once.
 *
 * @example
 * const sms = new HttpSmsSender(config.SMS_WEBHOOK_URL);
 * await sms.send({ to: '+919876543210', body: 'Your show starts at 18:30', notificationId: 'ntf_…' });
 */
export class HttpSmsSender implements SmsSender {
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number = SMS_TIMEOUT_MS,
  ) {}

  async send({ to, body, notificationId }: SmsMessage): Promise<void> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [SMS_NOTIFICATION_ID_HEADER]: notificationId,
        'idempotency-key': notificationId,
      },
      body: JSON.stringify({ to, body }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    // The body is not needed; reading it frees the connection for reuse.
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new Error(`SMS webhook answered ${response.status}`);
  }
}

export class LogSmsSender implements SmsSender {
  constructor(private readonly logger: Logger) {}

  /** The recipient is masked: a log is read by more people than the phone's owner. */
  async send({ to, body, notificationId }: SmsMessage): Promise<void> {
    this.logger.info(
      { notificationId, to: maskRecipient(to), body },
      'sms (log transport, SMS_WEBHOOK_URL unset)',
    );
  }
}
