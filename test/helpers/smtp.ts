/**
 * @module test/helpers/smtp
 * A real SMTP server (the smtp-server package) on a loopback port that keeps every message it receives,
 * parsed into its text, HTML and attachments, so a test can read an email as a mail client would show it.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedAttachment {
  contentType: string;
  /** Without the angle brackets. */
  contentId: string | undefined;
  filename: string | undefined;
  content: Buffer;
}

export interface ReceivedMail {
  /** RCPT TO addresses of the SMTP envelope. */
  to: string[];
  from: string | undefined;
  subject: string;
  /** Header names in lower case, folded lines joined. */
  headers: Map<string, string>;
  text: string | undefined;
  html: string | undefined;
  attachments: ReceivedAttachment[];
  raw: string;
  /** When the server finished receiving it (epoch ms). */
  receivedAtMs: number;
}

export interface TestSmtp {
  url: string;
  messages: ReceivedMail[];
  close(): Promise<void>;
}

/** No test message is anywhere near this; a bigger one is refused rather than buffered. */
const MAX_MESSAGE_BYTES = 5 * 1024 * 1024;

export async function startTestSmtp(): Promise<TestSmtp> {
  const messages: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    size: MAX_MESSAGE_BYTES,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        messages.push(
          parseMail(
            raw,
            session.envelope.rcptTo.map((r) => r.address),
          ),
        );
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface MimePart {
  headers: Map<string, string>;
  body: Buffer;
  parts: MimePart[];
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  const unfolded = block.replace(/\r?\n[ \t]+/g, ' ');
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

function param(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  const match = new RegExp(`${name}\\*?="?([^";]+)"?`, 'i').exec(header);
  return match?.[1];
}

function decodeQuotedPrintable(text: string): Buffer {
  const soft = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    const hex = soft.slice(i + 1, i + 3);
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(...Buffer.from(soft[i] ?? '', 'utf8'));
  }
  return Buffer.from(bytes);
}

/** `=?UTF-8?Q?…?=` and `=?UTF-8?B?…?=` words in a header. */
function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([QB])\?([^?]*)\?=/gi, (_, _charset: string, encoding: string, text: string) =>
      encoding.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')).toString('utf8'),
    );
}

function parsePart(source: string): MimePart {
  const split = /\r?\n\r?\n/.exec(source);
  const headerBlock = split ? source.slice(0, split.index) : source;
  const bodyText = split ? source.slice(split.index + split[0].length) : '';
  const headers = parseHeaders(headerBlock);
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = param(type, 'boundary');
  if (type.toLowerCase().startsWith('multipart/') && boundary) {
    const sections = bodyText.split(
      new RegExp(`\\r?\\n?--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    // sections[0] is the preamble; the section after the closing delimiter starts with '--'.
    const parts = sections
      .slice(1)
      .filter((s) => !s.startsWith('--'))
      .map((s) => parsePart(s.replace(/^\r?\n/, '')));
    return { headers, body: Buffer.alloc(0), parts };
  }
  const encoding = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  const body =
    encoding === 'base64'
      ? Buffer.from(bodyText.replace(/\s+/g, ''), 'base64')
      : encoding === 'quoted-printable'
        ? decodeQuotedPrintable(bodyText)
        : Buffer.from(bodyText, 'utf8');
  return { headers, body, parts: [] };
}

function leaves(part: MimePart): MimePart[] {
  return part.parts.length === 0 ? [part] : part.parts.flatMap(leaves);
}

/** Parses a message as nodemailer writes it (multipart/alternative and related, QP and base64). */
export function parseMail(raw: string, to: string[] = []): ReceivedMail {
  const root = parsePart(raw);
  const mail: ReceivedMail = {
    to,
    from: root.headers.get('from'),
    subject: decodeWords(root.headers.get('subject') ?? ''),
    headers: root.headers,
    text: undefined,
    html: undefined,
    attachments: [],
    raw,
    receivedAtMs: Date.now(),
  };
  for (const leaf of leaves(root)) {
    const type = (leaf.headers.get('content-type') ?? 'text/plain').split(';')[0]?.trim().toLowerCase();
    const disposition = leaf.headers.get('content-disposition');
    const isAttachment = disposition !== undefined || leaf.headers.has('content-id');
    // Text travels with CRLF line ends (RFC 5322); a mail client shows plain lines.
    if (!isAttachment && type === 'text/plain' && mail.text === undefined)
      mail.text = leaf.body.toString('utf8').replace(/\r\n/g, '\n');
    else if (!isAttachment && type === 'text/html' && mail.html === undefined)
      mail.html = leaf.body.toString('utf8').replace(/\r\n/g, '\n');
    else
      mail.attachments.push({
        contentType: type ?? 'application/octet-stream',
        contentId: leaf.headers.get('content-id')?.replace(/^<|>$/g, ''),
        filename: param(disposition, 'filename') ?? param(leaf.headers.get('content-type'), 'name'),
        content: leaf.body,
      });
  }
  return mail;
}
