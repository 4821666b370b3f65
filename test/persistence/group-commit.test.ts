import { describe, expect, it } from 'vitest';
import { afterDurable } from '../../src/payments/index.js';
import type { PaymentProvider } from '../../src/payments/payment-provider.js';
import { GroupCommit } from '../../src/persistence/group-commit.js';
import { startTestServer } from '../helpers/server.js';

/** A flusher that finishes only when the test says so, counting what it was asked to do. */
function slowFlusher() {
  const pending: (() => void)[] = [];
  return {
    started: () => pending.length,
    flush: () => new Promise<void>((resolve) => pending.push(resolve)),
    /** Completes the oldest flush. */
    finishOne: async () => {
      pending.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

function settled(promise: Promise<unknown>): { isDone: () => boolean } {
  let isDone = false;
  promise.then(
    () => {
      isDone = true;
    },
    () => {
      isDone = true;
    },
  );
  return { isDone: () => isDone };
}

describe('group commit', () => {
  it('shares one flush among everyone who asks before it starts, and a later one among latecomers', async () => {
    const flusher = slowFlusher();
    let changes = 1;
    const group = new GroupCommit({ flush: flusher.flush, changes: () => changes, onFlushFailed: () => {} });
    changes = 2;
    const first = settled(group.durable());
    expect(flusher.started()).toBe(1);
    // These committed after the first flush started: it may not cover them.
    const second = settled(group.durable());
    const third = settled(group.durable());
    expect(flusher.started()).toBe(1);
    await flusher.finishOne();
    expect(first.isDone()).toBe(true);
    expect(second.isDone()).toBe(false);
    expect(flusher.started()).toBe(1); // the next flush, shared by the two latecomers
    await flusher.finishOne();
    expect([second.isDone(), third.isDone()]).toEqual([true, true]);
    expect(group.flushCount).toBe(2);
  });

  it('does not flush when nothing changed since the last flush began', async () => {
    const flusher = slowFlusher();
    let changes = 5;
    const group = new GroupCommit({ flush: flusher.flush, changes: () => changes, onFlushFailed: () => {} });
    await group.whenDurable();
    expect(flusher.started()).toBe(0);
    changes = 6;
    const waiting = settled(group.whenDurable());
    expect(flusher.started()).toBe(1);
    await flusher.finishOne();
    expect(waiting.isDone()).toBe(true);
    expect(group.isDurable).toBe(true);
  });

  it('reports a failed flush once and refuses to call anything durable afterwards', async () => {
    const failures: unknown[] = [];
    const group = new GroupCommit({
      flush: () => Promise.reject(new Error('EIO')),
      changes: () => 1,
      onFlushFailed: (err) => failures.push(err),
    });
    await expect(group.durable()).rejects.toThrow('EIO');
    await expect(group.durable()).rejects.toThrow('EIO');
    expect(failures).toHaveLength(1);
    expect(group.isDurable).toBe(false);
  });

  it('lets no payment call reach the provider before the commits before it are flushed', async () => {
    const flusher = slowFlusher();
    const calls: string[] = [];
    const provider = {
      name: 'recording',
      createIntent: async () => {
        calls.push('createIntent');
        return { ok: true };
      },
      confirm: async () => {
        calls.push('confirm');
        return { ok: true };
      },
      refund: async () => {
        calls.push('refund');
        return { ok: true };
      },
      retrieve: async () => ({ ok: true }),
      parseWebhook: () => ({ ok: false, message: 'unused' }),
    } as unknown as PaymentProvider;
    const group = new GroupCommit({ flush: flusher.flush, changes: () => 1, onFlushFailed: () => {} });
    const payments = afterDurable(provider, () => group.durable());
    const confirming = settled(payments.confirm({} as never));
    const refunding = settled(payments.refund({} as never));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([]);
    await flusher.finishOne();
    await flusher.finishOne();
    expect(calls.sort()).toEqual(['confirm', 'refund']);
    expect([confirming.isDone(), refunding.isDone()]).toEqual([true, true]);
  });

  it('holds back an HTTP answer that reports a change until its flush is done', async () => {
    const flusher = slowFlusher();
    const server = await startTestServer({}, { appDbFlush: flusher.flush });
    try {
      const registering = server.api('POST', '/api/register', {
        body: { name: 'Asha', email: 'asha@example.com', password: 'a long enough passphrase' },
      });
      const answer = settled(registering);
      while (flusher.started() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // The account is committed, the flush is running: the client has not heard back.
      expect(answer.isDone()).toBe(false);
      while (flusher.started() > 0) await flusher.finishOne();
      expect((await registering).status).toBe(201);
    } finally {
      while (flusher.started() > 0) await flusher.finishOne();
      await server.destroy();
    }
  });
});
