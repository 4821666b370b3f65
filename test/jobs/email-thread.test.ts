/**
 * Email is rendered and sent on a thread of its own: the main thread only posts the notification and
 * awaits the answer. A mail thread that dies mid-send fails its sends, the job queue retries them on a
 * new thread, and the SMTP server ends up with each message once. Real SMTP server on loopback.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { threadId as mainThreadId } from 'node:worker_threads';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailSender, type OutgoingNotification } from '../../src/jobs/email.js';
import { startNotifier } from '../../src/jobs/notifier.js';
import { enqueueNotification } from '../../src/jobs/outbox.js';
import { LogSmsSender } from '../../src/jobs/sms.js';
import { createLogger } from '../../src/logger.js';
import { openAppDb } from '../../src/persistence/app-db.js';
import { SqliteStore } from '../../src/persistence/store.js';
import { BOOKING_DATA } from '../helpers/notifications.js';
import { REPO } from '../helpers/process.js';

const logger = createLogger('silent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-mail-thread-'));
/** Messages the server accepted (answered 250), by notification id. */
const accepted: (string | undefined)[] = [];
/** DATA received and not answered: the server holds these until a test lets them go. */
const held: { id: string | undefined; accept(): void }[] = [];
let isHolding = false;
let smtp: SMTPServer;
let smtpUrl: string;

