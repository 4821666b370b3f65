/**
 * @module tickets/qr
 * QR images of ticket codes (paulmillr's `qr` package): an SVG or PNG data URL for JSON answers, and PNG
 * bytes for `Accept: image/png` and the confirmation email. Error correction M survives a scuffed phone
 * screen and keeps a ticket code's QR small enough to scan at a gate.
 *
 * Images are drawn in a worker thread (`qr-worker.ts`), started on first use and not keeping the process
 * alive, so a drawing never holds up a seat request. Every confirmed booking's email carries one, so a
 * drawing's cost is paid at the on-sale's rate on the same cores as the bookings: the `qrcode` package
 * took ~3.3 ms of CPU for a ticket code's matrix on this VM (segmenting the text with Dijkstra, scoring the
 * eight masks cell by cell), a whole core at 300 tickets a second; `qr` takes ~0.2 ms (its masks scored
 * on bit-packed rows), and the images are written here from its matrix.
 *
 * @example
 * const png = await qrPng(ticket.code);          // Buffer, image/png
 * const url = await qrSvgDataUrl(ticket.code);   // data:image/svg+xml;base64,…
 */
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';
import encodeQR from 'qr';
import { workerEntry } from '../worker-entry.js';

/** Longest text we encode; QR version 40 at level M holds 2331 bytes, and a denser code scans badly. */
export const MAX_QR_TEXT_CHARS = 2000;
/** Pixels per module in PNGs: 340–380 px for a ticket code, crisp on any phone. */
export const QR_PNG_SCALE = 4;
export const QR_MARGIN_MODULES = 2;

export type QrKind = 'png' | 'svg';

export interface QrRequest {
  id: number;
  kind: QrKind;
  text: string;
}

export type QrReply =
  | { id: number; ok: true; png: Uint8Array }
  | { id: number; ok: true; svg: string }
  | { id: number; ok: false; message: string };

function checked(text: string): string {
  if (text.length === 0 || text.length > MAX_QR_TEXT_CHARS)
    throw new RangeError(`QR text must be 1 to ${MAX_QR_TEXT_CHARS} characters, not ${text.length}`);
  return text;
}

/** Modules of one QR symbol: `size` × `size`, row by row, 1 for dark. */
interface QrMatrix {
  size: number;
  data: Uint8Array;
}

/**
 * Matrices drawn lately, by text, on the QR thread: a ticket's code is drawn again on every fetch of its
 * ticket (SVG in JSON, or PNG), and the matrix (Reed-Solomon, choosing a mask: ~0.2 ms) is most of a
 * drawing's cost. The mail thread draws its confirmation's PNG once, without keeping the matrix
 * (`remember: false`): the first ticket fetch draws it again here, ~0.2 ms, cheaper than the three
 * thread messages it took to share one drawing. Bounded: the oldest goes first.
 */
export const MAX_CACHED_QR_MATRICES = 512;
const matrices = new Map<string, QrMatrix>();

function matrixOf(text: string, remember: boolean): QrMatrix {
  const known = matrices.get(text);
  if (known) {
    matrices.delete(text); // to the back: recently used
    matrices.set(text, known);
    return known;
  }
  // The library insists on a quiet zone (ISO/IEC 18004 §5.3.8); ours is drawn below, so ask for the
  // narrowest and take the symbol from inside it.
  const rows = encodeQR(text, 'raw', { ecc: 'medium', border: 1 });
  const size = rows.length - 2;
  const data = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    const row = rows[y + 1]!;
    for (let x = 0; x < size; x++) if (row[x + 1]) data[y * size + x] = 1;
  }
  const matrix = { size, data };
  if (remember) {
    if (matrices.size >= MAX_CACHED_QR_MATRICES) matrices.delete(matrices.keys().next().value!);
    matrices.set(text, matrix);
  }
  return matrix;
}

