import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * One logger per process. Customer emails are personal data: they are redacted wherever they
 * appear in a logged object, so raising LOG_LEVEL never leaks them by accident.
 */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, name: string): Logger {
  return pino({
    name,
    level: config.LOG_LEVEL,
    redact: {
      paths: ['customer_email', '*.customer_email', 'req.headers.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
  });
}