async function waitFor(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An SMTP server in a child process that accepts and discards every message. */
async function startSmtpSinkProcess(): Promise<{ url: string; stop(): void }> {
  const code = `
    import { SMTPServer } from 'smtp-server';
    const server = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
      onData(stream, _session, callback) { stream.resume(); stream.on('end', () => callback()); } });
    server.listen(0, '127.0.0.1', () => console.log(server.server.address().port));
    process.on('disconnect', () => process.exit(0));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const [line] = (await once(readline.createInterface({ input: child.stdout! }), 'line')) as [string];
  return { url: `smtp://127.0.0.1:${Number(line)}`, stop: () => child.kill() };
}

/** CPU ticks (utime + stime) from a `stat` file of /proc. */
function cpuTicks(statFile: string): number {
  const stat = fs.readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function confirmation(n: number): OutgoingNotification {
  return {
    id: `ntf_thread${n}`,
    template: 'booking_confirmed',
    recipient: 'asha@example.com',
    // A code of its own per message, so each draws its QR rather than reusing a cached matrix.
    data: { ...BOOKING_DATA, ticketCode: `${BOOKING_DATA.ticketCode}.${n}` },
  };
}

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const id = /^X-Notification-Id: (\S+)/im.exec(Buffer.concat(chunks).toString('utf8'))?.[1];
        const accept = () => {
          accepted.push(id);
          callback();
        };
        if (isHolding) held.push({ id, accept });
        else accept();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
  smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the mail thread', () => {
  it('renders and sends on a thread other than the main one', async () => {
    const email = createEmailSender({ smtpUrl, from: 'BoxOffice <t@boxoffice.test>', logger });
    try {
      const sent = await Promise.all([1, 2, 3].map((n) => email.send(confirmation(n))));
      expect(new Set(sent.map((s) => s.threadId)).size).toBe(1);
      expect(sent[0]?.threadId).not.toBe(mainThreadId);
      expect(accepted.filter((id) => id?.startsWith('ntf_thread'))).toHaveLength(3);
    } finally {
      email.close();
    }
  });

  it('leaves almost none of the rendering’s and sending’s CPU on the main thread', async () => {
    // The server runs in a process of its own: receiving mail must not count as this process's CPU.
    const sink = await startSmtpSinkProcess();
    const email = createEmailSender({ smtpUrl: sink.url, from: 't@boxoffice.test', logger });
    try {
      await email.send(confirmation(0)); // the thread and its SMTP connections are started and warm
      // The main thread's task id is the process id; the process's own figure counts every thread.
      const mainStat = `/proc/self/task/${process.pid}/stat`;
      const main0 = cpuTicks(mainStat);
      const all0 = cpuTicks('/proc/self/stat');
      for (let round = 0; round < 10; round++)
        await Promise.all(
          Array.from({ length: 30 }, (_, i) => email.send(confirmation(1_000 + round * 30 + i))),
        );
      const main = cpuTicks(mainStat) - main0;
      const all = cpuTicks('/proc/self/stat') - all0;
      // Sent from the main thread (QR drawing aside, which had a thread of its own), these 300
      // confirmations left over 40% of their CPU there: MIME build and the SMTP conversation.
      expect(all).toBeGreaterThanOrEqual(20);
      expect(main / all).toBeLessThan(0.2);
    } finally {
      email.close();
      sink.stop();
    }
  });

  it('refuses a send beyond its bound of messages in flight', async () => {
    isHolding = true;
    const email = createEmailSender({ smtpUrl, from: 't@boxoffice.test', logger, maxInFlight: 2 });
    try {
      const first = [email.send(confirmation(2_001)), email.send(confirmation(2_002))];
      await expect(email.send(confirmation(2_003))).rejects.toThrow(/2 messages in flight/);
      await waitFor(() => held.length === 2);
      isHolding = false;
      for (const message of held.splice(0)) message.accept();
      await Promise.all(first);
      await email.send(confirmation(2_004));
      // Two pooled connections: the first two may arrive in either order.
      expect(accepted.filter((id) => id?.startsWith('ntf_thread200')).sort()).toEqual([
        'ntf_thread2001',
        'ntf_thread2002',
        'ntf_thread2004',
      ]);
    } finally {
      isHolding = false;
      email.close();
    }
  });

  it('a thread that dies mid-send fails the attempt; the retry sends the message once', async () => {
    const db = openAppDb(path.join(dir, 'app.db'));
    const at = new Date().toISOString();
    db.prepare(
      `INSERT INTO users (id, name, email, phone, password_hash, role, created_at, updated_at)
       VALUES ('usr_1', 'Asha', 'asha@example.com', '+919876543210', 'x', 'user', ?, ?)`,
    ).run(at, at);
    const email = createEmailSender({ smtpUrl, from: 't@boxoffice.test', logger });
    const notifier = startNotifier({
      store: new SqliteStore(db),
      config: {
        SMTP_URL: smtpUrl,
        SMS_WEBHOOK_URL: undefined,
        MAIL_FROM: 't@boxoffice.test',
        REDIS_URL: undefined,
      },
      logger,
      email,
      sms: new LogSmsSender(logger),
      retry: { attempts: 3, backoffMs: 100 },
      relayPollMs: 50,
    });
    try {
      isHolding = true;
      const id = await new SqliteStore(db).transaction((tx) =>
        enqueueNotification(tx, {
          userId: 'usr_1',
          bookingId: 'bkg_crash',
          channel: 'email',
          template: 'booking_confirmed',
          recipient: 'asha@example.com',
          data: BOOKING_DATA,
          sendAt: new Date().toISOString(),
        }),
      );
      await notifier.relayNow();
      // The whole message reached the server, which has not answered: the send is in flight.
      await waitFor(() => held.some((m) => m.id === id));
      isHolding = false;
      await email.killThread();
      const status = db.prepare('SELECT status FROM notifications WHERE id = ?');
      await waitFor(() => (status.get(id) as { status: string }).status === 'sent');
      const tries = db
        .prepare('SELECT ok, error FROM notification_attempts WHERE notification_id = ? ORDER BY id')
        .all(id) as { ok: number; error: string | null }[];
      expect(tries).toEqual([
        { ok: 0, error: expect.stringMatching(/mail thread exited/) },
        { ok: 1, error: null },
      ]);
      // The held copy was never accepted (its connection died first), and nothing sends it again.
      await new Promise((r) => setTimeout(r, 300));
      expect(accepted.filter((m) => m === id)).toHaveLength(1);
    } finally {
      isHolding = false;
      held.splice(0);
      await notifier.stop();
      db.close();
    }
  });
});
