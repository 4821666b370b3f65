/**
 * @module connection-errors
 * The HTTP server's error paths below the app: requests too malformed to reach Hono and failures of the
 * listening socket itself. Both are answered or logged here; neither may become an unhandled 'error'.
 */
import { type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../domain/failure.js';
import type { Logger } from '../logger.js';
import { errorBody, statusOf } from './errors.js';

/** Which contract error a parser or timeout failure of Node's HTTP server is. */
export function clientErrorCode(nodeCode: string | undefined): ErrorCode {
  if (nodeCode === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  if (nodeCode === 'ERR_HTTP_REQUEST_TIMEOUT') return 'REQUEST_TIMEOUT';
  return 'VALIDATION_FAILED';
}

interface HttpSocket extends Duplex {
  /** Node's response in progress on this connection, if any (a reply must not be cut into). */
  _httpMessage?: { headersSent?: boolean } | null;
}

export function handleConnectionErrors(server: Server, logger: Logger): void {
  // After listen, an accept failure (EMFILE when descriptors run out) is an 'error' on the server: the
  // connection is lost, the server keeps listening.
  server.on('error', (err) => logger.error({ err }, 'HTTP server error'));
  // A listener replaces Node's bare "400 Bad Request" so the body keeps the contract's error shape.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: HttpSocket) => {
    const inFlight = socket._httpMessage?.headersSent === true;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight) {
      socket.destroy();
      return;
    }
    const code = clientErrorCode(err.code);
    const status = statusOf(code);
    const body = JSON.stringify(errorBody(code, malformedMessage(code), {}));
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}

function malformedMessage(code: ErrorCode): string {
  if (code === 'HEADERS_TOO_LARGE') return 'the request headers are too large';
  if (code === 'REQUEST_TIMEOUT') return 'the request did not arrive in time';
  return 'malformed HTTP request';
}
