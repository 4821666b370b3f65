/**
 * @module tickets/qr
 * QR images of ticket codes (qrcode package): an SVG or PNG data URL for JSON answers, and PNG bytes for
 * `Accept: image/png` and the confirmation email. Error correction M survives a scuffed phone screen and
 * keeps a ticket code's QR small enough to scan at a gate.
 *
 * Images are drawn in a worker thread (`qr-worker.ts`), started on first use and not keeping the process
 * alive: a ticket's PNG costs ~5–8 ms of CPU (pngjs filters every row of 244 × 244 RGBA pixels), which on
 * the main thread stalled every seat request behind each confirmation email at an on-sale.
 *
 * @example
 * const png = await qrPng(ticket.code);          // Buffer, image/png
 * const url = await qrSvgDataUrl(ticket.code);   // data:image/svg+xml;base64,…
 */
import { Worker } from 'node:worker_threads';
import QRCode from 'qrcode';
import { workerEntry } from '../worker-entry.js';

/** Longest text we encode; QR version 40 at level M holds 2331 bytes, and a denser code scans badly. */
export const MAX_QR_TEXT_CHARS = 2000;
/** Pixels per module in PNGs: about 300 px for a ticket code, crisp on any phone. */
export const QR_PNG_SCALE = 4;
export const QR_MARGIN_MODULES = 2;

const options = { errorCorrectionLevel: 'M', margin: QR_MARGIN_MODULES } as const;

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

/** Draws on the calling thread: what the worker runs. */
export async function drawQr(kind: QrKind, text: string): Promise<Buffer | string> {
  return kind === 'png'
    ? QRCode.toBuffer(checked(text), { ...options, type: 'png', scale: QR_PNG_SCALE })
    : QRCode.toString(checked(text), { ...options, type: 'svg' });
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
