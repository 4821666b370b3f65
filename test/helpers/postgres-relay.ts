/**
 * @module test/helpers/postgres-relay
 * A TCP relay in front of PostgreSQL that counts round trips as the client waits them out: each time
 * the client speaks after the server did (or first), one more. Statements sent together count once.
 */
import net from 'node:net';

export async function turnCountingRelay(
  target: URL,
): Promise<{ url: string; turns(): number; close(): void }> {
  let turns = 0;
  let lastSpoke: 'client' | 'server' = 'server';
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const server = net.connect(Number(target.port), target.hostname);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (chunk) => {
      if (lastSpoke === 'server') turns++;
      lastSpoke = 'client';
      server.write(chunk);
    });
    server.on('data', (chunk) => {
      lastSpoke = 'server';
      client.write(chunk);
    });
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.host = `127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
  return {
    url: url.toString(),
    turns: () => turns,
    close: () => {
      relay.close();
      for (const s of sockets) s.destroy();
    },
  };
}
