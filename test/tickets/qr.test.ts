/**
 * QR images of ticket codes: PNG bytes, PNG and SVG data URLs, each drawing the QR matrix of the code,
 * drawn in a thread of their own rather than on the main thread. An independent decoder (jsQR, as a
 * phone's camera app would) reads the code back from the PNG.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import jsQRModule from 'jsqr';
import encodeQR from 'qr';
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

/** jsQR is CommonJS whose typings declare a default export: under NodeNext that is `.default`. */
const jsQR = jsQRModule.default;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const code = TicketSigner.ephemeral().sign({
  bookingId: 'bkg_0123456789abcdefghijkl',
  showId: 'shw_0123456789abcdefghijkl',
  seats: ['A7', 'A8', 'A9', 'A10'],
  holderName: 'Asha Rao',
  userId: 'usr_0123456789abcdefghijkl',
  startTime: '2030-03-15T18:30:00.000Z',
}).code;
/** The code's QR symbol at level M as the library draws it: modules per side, and which are dark. */
const symbol = encodeQR(code, 'raw', { ecc: 'medium', border: 1 });
const modules = symbol.length - 2;
const isDark = (x: number, y: number) =>
  x >= 0 && y >= 0 && x < modules && y < modules && symbol[y + 1]![x + 1] === true;

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

/**
 * Reads a 1-bit greyscale PNG as any decoder does: chunks, IDAT inflated, each row's filter undone
 * (PNG's five, one byte per pixel unit for filtering). Answers dark (true) or light per pixel.
 */
function readBlackAndWhitePng(png: Buffer): {
  width: number;
  height: number;
  dark(x: number, y: number): boolean;
} {
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = Math.ceil(width / 8);
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const row = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    const up = rows[y - 1] ?? Buffer.alloc(stride);
    for (let i = 0; i < stride; i++) {
      const a = i > 0 ? row[i - 1]! : 0;
      const b = up[i]!;
      const c = i > 0 ? up[i - 1]! : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      row[i] = (row[i]! + [0, a, b, (a + b) >> 1, paeth][filter]!) & 0xff;
    }
    rows.push(row);
  }
  return { width, height, dark: (x, y) => (rows[y]![x >> 3]! & (0x80 >> (x & 7))) === 0 };
}

describe('ticket QR images', () => {
  it('renders a PNG of the code’s QR symbol, margin and scale included', async () => {
    const png = await qrPng(code);
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    const side = (modules + 2 * QR_MARGIN_MODULES) * QR_PNG_SCALE;
    expect(pngSize(png)).toEqual({ width: side, height: side });
  });

  it('draws every module of the symbol, margin white, as a two-colour PNG that any decoder reads', async () => {
    const png = await qrPng(code);
    // IHDR bit depth 1, colour type 0: a black-and-white image needs no more.
    expect({ bitDepth: png[24], colourType: png[25] }).toEqual({ bitDepth: 1, colourType: 0 });
    const image = readBlackAndWhitePng(png);
    const wrong: string[] = [];
    for (let y = 0; y < image.height; y++)
      for (let x = 0; x < image.width; x++) {
        const mx = Math.floor(x / QR_PNG_SCALE) - QR_MARGIN_MODULES;
        const my = Math.floor(y / QR_PNG_SCALE) - QR_MARGIN_MODULES;
        if (image.dark(x, y) !== isDark(mx, my)) wrong.push(`${x},${y}`);
      }
    expect(wrong.slice(0, 10)).toEqual([]);
  });

  it('draws the same dark modules in the SVG', async () => {
    const svg = await qrSvg(code);
    const path = /<path stroke="#000000" d="([^"]+)"/.exec(svg)?.[1] ?? '';
    const dark = new Set<string>();
    // Horizontal runs: "M x y+0.5" (or relative "m dx dy") then "h length", one unit per module.
    let x = 0;
    let y = 0;
    for (const [, op, a, b] of path.matchAll(/([Mmh])(-?[\d.]+)(?:\s+(-?[\d.]+))?/g)) {
      if (op === 'M') [x, y] = [Number(a), Number(b)];
      else if (op === 'm') [x, y] = [x + Number(a), y + Number(b)];
      else {
        for (let k = 0; k < Number(a); k++)
          dark.add(`${x + k - QR_MARGIN_MODULES},${y - 0.5 - QR_MARGIN_MODULES}`);
        x += Number(a);
      }
    }
    const expected = new Set<string>();
    for (let my = 0; my < modules; my++)
      for (let mx = 0; mx < modules; mx++) if (isDark(mx, my)) expected.add(`${mx},${my}`);
    expect(dark).toEqual(expected);
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

  it('draws codes that an independent decoder reads back, whatever their length', async () => {
    const texts = [
      code,
      'x',
      ...[40, 300, 700, 1500].map((n) => randomBytes(n).toString('base64url').slice(0, n)),
    ];
    for (const text of texts) {
      const image = readBlackAndWhitePng(await qrPng(text));
      const rgba = new Uint8ClampedArray(image.width * image.height * 4);
      for (let y = 0; y < image.height; y++)
        for (let x = 0; x < image.width; x++) {
          const at = (y * image.width + x) * 4;
          rgba.fill(image.dark(x, y) ? 0 : 255, at, at + 3);
          rgba[at + 3] = 255;
        }
      expect(jsQR(rgba, image.width, image.height)?.data).toBe(text);
    }
  });

  it('draws on a thread of its own: the main thread spends almost none of the CPU', async () => {
    await qrPng(code); // the thread is started and warm
    // The main thread's task id is the process id; the process's own figure counts every thread.
    const mainStat = `/proc/self/task/${process.pid}/stat`;
    const main0 = cpuTicks(mainStat);
    const all0 = cpuTicks('/proc/self/stat');
    // Distinct codes (no cached matrix), 20 at a time, until the drawings took 20 ticks of CPU.
    for (let round = 0; round < 500 && cpuTicks('/proc/self/stat') - all0 < 20; round++)
      await Promise.all(Array.from({ length: 20 }, (_, i) => qrPng(`${code}${round}-${i}`)));
    const main = cpuTicks(mainStat) - main0;
    const all = cpuTicks('/proc/self/stat') - all0;
    expect(all).toBeGreaterThanOrEqual(20);
    expect(main / all).toBeLessThan(0.35);
  });
});
