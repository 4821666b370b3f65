/**
 * @module jobs/outbox
 * The write side of notifications: a `notifications` row (status queued) and an `outbox` row, written by
 * the caller's own app-DB transaction so a booking and its notifications commit or roll back together.
 * Also the read side for GET /api/me/notifications, with recipients masked.
 */
import { newId } from '../ids.js';
import type { Queryable, SqlValue } from '../persistence/store.js';

export type NotificationChannel = 'email' | 'sms';
export type NotificationStatus = 'queued' | 'sent' | 'failed' | 'cancelled';
export const NOTIFICATION_TEMPLATES = [
  'booking_confirmed',
  'booking_cancelled',
  'show_reminder',
  'custom',
] as const;
export type NotificationTemplate = (typeof NOTIFICATION_TEMPLATES)[number];

/** An email address is at most 320 characters; a phone number far less. */
export const MAX_RECIPIENT_LENGTH = 320;
/** `data` is rendered into one message; anything bigger is a bug in the caller. */
export const MAX_NOTIFICATION_DATA_BYTES = 16 * 1024;
export const MAX_LIST_LIMIT = 100;
/** Delivery attempts listed per notification, newest kept; the queues stop far sooner (5 by default). */
export const MAX_ATTEMPTS_LISTED = 20;
/** A booking has at most a handful of notifications; this bounds the cancel loop. */
const MAX_REMINDERS_PER_BOOKING = 50;

/**
 * What a template renders, carried in the row so delivery never reads bookings. Every field is optional:
 * a template renders what it has. `startTime` is ISO-8601 UTC; `amount.total` is in minor units.
 */
export interface NotificationData {
  bookingId?: string;
  userName?: string;
  movieTitle?: string;
  theaterName?: string;
  screenName?: string;
  city?: string;
  startTime?: string;
  /**
   * The theater's IANA zone, in which texts give `startTime`. Filled in by enqueueNotification from the
   * booking's theater; rows without it (queued before migration 009, or with no booking) read in UTC.
   */
  timeZone?: string;
  seats?: string[];
  amount?: { total: number; currency: string };
  ticketCode?: string;
  /** 'booking_cancelled': why, when the customer did not cancel it themselves. */
  reason?: string;
  /** 'custom' only. */
  subject?: string;
  /** 'custom' only. */
  body?: string;
}

export interface NotificationInput {
  userId: string;
  bookingId?: string | null;
  channel: NotificationChannel;
  /** One of NOTIFICATION_TEMPLATES; anything else is refused by an assertion. */
  template: string;
  /** Email address for 'email', E.164 phone number for 'sms'. */
  recipient: string;
  data: NotificationData | Record<string, unknown>;
  /** When to deliver: ISO-8601, epoch ms or a Date. The past means now. */
  sendAt: string | number | Date;
  /**
   * Queues at most one notification per key. Defaults to `bookingId:template:channel` for booking
   * templates (a retried saga does not notify twice); 'custom' has no default.
   */
  dedupeKey?: string;
  /** Epoch ms for created_at; defaults to Date.now(). */
  now?: number;
}

/** The outbox payloads the relay reads; `kind` is the outbox row's kind. */
export type OutboxMessage =
  | { kind: 'notify'; notificationId: string; sendAtMs: number }
  | { kind: 'cancel'; notificationId: string };

/** One try at delivering: when, and whether the SMTP server or SMS gateway accepted it. */
export interface DeliveryAttemptView {
  at: string;
  ok: boolean;
  error: string | null;
}

export interface NotificationView {
  id: string;
  channel: NotificationChannel;
  template: string;
  status: NotificationStatus;
  recipient: string;
  bookingId: string | null;
  sendAt: string;
  sentAt: string | null;
  attempts: number;
  lastError: string | null;
  /** Every recorded attempt, oldest first (at most MAX_ATTEMPTS_LISTED, the latest ones). */
  deliveryAttempts: DeliveryAttemptView[];
  createdAt: string;
}

