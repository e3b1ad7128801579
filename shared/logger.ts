import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

const CENSOR = '[redacted]';
/** Loose on purpose: a false positive costs a log detail, a miss leaks personal data. */
const EMAIL = /[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+/g;
const MAX_DEPTH = 6;

export function scrubEmails(text: string): string {
  return text.includes('@') ? text.replace(EMAIL, CENSOR) : text;
}

function scrubDeep(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubEmails(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => scrubDeep(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = scrubDeep(item, depth + 1);
  return copy;
}

/**
 * Errors carry customer data in free text: drizzle's DrizzleQueryError puts a query's
 * parameters in its message ("params: a@example.com,b@example.com" for a whole claim batch)
 * and in `params`, and causes and stacks repeat it. Paths cannot redact free text, so every
 * string of the serialized error (message, stack, params, causes' messages) is scrubbed.
 */
function serializeError(error: unknown): unknown {
  return scrubDeep(stdSerializers.err(error as Error), 0);
}

/**
 * One logger per process. Customer emails are personal data: they are redacted wherever they
 * appear in a logged object (up to a job's `job.data.customer_email`), and scrubbed from
 * errors and messages, so raising LOG_LEVEL or failing a query never leaks them by accident.
 * `destination` (default stdout) lets tests read what is logged.
 */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, name: string, destination?: DestinationStream): Logger {
  const options = {
    name,
    level: config.LOG_LEVEL,
    redact: {
      paths: ['customer_email', '*.customer_email', '*.*.customer_email', 'req.headers.authorization', 'headers.authorization'],
      censor: CENSOR,
    },
    // `err` is pino's error key (also used for `logger.error(error)`); `msg` defaults to an
    // error's message when none is given.
    serializers: { err: serializeError, msg: (message: unknown) => (typeof message === 'string' ? scrubEmails(message) : message) },
  };
  return destination ? pino(options, destination) : pino(options);
}
