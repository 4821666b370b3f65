/**
 * @module logger
 * The process's pino logger. Card numbers never reach it: payment code keeps only brand and last four,
 * and the redaction list below is a second line of defence for anything that slips into a log object.
 */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino({
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
  });
}
