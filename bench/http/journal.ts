/**
 * @module bench/http/journal
 * The service's own account of its group commits, read from `GET /metrics` at the end of a scenario:
 * how many commands each journal commit carried and how long a commit took until its replies left
 * (fsyncs included). The figures cover the service's whole life in the scenario, warm-up included.
 */
import type { JsonClient } from './client.js';
import { round } from './latency.js';

export interface JournalFigures {
  commits: number;
  commandsPerCommit: number;
  meanCommitMs: number;
}

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

export async function journalFigures(client: JsonClient): Promise<JournalFigures | undefined> {
  const reply = await client.request('GET', '/metrics').catch(() => undefined);
  if (reply?.status !== 200 || typeof reply.body !== 'string') return undefined;
  const text = reply.body;
  const commits = sample(text, 'boxoffice_journal_batch_commands_count');
  if (commits === 0) return { commits: 0, commandsPerCommit: 0, meanCommitMs: 0 };
  return {
    commits,
    commandsPerCommit: round(sample(text, 'boxoffice_journal_batch_commands_sum') / commits, 1),
    meanCommitMs: round(
      (sample(text, 'boxoffice_journal_commit_seconds_sum') * 1000) /
        sample(text, 'boxoffice_journal_commit_seconds_count'),
      2,
    ),
  };
}
