/**
 * `npm run bench -- pg-roundtrip [--ops N] [--rounds N] [--json]`: what one round trip to PostgreSQL
 * costs the machine, on the service's own seam (`PostgresStore`, as the domain uses it), one at a time:
 *   - `select`: an autocommit read of a constant (the protocol and nothing else);
 *   - `update`: an autocommit single-row update (a commit, so a WAL flush);
 *   - `tx 2 + commit`: BEGIN with two updates sent together, then COMMIT (two round trips).
 * Each over loopback TCP and over the server's Unix-domain socket, against a throwaway PostgreSQL 15
 * started as the tests start it (fsync on). Variants alternate round by round (this VM's speed drifts);
 * the table shows each variant's median round: µs of wall time, of this process's CPU (the client: pg's
 * protocol work, the event loop, the socket's system calls) and of the server's processes' CPU (the
 * backend, WAL writer, …, from /proc) per operation. A booking's cost on PostgreSQL is mostly its round
 * trips times these (README, "PostgreSQL").
 */
import { PostgresStore } from '../src/persistence/store.js';
import { throughSocket } from '../test/helpers/postgres.js';
import { BenchPostgres, childrenOf, cpuByPid } from './http/postgres.js';
import { type Processes, runBench } from './http/processes.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) || fallback : fallback;
};
const OPS = arg('--ops', 5000);
const ROUNDS = arg('--rounds', 5);
const ROWS = 1000;

type Via = 'tcp' | 'socket';
interface Sample {
  wallUs: number;
  clientUs: number;
  serverUs: number;
}

const OPERATIONS: Record<string, (store: PostgresStore, i: number) => Promise<unknown>> = {
  select: (store, i) => store.get('SELECT ?::int AS x', [i]),
  update: (store, i) => store.run('UPDATE rt SET v = v + 1 WHERE id = ?', [i % ROWS]),
  'tx 2 + commit': (store, i) =>
    store.transaction((tx) =>
      Promise.all([
        tx.run('UPDATE rt SET v = v + 1 WHERE id = ?', [i % ROWS]),
        tx.run('UPDATE rt SET v = v + 1 WHERE id = ?', [(i + 1) % ROWS]),
      ]),
    ),
};

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
/** CPU seconds the server's processes spent between two readings, counting those present at both. */
function serverCpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let seconds = 0;
  for (const [pid, end] of after) {
    const start = before.get(pid);
    if (start !== undefined) seconds += end - start;
  }
  return seconds;
}

async function main(procs: Processes) {
  // Registered with the bench's processes: stopped at the end, on Ctrl-C and on a crash.
  const { server } = await BenchPostgres.start(procs);
  const urls: Record<Via, string> = { tcp: server.url, socket: throughSocket(server.url, server.socketDir) };
  const stores = {
    tcp: new PostgresStore(urls.tcp, { maxConnections: 1, statementTimeoutMs: 10_000 }),
    socket: new PostgresStore(urls.socket, { maxConnections: 1, statementTimeoutMs: 10_000 }),
  } satisfies Record<Via, PostgresStore>;
  // No autovacuum on it: a worker that came and went during a timed loop would skew the server's CPU.
  await stores.tcp.run(
    'CREATE TABLE rt (id int PRIMARY KEY, v bigint NOT NULL) WITH (autovacuum_enabled = off)',
  );
  await stores.tcp.run('INSERT INTO rt SELECT g, 0 FROM generate_series(0, ?) g', [ROWS - 1]);
  const samples = new Map<string, Sample[]>();
  for (let round = 0; round < ROUNDS; round++)
    for (const [name, op] of Object.entries(OPERATIONS))
      for (const via of ['tcp', 'socket'] as const) {
        const store = stores[via];
        for (let i = 0; i < 200; i++) await op(store, i); // warm: connection open, statements prepared
        // The server's processes now, connections included (one per store, opened by the warm-up).
        const pids = [server.pid, ...childrenOf(server.pid)];
        const serverBefore = cpuByPid(pids);
        const clientBefore = process.cpuUsage();
        const started = process.hrtime.bigint();
        for (let i = 0; i < OPS; i++) await op(store, i);
        const wallUs = Number(process.hrtime.bigint() - started) / 1e3 / OPS;
        const client = process.cpuUsage(clientBefore);
        const key = `${name}|${via}`;
        const list = samples.get(key) ?? [];
        list.push({
          wallUs,
          clientUs: (client.user + client.system) / OPS,
          serverUs: (serverCpuBetween(serverBefore, cpuByPid(pids)) * 1e6) / OPS,
        });
        samples.set(key, list);
      }
  await Promise.all([stores.tcp.close(), stores.socket.close()]);

  const rows = [...samples].map(([key, list]) => {
    const [operation, via] = key.split('|') as [string, Via];
    const r1 = (n: number) => Math.round(n * 10) / 10;
    return {
      operation,
      via,
      wallUs: r1(median(list.map((s) => s.wallUs))),
      clientCpuUs: r1(median(list.map((s) => s.clientUs))),
      serverCpuUs: r1(median(list.map((s) => s.serverUs))),
    };
  });
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ ops: OPS, rounds: ROUNDS, rows }, null, 2));
    return;
  }
  console.log(
    `PostgreSQL round trips, one at a time (${OPS} per round, median of ${ROUNDS} rounds; server CPU from /proc, ticks of 10 ms)\n`,
  );
  console.log('| operation | via | wall µs/op | client CPU µs/op | server CPU µs/op |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of rows)
    console.log(`| ${r.operation} | ${r.via} | ${r.wallUs} | ${r.clientCpuUs} | ${r.serverCpuUs} |`);
}

await runBench(main);