function pngChunk(type: string, body: Buffer): Buffer {
  const chunk = Buffer.alloc(12 + body.length);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write(type, 4, 'latin1');
  body.copy(chunk, 8);
  chunk.writeUInt32BE(zlib.crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  return chunk;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * A 1-bit greyscale PNG, `QR_PNG_SCALE` pixels per module: what a two-colour image needs. Each module row
 * is packed once and copied for the pixel rows it spans; the rows are not filtered (filter 0): the copies
 * repeat, which deflate finds without help.
 */
function pngOf({ size, data }: QrMatrix): Buffer {
  const side = (size + 2 * QR_MARGIN_MODULES) * QR_PNG_SCALE;
  const rowBytes = 1 + Math.ceil(side / 8); // filter byte (0: none), then 8 pixels a byte
  const raw = Buffer.alloc(rowBytes * side, 0xff); // white: 1 bits; the filter bytes are set below
  for (let y = 0; y < side; y++) raw[y * rowBytes] = 0;
  const margin = QR_MARGIN_MODULES * QR_PNG_SCALE;
  for (let my = 0; my < size; my++) {
    const first = (margin + my * QR_PNG_SCALE) * rowBytes;
    for (let mx = 0; mx < size; mx++) {
      if (!data[my * size + mx]) continue;
      for (let x = margin + mx * QR_PNG_SCALE, end = x + QR_PNG_SCALE; x < end; x++)
        raw[first + 1 + (x >> 3)]! &= ~(0x80 >> (x & 7));
    }
    for (let k = 1; k < QR_PNG_SCALE; k++) raw.copy(raw, first + k * rowBytes, first, first + rowBytes);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header[8] = 1; // bit depth
  header[9] = 0; // greyscale; compression, filter and interlace methods stay 0
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', header),
    // The fastest level: ~40 µs against ~190 at the default, for ~25% more bytes (~2.2 against 1.7 KB for
    // a ticket code).
    pngChunk('IDAT', zlib.deflateSync(raw, { level: zlib.constants.Z_BEST_SPEED })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** One path of horizontal runs of dark modules over a white square, one unit per module (qrcode's shape). */
function svgOf({ size, data }: QrMatrix): string {
  const side = size + 2 * QR_MARGIN_MODULES;
  const runs: string[] = [];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (!data[y * size + x]) continue;
      let end = x;
      while (end + 1 < size && data[y * size + end + 1]) end++;
      runs.push(`M${x + QR_MARGIN_MODULES} ${y + QR_MARGIN_MODULES + 0.5}h${end - x + 1}`);
      x = end;
    }
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${side} ${side}" shape-rendering="crispEdges">` +
    `<path fill="#ffffff" d="M0 0h${side}v${side}H0z"/><path stroke="#000000" d="${runs.join('')}"/></svg>\n`
  );
}

/**
 * Draws on the calling thread: what the QR thread runs, and the mail thread for its confirmations (which
 * draw a code once: `remember: false` keeps its matrix out of the cache).
 */
export function drawQr(kind: 'png', text: string, options?: { remember?: boolean }): Buffer;
export function drawQr(kind: 'svg', text: string, options?: { remember?: boolean }): string;
export function drawQr(kind: QrKind, text: string, options?: { remember?: boolean }): Buffer | string;
export function drawQr(kind: QrKind, text: string, { remember = true } = {}): Buffer | string {
  const matrix = matrixOf(checked(text), remember);
  return kind === 'png' ? pngOf(matrix) : svgOf(matrix);
}

interface Waiting {
  resolve(reply: QrReply): void;
  reject(err: Error): void;
}

/** The drawing thread: one, started on first use; a dead one fails its callers and is started again. */
class QrThread {
  #worker?: Worker;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;

  draw(kind: QrKind, text: string): Promise<QrReply> {
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, kind, text } satisfies QrRequest);
      // Only while a drawing is owed does the thread keep the process alive.
      if (this.#waiting.size === 1) worker.ref();
    });
  }

  #start(): Worker {
    const { filename, isEval } = workerEntry(import.meta.url, './qr-worker');
    const worker = new Worker(filename, { eval: isEval, name: 'qr' });
    worker.unref();
    worker.on('message', (reply: QrReply) => {
      const waiting = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      if (this.#waiting.size === 0) worker.unref();
      waiting?.resolve(reply);
    });
    const fail = (err: Error) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      for (const waiting of this.#waiting.values()) waiting.reject(err);
      this.#waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the QR thread exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }
}

const thread = new QrThread();

async function draw(kind: QrKind, text: string): Promise<QrReply & { ok: true }> {
  const reply = await thread.draw(kind, checked(text));
  if (!reply.ok) throw new Error(reply.message);
  return reply;
}

/** The PNG image itself. */
export async function qrPng(text: string): Promise<Buffer> {
  const reply = await draw('png', text);
  if (!('png' in reply)) throw new Error('the QR thread drew no PNG');
  return Buffer.from(reply.png.buffer, reply.png.byteOffset, reply.png.byteLength);
}

/** `data:image/png;base64,…` */
export async function qrPngDataUrl(text: string): Promise<string> {
  return `data:image/png;base64,${(await qrPng(text)).toString('base64')}`;
}

/** The SVG document (scales to any size, a few kilobytes). */
export async function qrSvg(text: string): Promise<string> {
  const reply = await draw('svg', text);
  if (!('svg' in reply)) throw new Error('the QR thread drew no SVG');
  return reply.svg;
}

/** `data:image/svg+xml;base64,…` */
export async function qrSvgDataUrl(text: string): Promise<string> {
  const svg = await qrSvg(text);
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}
