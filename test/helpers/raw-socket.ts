/**
 * Raw TCP clients for tests that must send what no well-behaved library would: hand-built WebSocket
 * frames (reserved opcodes, unmasked, oversized, lying lengths), broken request lines and headers, and
 * connections cut with a TCP reset. Every wait is bounded; none is an assertion.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import WebSocket from 'ws';

export interface RawReply {
  /** Everything the server sent before it closed or the wait ended. */
  bytes: Buffer;
  /** The status of the first HTTP status line, if one arrived. */
  status: number | undefined;
  closedByServer: boolean;
}

export function connect(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Collects what the server sends until it closes, `until` says enough, or `waitMs` passes. */
export function collect(
  socket: net.Socket,
  options: { waitMs?: number; until?: (bytes: Buffer) => boolean } = {},
): Promise<RawReply> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let isDone = false;
    const finish = (closedByServer: boolean) => {
      if (isDone) return;
      isDone = true;
      clearTimeout(timer);
      socket.off('data', onData);
      const bytes = Buffer.concat(chunks);
      resolve({ bytes, status: statusOf(bytes), closedByServer });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      if (options.until?.(Buffer.concat(chunks))) finish(false);
    };
    const timer = setTimeout(() => finish(false), options.waitMs ?? 1_000);
    socket.on('data', onData);
    socket.once('close', () => finish(true));
    socket.once('end', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

function statusOf(bytes: Buffer): number | undefined {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(bytes.subarray(0, 32).toString('latin1'));
  return match ? Number(match[1]) : undefined;
}

/** True once `bytes` hold a 101's head, or a whole reply with the body its content-length announces. */
export function isCompleteReply(bytes: Buffer): boolean {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd < 0) return false;
  const head = bytes.subarray(0, headEnd).toString('latin1');
  if (head.startsWith('HTTP/1.1 101')) return true;
  const length = /\r\ncontent-length: (\d+)/i.exec(head);
  return length !== null && bytes.length >= headEnd + 4 + Number(length[1]);
}

/** The body of a raw HTTP reply, parsed as JSON. */
export function jsonBodyOf(reply: RawReply): any {
  const text = reply.bytes.toString('utf8');
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
}

export function upgradeRequest(path: string, extraHeaders: string[] = []): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...extraHeaders,
    '',
    '',
  ].join('\r\n');
}

/** Opens a feed by hand and returns the socket once the 101 has arrived, or the refusal. */
export async function openRawFeed(
  url: string,
  path: string,
): Promise<{ socket: net.Socket; handshake: RawReply }> {
  const socket = await connect(url);
  socket.write(upgradeRequest(path));
  const handshake = await collect(socket, { until: (b) => b.includes('\r\n\r\n'), waitMs: 5_000 });
  return { socket, handshake };
}

export interface FrameSpec {
  fin: boolean;
  /** The three reserved bits (0–7); ws negotiates no extension, so any set bit is a protocol error. */
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
  /** Announce this length instead of the payload's (a frame that lies about its size). */
  announcedLength?: bigint;
}

/** Encodes a client frame (RFC 6455 §5.2) exactly as specified, however wrong. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const length = spec.announcedLength ?? BigInt(spec.payload.length);
  const head: number[] = [(spec.fin ? 0x80 : 0) | ((spec.rsv & 7) << 4) | (spec.opcode & 0x0f)];
  const maskBit = spec.masked ? 0x80 : 0;
  if (length < 126n) head.push(maskBit | Number(length));
  else if (length < 65536n) head.push(maskBit | 126, Number(length >> 8n), Number(length & 0xffn));
  else {
    head.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) head.push(Number((length >> shift) & 0xffn));
  }
  const payload = Buffer.from(spec.payload);
  if (!spec.masked) return Buffer.concat([Buffer.from(head), payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from(head), mask, payload]);
}

/**
 * The status code of the first close frame among the server's (unmasked) frames after the handshake in
 * `bytes`: undefined while none has arrived, 1005 for a close frame without one.
 */
export function closeCodeIn(bytes: Buffer): number | undefined {
  let at = bytes.indexOf('\r\n\r\n');
  if (at < 0) return undefined;
  at += 4;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let length = bytes[at + 1]! & 0x7f;
    let headerLength = 2;
    if (length === 126) {
      if (at + 4 > bytes.length) return undefined;
      length = bytes.readUInt16BE(at + 2);
      headerLength = 4;
    } else if (length === 127) {
      if (at + 10 > bytes.length) return undefined;
      length = Number(bytes.readBigUInt64BE(at + 2));
      headerLength = 10;
    }
    if (opcode === 0x8) {
      const codeAt = at + headerLength;
      return length >= 2 && codeAt + 2 <= bytes.length ? bytes.readUInt16BE(codeAt) : 1005;
    }
    at += headerLength + length;
  }
  return undefined;
}

export function hasCloseFrame(bytes: Buffer): boolean {
  return closeCodeIn(bytes) !== undefined;
}

/** Opens a feed with the ws client and resolves with its first message (the snapshot). */
export function firstFeedMessage(
  url: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<any> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http', 'ws') + path, { headers });
    ws.once('message', (data) => {
      resolve(JSON.parse(String(data)));
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`feed refused with ${res.statusCode}`));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}