export interface NotificationPage {
  notifications: NotificationView[];
  nextCursor: string | null;
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

export function isNotificationTemplate(template: string): template is NotificationTemplate {
  return (NOTIFICATION_TEMPLATES as readonly string[]).includes(template);
}

function toMs(at: string | number | Date): number {
  const ms = at instanceof Date ? at.getTime() : typeof at === 'number' ? at : Date.parse(at);
  assert(Number.isFinite(ms), `sendAt is not a time: ${String(at)}`);
  return ms;
}

/** Notifications queued by one call at most (a booking sends four: confirmation and reminder, twice). */
export const MAX_NOTIFICATIONS_PER_ENQUEUE = 16;

/**
 * Queues one notification inside the caller's transaction (`tx`, from `store.transaction`) and returns
 * its id (the existing id when the dedupe key was already used). Only statements on `tx`.
 *
 * @example
 * await store.transaction(async (tx) => {
 *   await confirmBookingRow(tx, ...);
 *   await enqueueNotification(tx, { userId, bookingId, channel: 'email', template: 'booking_confirmed',
 *     recipient: user.email, data: { bookingId, movieTitle, ticketCode }, sendAt: new Date().toISOString() });
 * });
 */
export async function enqueueNotification(tx: Queryable, input: NotificationInput): Promise<string> {
  return (await enqueueNotifications(tx, [input]))[0]!;
}

/**
 * Queues several notifications (at most MAX_NOTIFICATIONS_PER_ENQUEUE) inside the caller's transaction,
 * in two statements whatever their number (their rows, then their outbox rows): each statement is a round
 * trip on PostgreSQL. Returns their ids in the order given, as `enqueueNotification` would one by one.
 *
 * @example
 * await store.transaction(async (tx) => {
 *   await enqueueNotifications(tx, [confirmationEmail, confirmationSms]);
 * });
 */
export async function enqueueNotifications(
  tx: Queryable,
  inputs: readonly NotificationInput[],
): Promise<string[]> {
  assert(isTransaction(tx), 'enqueueNotification must run inside the caller’s transaction');
  assert(inputs.length <= MAX_NOTIFICATIONS_PER_ENQUEUE, 'too many notifications for one enqueue');
  if (inputs.length === 0) return [];
  // Zones read first (only for messages without one), so that when every message has its zone no
  // await comes before the inserts: they leave in the caller's turn, with its other statements.
  const zones = new Map<string, string | undefined>();
  for (const input of inputs)
    if (needsZone(input) && !zones.has(input.bookingId!))
      zones.set(input.bookingId!, await theaterZoneOf(tx, input.bookingId!));
  const rows = inputs.map((input) => notificationRow(input, zones));
  // Racing enqueues of one dedupe key: the unique index lets one insert (and return its id); the
  // others read its id. The outbox rows are written by the statement after it, for the rows it
  // inserted only (ids are new, so a row with one of them is this insert's), without waiting for its
  // answer: both go in one round trip.
  const [inserted] = await Promise.all([
    tx.all<{ id: string }>(
      `INSERT INTO notifications (id, user_id, booking_id, channel, template, recipient, data, status, send_at,
         attempts, created_at, dedupe_key)
       VALUES ${rows.map(() => "(?, ?, ?, ?, ?, ?, ?, 'queued', ?, 0, ?, ?)").join(', ')}
       ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
      rows.flatMap((r) => r.params),
    ),
    writeOutbox(
      tx,
      rows.map((r) => ({
        message: { kind: 'notify', notificationId: r.id, sendAtMs: r.sendAtMs },
        nowMs: r.nowMs,
      })),
      { ifNotificationExists: true },
    ),
  ]);
  const isInserted = new Set(inserted.map((r) => r.id));
  const taken = rows.filter((r) => !isInserted.has(r.id)).map((r) => r.dedupeKey!);
  const existing =
    taken.length === 0
      ? []
      : await tx.all<{ id: string; dedupe_key: string }>(
          `SELECT id, dedupe_key FROM notifications WHERE dedupe_key IN (${taken.map(() => '?').join(', ')})`,
          taken,
        );
  const idOfKey = new Map(existing.map((r) => [r.dedupe_key, r.id]));
  return rows.map((r) => (isInserted.has(r.id) ? r.id : idOfKey.get(r.dedupeKey!)!));
}

interface NotificationRow {
  id: string;
  sendAtMs: number;
  nowMs: number;
  dedupeKey: string | null;
  params: SqlValue[];
}

function notificationRow(
  input: NotificationInput,
  zones: ReadonlyMap<string, string | undefined>,
): NotificationRow {
  assert(isNotificationTemplate(input.template), `unknown notification template ${input.template}`);
  assert(input.channel === 'email' || input.channel === 'sms', `unknown channel ${input.channel}`);
  assert(
    input.recipient.length > 0 && input.recipient.length <= MAX_RECIPIENT_LENGTH,
    'recipient must be 1..320 characters',
  );
  const bookingId = input.bookingId ?? null;
  const zone = needsZone(input) ? zones.get(bookingId!) : undefined;
  const data = JSON.stringify(zone === undefined ? (input.data ?? {}) : { ...input.data, timeZone: zone });
  assert(data.length <= MAX_NOTIFICATION_DATA_BYTES, 'notification data is larger than 16 KiB');
  const nowMs = input.now ?? Date.now();
  const sendAtMs = toMs(input.sendAt);
  const dedupeKey =
    input.dedupeKey ??
    (bookingId !== null && input.template !== 'custom'
      ? `${bookingId}:${input.template}:${input.channel}`
      : null);
  const id = newId('ntf');
  const params: SqlValue[] = [
    id,
    input.userId,
    bookingId,
    input.channel,
    input.template,
    input.recipient,
    data,
    new Date(sendAtMs).toISOString(),
    new Date(nowMs).toISOString(),
    dedupeKey,
  ];
  return { id, sendAtMs, nowMs, dedupeKey, params };
}

/**
 * A booking's texts read in its theater's local time. The zone is looked up here, in the caller's
 * transaction, rather than by each caller, so that no booking template can go out in UTC by omission;
 * a zone the caller gave wins (the booking saga gives the one its show cache holds, saving the read).
 */
function needsZone(input: NotificationInput): boolean {
  return (
    input.bookingId !== undefined &&
    input.bookingId !== null &&
    input.template !== 'custom' &&
    !('timeZone' in (input.data ?? {}))
  );
}

async function theaterZoneOf(tx: Queryable, bookingId: string): Promise<string | undefined> {
  const row = await tx.get<{ time_zone: string }>(
    `SELECT t.time_zone FROM bookings b JOIN shows s ON s.id = b.show_id JOIN theaters t ON t.id = s.theater_id
     WHERE b.id = ?`,
    [bookingId],
  );
  return row?.time_zone;
}

/**
 * Withdraws a booking's reminders that have not gone out, inside the caller's transaction (`tx`): their
 * rows turn 'cancelled' here (so delivery skips them even if a job fires), and a 'cancel' outbox row per
 * reminder lets the relay remove the delayed job. Returns how many were cancelled.
 */
export async function cancelBookingReminders(
  tx: Queryable,
  bookingId: string,
  nowMs: number = Date.now(),
): Promise<number> {
  assert(isTransaction(tx), 'cancelBookingReminders must run inside the caller’s transaction');
  const rows = await tx.all<{ id: string }>(
    `SELECT id FROM notifications WHERE booking_id = ? AND template = 'show_reminder' AND status = 'queued'
     LIMIT ${MAX_REMINDERS_PER_BOOKING}`,
    [bookingId],
  );
  for (const { id } of rows) {
    // A reminder delivered meanwhile stays delivered: the conditional UPDATE decides, once.
    const cancelled = await tx.run(
      `UPDATE notifications SET status = 'cancelled', last_error = 'booking cancelled' WHERE id = ? AND status = 'queued'`,
      [id],
    );
    if (cancelled.changes === 1)
      await writeOutbox(tx, [{ message: { kind: 'cancel', notificationId: id }, nowMs }]);
  }
  return rows.length;
}

/** A store can open transactions; a transaction's `tx` cannot: rows written on a store would commit alone. */
function isTransaction(q: Queryable): boolean {
  return !('transaction' in q);
}

/**
 * The outbox rows of `entries`, in their order (the relay reads by id), in one statement. With
 * `ifNotificationExists`, only those whose notification row exists (the caller's insert just before,
 * unanswered yet, may have skipped some on a dedupe key): the statement needs no answer from it.
 */
async function writeOutbox(
  tx: Queryable,
  entries: readonly { message: OutboxMessage; nowMs: number }[],
  options: { ifNotificationExists?: boolean } = {},
): Promise<void> {
  if (entries.length === 0) return;
  const params: SqlValue[] = [];
  if (!options.ifNotificationExists) {
    for (const { message, nowMs } of entries) {
      const { kind, ...payload } = message;
      params.push(kind, JSON.stringify(payload), new Date(nowMs).toISOString());
    }
    await tx.run(
      `INSERT INTO outbox (kind, payload, created_at) VALUES ${entries.map(() => '(?, ?, ?)').join(', ')}`,
      params,
    );
    return;
  }
  entries.forEach(({ message, nowMs }, index) => {
    const { kind, ...payload } = message;
    // column5 orders the rows as given: text on both stores, so zero-padded (at most 16 entries).
    params.push(kind, JSON.stringify(payload), new Date(nowMs).toISOString(), message.notificationId);
    params.push(String(index).padStart(2, '0'));
  });
  // A VALUES list's columns are column1… on both SQLite and PostgreSQL.
  await tx.run(
    `INSERT INTO outbox (kind, payload, created_at)
     SELECT v.column1, v.column2, v.column3 FROM (VALUES ${entries.map(() => '(?, ?, ?, ?, ?)').join(', ')}) AS v
     WHERE EXISTS (SELECT 1 FROM notifications n WHERE n.id = v.column4) ORDER BY v.column5`,
    params,
  );
}

/** Parses an outbox row back into a message; null for a row this code does not understand. */
export function parseOutboxRow(kind: string, payload: string): OutboxMessage | null {
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null) return null;
  const { notificationId, sendAtMs } = body as { notificationId?: unknown; sendAtMs?: unknown };
  if (typeof notificationId !== 'string') return null;
  if (kind === 'notify' && typeof sendAtMs === 'number') return { kind, notificationId, sendAtMs };
  if (kind === 'cancel') return { kind, notificationId };
  return null;
}

/** `j***@example.com`, `+91******3210`: enough for a user to recognise, not enough to harvest. */
export function maskRecipient(recipient: string): string {
  const at = recipient.lastIndexOf('@');
  if (at > 0) return `${recipient[0]}***${recipient.slice(at)}`;
  if (recipient.length <= 6) return `${'*'.repeat(Math.max(0, recipient.length - 2))}${recipient.slice(-2)}`;
  return `${recipient.slice(0, 3)}${'*'.repeat(recipient.length - 7)}${recipient.slice(-4)}`;
}

interface ListRow {
  id: string;
  channel: NotificationChannel;
  template: string;
  status: NotificationStatus;
  recipient: string;
  booking_id: string | null;
  send_at: string;
  sent_at: string | null;
  attempts: number;
  last_error: string | null;
  created_at: string;
}

const LIST_COLUMNS = `id, channel, template, status, recipient, booking_id, send_at, sent_at, attempts, last_error,
  created_at`;

function encodeCursor(row: ListRow): string {
  return Buffer.from(`${row.created_at}|${row.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } | null {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  return createdAt && id ? { createdAt, id } : null;
}

/** Whether a cursor is one `listNotifications` gave out; the route refuses any other with 400. */
export function isNotificationCursor(cursor: string): boolean {
  const after = /^[A-Za-z0-9_-]+$/.test(cursor) ? decodeCursor(cursor) : null;
  return after !== null && !Number.isNaN(Date.parse(after.createdAt));
}

/**
 * A user's notifications, newest first, `limit` (1..100) per page; pass `nextCursor` back for the next page.
 * An unreadable cursor starts from the newest.
 */
export async function listNotifications(
  q: Queryable,
  userId: string,
  options: { cursor?: string; limit: number },
): Promise<NotificationPage> {
  const limit = Math.max(1, Math.min(MAX_LIST_LIMIT, Math.trunc(options.limit)));
  const after = options.cursor ? decodeCursor(options.cursor) : null;
  const rows = after
    ? await q.all<ListRow>(
        `SELECT ${LIST_COLUMNS} FROM notifications WHERE user_id = ? AND (created_at < ? OR (created_at = ? AND id < ?))
         ORDER BY created_at DESC, id DESC LIMIT ?`,
        [userId, after.createdAt, after.createdAt, after.id, limit + 1],
      )
    : await q.all<ListRow>(
        `SELECT ${LIST_COLUMNS} FROM notifications WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
        [userId, limit + 1],
      );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const attemptsOf = await deliveryAttempts(
    q,
    page.map((r) => r.id),
  );
  return {
    notifications: page.map((r) => toView(r, attemptsOf.get(r.id) ?? [])),
    nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
  };
}

/** One notification as the list shows it; undefined when there is no such id. */
export async function getNotification(q: Queryable, id: string): Promise<NotificationView | undefined> {
  const row = await q.get<ListRow>(`SELECT ${LIST_COLUMNS} FROM notifications WHERE id = ?`, [id]);
  return row && toView(row, (await deliveryAttempts(q, [id])).get(id) ?? []);
}

function toView(r: ListRow, attempts: DeliveryAttemptView[]): NotificationView {
  return {
    id: r.id,
    channel: r.channel,
    template: r.template,
    status: r.status,
    recipient: maskRecipient(r.recipient),
    bookingId: r.booking_id,
    sendAt: r.send_at,
    sentAt: r.sent_at,
    attempts: r.attempts,
    lastError: r.last_error,
    deliveryAttempts: attempts,
    createdAt: r.created_at,
  };
}

/** The recorded attempts of a page of notifications (at most MAX_LIST_LIMIT ids), by notification id. */
async function deliveryAttempts(q: Queryable, ids: string[]): Promise<Map<string, DeliveryAttemptView[]>> {
  assert(ids.length <= MAX_LIST_LIMIT, 'too many notifications for one attempts query');
  const byId = new Map<string, DeliveryAttemptView[]>();
  if (ids.length === 0) return byId;
  // PostgreSQL 15 wants a name on a subquery in FROM (`newest_first`); SQLite takes it as well.
  const rows = await q.all<{ notification_id: string; at: string; ok: number; error: string | null }>(
    `SELECT notification_id, at, ok, error FROM (
       SELECT notification_id, id, at, ok, error,
         ROW_NUMBER() OVER (PARTITION BY notification_id ORDER BY id DESC) AS newest
       FROM notification_attempts WHERE notification_id IN (${ids.map(() => '?').join(', ')})) AS newest_first
     WHERE newest <= ${MAX_ATTEMPTS_LISTED} ORDER BY id`,
    ids,
  );
  for (const row of rows) {
    const list = byId.get(row.notification_id) ?? [];
    list.push({ at: row.at, ok: row.ok === 1, error: row.error });
    byId.set(row.notification_id, list);
  }
  return byId;
}

/** `₹350.00` from minor units, with the currency's own number of decimals. */
export function formatAmount(amount: NotificationData['amount']): string {
  if (!amount || !Number.isFinite(amount.total)) return '';
  try {
    const { format, digits } = currencyFormatFor(amount.currency);
    return format.format(amount.total / 10 ** digits);
  } catch {
    return `${amount.total} ${amount.currency}`;
  }
}

/**
 * Building an `Intl.NumberFormat` for a currency costs ~0.2 ms (ICU loads the locale's currency data):
 * every booking's email and SMS formatted their amount with a new one, on the HTTP thread. One per
 * currency serves every later message. Throws for a currency code Intl does not accept.
 */
function currencyFormatFor(currency: string): { format: Intl.NumberFormat; digits: number } {
  let cached = currencyFormats.get(currency);
  if (!cached) {
    const format = new Intl.NumberFormat('en-IN', { style: 'currency', currency });
    cached = { format, digits: format.resolvedOptions().maximumFractionDigits ?? 2 };
    if (currencyFormats.size >= MAX_CACHED_FORMATTERS) currencyFormats.clear();
    currencyFormats.set(currency, cached);
  }
  return cached;
}
const currencyFormats = new Map<string, { format: Intl.NumberFormat; digits: number }>();

/**
 * `Sat 5 Dec 2026, 6:30 pm IST`: the local time in the theater's zone, named so that nobody has to
 * guess it. UTC when no zone is known (or one Intl does not know); the raw text when it is not a time.
 */
export function formatStartTime(iso: string | undefined, timeZone = 'UTC'): string {
  if (!iso) return '';
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  const zone = isKnownZone(timeZone) ? timeZone : 'UTC';
  const parts = formatterFor('en-GB', zone, 'time').formatToParts(ms);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  const date = `${part('weekday')} ${part('day')} ${part('month')} ${part('year')}`;
  return `${date}, ${part('hour')}:${part('minute')} ${part('dayPeriod')} ${zoneLabel(zone, ms)}`;
}

function isKnownZone(zone: string): boolean {
  try {
    formatterFor('en', zone, 'zone');
    return true;
  } catch {
    return false;
  }
}

/** Distinct (locale, zone, purpose) formatters kept; past it the cache starts again (zones are few). */
export const MAX_CACHED_FORMATTERS = 512;
const formatters = new Map<string, Intl.DateTimeFormat>();
const FORMAT_OPTIONS = {
  time: {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    hourCycle: 'h12',
  },
  label: { timeZoneName: 'short' },
  zone: {},
} as const satisfies Record<string, Intl.DateTimeFormatOptions>;

/**
 * Building an `Intl.DateTimeFormat` costs tens of microseconds (ICU loads the zone and the locale's
 * patterns); every queued booking message formats its show time five ways, on the HTTP thread. Formatters
 * are immutable, so one per (locale, zone, purpose) serves every later message. Throws for an unknown zone.
 */
function formatterFor(
  locale: string,
  zone: string,
  purpose: keyof typeof FORMAT_OPTIONS,
): Intl.DateTimeFormat {
  const key = `${locale}|${zone}|${purpose}`;
  let formatter = formatters.get(key);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat(locale, { timeZone: zone, ...FORMAT_OPTIONS[purpose] });
    if (formatters.size >= MAX_CACHED_FORMATTERS) formatters.clear();
    formatters.set(key, formatter);
  }
  return formatter;
}

/**
 * The zone's abbreviation where one is in common use (IST, EST, CET), else its offset (GMT+11). Each
 * locale knows the abbreviations of its own region only, so India's is asked first (IST is also Irish).
 */
const LABEL_LOCALES = ['en-IN', 'en-GB', 'en-US'] as const;

function zoneLabel(zone: string, ms: number): string {
  const labels = LABEL_LOCALES.map(
    (locale) =>
      formatterFor(locale, zone, 'label')
        .formatToParts(ms)
        .find((p) => p.type === 'timeZoneName')?.value ?? '',
  );
  return labels.find((label) => label !== '' && !/^GMT[+-]/.test(label)) ?? labels[1] ?? zone;
}
