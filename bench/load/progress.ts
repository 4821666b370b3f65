/**
 * @module bench/load/progress
 * The progress bar on stderr while a run goes: time (or requests) done, responses, errors and the
 * current requests/s. Plain ANSI on a terminal (one line redrawn); elsewhere (CI logs) a line every few
 * seconds, so a log is not flooded.
 */
import type { Recorder } from './recorder.js';

const TTY_INTERVAL_MS = 250;
const LOG_INTERVAL_MS = 5_000;
const BAR_WIDTH = 24;

export interface ProgressTarget {
  seconds: number;
  requests?: number;
  /** Anything the scenario adds, e.g. seats sold. */
  note?: () => string;
}

export function progressLine(recorder: Recorder, target: ProgressTarget): string {
  const fraction = target.requests
    ? recorder.responses / target.requests
    : recorder.elapsedSeconds / target.seconds;
  const done = Math.max(0, Math.min(BAR_WIDTH, Math.round(fraction * BAR_WIDTH)));
  const bar = `[${'='.repeat(done)}${' '.repeat(BAR_WIDTH - done)}]`;
  const errors = recorder.transportErrors + recorder.non2xx;
  const parts = [
    bar,
    `${Math.min(100, Math.round(fraction * 100))}%`.padStart(4),
    `${recorder.elapsedSeconds.toFixed(0)}s`,
    `${recorder.responses} req`,
    `${errors} err/non-2xx`,
    `${recorder.currentRate()} req/s`,
  ];
  const note = target.note?.();
  if (note) parts.push(note);
  return parts.join('  ');
}

/** Starts drawing; the function returned stops and clears the line. */
export function startProgress(
  recorder: Recorder,
  target: ProgressTarget,
  stream: NodeJS.WriteStream = process.stderr,
): () => void {
  const isTty = stream.isTTY === true;
  const timer = setInterval(
    () => {
      const line = progressLine(recorder, target);
      stream.write(isTty ? `\r\x1b[2K${line}` : `${line}\n`);
    },
    isTty ? TTY_INTERVAL_MS : LOG_INTERVAL_MS,
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    if (isTty) stream.write('\r\x1b[2K');
  };
}
