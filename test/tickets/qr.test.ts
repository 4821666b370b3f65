/**
 * QR images of ticket codes: PNG bytes, PNG and SVG data URLs, each drawing the QR matrix of the code.
 */
import QRCode from 'qrcode';
import { describe, expect, it } from 'vitest';
import {
  MAX_QR_TEXT_CHARS,
  QR_MARGIN_MODULES,
  QR_PNG_SCALE,
  qrPng,
  qrPngDataUrl,
  qrSvg,
  qrSvgDataUrl,
} from '../../src/tickets/qr.js';
import { TicketSigner } from '../../src/tickets/ticket-signer.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const code = TicketSigner.ephemeral().sign({
  bookingId: 'bkg_0123456789abcdefghijkl',
  showId: 'shw_0123456789abcdefghijkl',
  seats: ['A7', 'A8', 'A9', 'A10'],
  holderName: 'Asha Rao',
  userId: 'usr_0123456789abcdefghijkl',
  startTime: '2030-03-15T18:30:00.000Z',
}).code;
/** Modules per side of the code's QR symbol at level M. */
const modules = QRCode.create(code, { errorCorrectionLevel: 'M' }).modules.size;

function pngSize(png: Buffer): { width: number; height: number } {
  // IHDR is the first chunk: width and height are its first two 32-bit fields.
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('ticket QR images', () => {
  it('renders a PNG of the code’s QR symbol, margin and scale included', async () => {
    const png = await qrPng(code);
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    const side = (modules + 2 * QR_MARGIN_MODULES) * QR_PNG_SCALE;
    expect(pngSize(png)).toEqual({ width: side, height: side });
  });

  it('renders the same PNG as a data URL', async () => {
    const url = await qrPngDataUrl(code);
    expect(url.startsWith('data:image/png;base64,')).toBe(true);
    const png = Buffer.from(url.slice('data:image/png;base64,'.length), 'base64');
    expect(png.equals(await qrPng(code))).toBe(true);
  });

  it('renders an SVG data URL whose drawing is the code’s QR symbol', async () => {
    const url = await qrSvgDataUrl(code);
    expect(url.startsWith('data:image/svg+xml;base64,')).toBe(true);
    const svg = Buffer.from(url.slice('data:image/svg+xml;base64,'.length), 'base64').toString('utf8');
    expect(svg).toBe(await qrSvg(code));
    expect(svg).toMatch(/^<svg /);
    const side = modules + 2 * QR_MARGIN_MODULES;
    expect(svg).toContain(`viewBox="0 0 ${side} ${side}"`);
  });

  it('is deterministic: the same code always draws the same image', async () => {
    expect((await qrPng(code)).equals(await qrPng(code))).toBe(true);
    expect(await qrSvgDataUrl(code)).toBe(await qrSvgDataUrl(code));
  });

  it('refuses empty text and text too long to scan', async () => {
    await expect(qrPng('')).rejects.toThrow(RangeError);
    await expect(qrSvgDataUrl('x'.repeat(MAX_QR_TEXT_CHARS + 1))).rejects.toThrow(RangeError);
    expect((await qrPng('x'.repeat(MAX_QR_TEXT_CHARS))).subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  });
});
