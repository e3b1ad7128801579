import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * One logger per process. Customer emails are personal data: they are redacted wherever they
 * appear in a logged object (up to a job's `job.data.customer_email`), so raising LOG_LEVEL
 * never leaks them by accident. `destination` (default stdout) lets tests read what is logged.
 */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, name: string, destination?: DestinationStream): Logger {
  const options = {
    name,
    level: config.LOG_LEVEL,
    redact: {
      paths: ['customer_email', '*.customer_email', '*.*.customer_email', 'req.headers.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
