/** Money, seats and times as a movie-goer reads them. Times are shown in the theater's own zone. */
export const DEFAULT_TIME_ZONE = 'Asia/Kolkata';

/**
 * Formatters by currency and fraction digits. Building an Intl.NumberFormat costs far more than using
 * one, and the seat map names every seat's price on each render (500 seats on a big screen). A handful
 * of currencies at most, so the cache stays tiny.
 */
const moneyFormats = new Map<string, Intl.NumberFormat>();

export function money(minor: number | null | undefined, currency = 'INR'): string {
  if (minor === null || minor === undefined) return '';
  const fractionDigits = minor % 100 === 0 ? 0 : 2;
  const key = `${currency}:${fractionDigits}`;
  let format = moneyFormats.get(key);
  if (!format) {
    format = new Intl.NumberFormat('en-IN', {
      style: 'currency',
      currency,
      minimumFractionDigits: fractionDigits,
      maximumFractionDigits: 2,
    });
    moneyFormats.set(key, format);
  }
  return format.format(minor / 100);
}

export function categoryName(code: string): string {
  return code
    .split('_')
    .map((w) => w.charAt(0) + w.slice(1).toLowerCase())
    .join(' ');
}

export function zoneOf(theater: { timeZone?: string } | undefined): string {
  return theater?.timeZone || DEFAULT_TIME_ZONE;
}

export function showTime(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-IN', { timeZone, hour: 'numeric', minute: '2-digit' }).format(
    new Date(iso),
  );
}

export function showDate(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-IN', {
    timeZone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
  }).format(new Date(iso));
}

export function showDateTime(iso: string, timeZone: string): string {
  const zoneName =
    new Intl.DateTimeFormat('en-IN', { timeZone, timeZoneName: 'short' })
      .formatToParts(new Date(iso))
      .find((p) => p.type === 'timeZoneName')?.value ?? timeZone;
  return `${showDate(iso, timeZone)}, ${showTime(iso, timeZone)} (${zoneName})`;
}

/** The calendar day of an instant in a zone, for grouping show times by day. */
export function dayKey(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date(iso));
}

export function listJoin(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
