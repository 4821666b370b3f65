/**
 * QR images of ticket codes: PNG bytes, PNG and SVG data URLs, each drawing the QR matrix of the code,
 * drawn in a thread of their own rather than on the main thread.
 */
import fs from 'node:fs';
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

/** CPU ticks (utime + stime) from a `stat` file of /proc. */
function cpuTicks(statFile: string): number {
  const stat = fs.readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

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

  it('draws on a thread of its own: the main thread spends almost none of the CPU', async () => {
    await qrPng(code); // the thread is started and warm
    // The main thread's task id is the process id; the process's own figure counts every thread.
    const mainStat = `/proc/self/task/${process.pid}/stat`;
    const main0 = cpuTicks(mainStat);
    const all0 = cpuTicks('/proc/self/stat');
    for (let round = 0; round < 4; round++)
      await Promise.all(Array.from({ length: 20 }, (_, i) => qrPng(`${code}${round}-${i}`)));
    const main = cpuTicks(mainStat) - main0;
    const all = cpuTicks('/proc/self/stat') - all0;
    // Drawn on the main thread, these 80 PNGs put most of their CPU there (matrix, row filters).
    expect(all).toBeGreaterThanOrEqual(20);
    expect(main / all).toBeLessThan(0.35);
  });
});
