/**
 * @module tickets/qr
 * QR images of ticket codes (qrcode package): an SVG or PNG data URL for JSON answers, and PNG bytes for
 * `Accept: image/png`. Error correction M survives a scuffed phone screen and keeps a ticket code's QR
 * small enough to scan at a gate.
 *
 * @example
 * const png = await qrPng(ticket.code);          // Buffer, image/png
 * const url = await qrSvgDataUrl(ticket.code);   // data:image/svg+xml;base64,…
 */
import QRCode from 'qrcode';

/** Longest text we encode; QR version 40 at level M holds 2331 bytes, and a denser code scans badly. */
export const MAX_QR_TEXT_CHARS = 2000;
/** Pixels per module in PNGs: about 300 px for a ticket code, crisp on any phone. */
export const QR_PNG_SCALE = 4;
export const QR_MARGIN_MODULES = 2;

const options = { errorCorrectionLevel: 'M', margin: QR_MARGIN_MODULES } as const;

function checked(text: string): string {
  if (text.length === 0 || text.length > MAX_QR_TEXT_CHARS)
    throw new RangeError(`QR text must be 1 to ${MAX_QR_TEXT_CHARS} characters, not ${text.length}`);
  return text;
}

/** The PNG image itself. */
export async function qrPng(text: string): Promise<Buffer> {
  return QRCode.toBuffer(checked(text), { ...options, type: 'png', scale: QR_PNG_SCALE });
}

/** `data:image/png;base64,…` */
export async function qrPngDataUrl(text: string): Promise<string> {
  return QRCode.toDataURL(checked(text), { ...options, type: 'image/png', scale: QR_PNG_SCALE });
}

/** The SVG document (scales to any size, a few kilobytes). */
export async function qrSvg(text: string): Promise<string> {
  return QRCode.toString(checked(text), { ...options, type: 'svg' });
}

/** `data:image/svg+xml;base64,…` */
export async function qrSvgDataUrl(text: string): Promise<string> {
  const svg = await qrSvg(text);
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}
