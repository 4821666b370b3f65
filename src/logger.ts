/**
 * @module logger
 * The process's pino logger. Card numbers never reach it: payment code keeps only brand and last four,
 * and the redaction list below is a second line of defence for anything that slips into a log object.
 */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: [
          'password',
          '*.password',
          'card',
          '*.card',
          'card.number',
          '*.cvc',
          'authorization',
          '*.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination(),
  );
}

/**
 * Standard output, written asynchronously. `minLength: 1` rather than pino's default 0: with 0, sonic-boom's
 * `flush(cb)` calls back at once even while a write is still in flight, so a `process.exit` in that
 * callback (a clean stop, the crash policy) could drop the last lines, such as "BoxOffice stopped".
 * With 1 every line is still written as soon as it is logged, and `flush` waits for the write to finish.
 */
function destination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: false, minLength: 1 });
}
