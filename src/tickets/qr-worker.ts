/**
 * @module tickets/qr-worker
 * The thread that draws QR images for `qr.ts`: one request at a time, answered by id. PNG bytes are
 * copied into their own buffer and transferred, not cloned.
 */
import { parentPort } from 'node:worker_threads';
import { drawQr, type QrReply, type QrRequest } from './qr.js';

const port = parentPort!;

port.on('message', ({ id, kind, text }: QrRequest) => {
  try {
    const drawn = drawQr(kind, text);
    if (typeof drawn === 'string') {
      port.postMessage({ id, ok: true, svg: drawn } satisfies QrReply);
      return;
    }
    const png = new Uint8Array(drawn);
    port.postMessage({ id, ok: true, png } satisfies QrReply, [png.buffer]);
  } catch (err) {
    port.postMessage({ id, ok: false, message: (err as Error).message } satisfies QrReply);
  }
});
