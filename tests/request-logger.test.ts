import { describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { requestLoggerFactory } from '../services/api/request-logger.js';
import { createLogger } from '../shared/logger.js';

/**
 * The API's per-request logger is made lazily (services/api/request-logger.ts). What it must
 * keep from a real pino child: every line it writes carries the request id, levels the process
 * does not log write nothing, redaction still applies, and a route with its own level gets it.
 */

function capture(level: 'info' | 'warn') {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ LOG_LEVEL: level }, 'test', { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger: logger as unknown as FastifyBaseLogger, lines };
}

describe('request logger', () => {
  it('writes only at enabled levels, each line with the request id', () => {
    const { logger, lines } = capture('warn');
    const log = requestLoggerFactory(logger, { reqId: 'r-1' }, {});
    log.info({ a: 1 }, 'not written');
    log.debug('not written either');
    expect(lines).toEqual([]);
    log.warn({ code: 'X' }, 'written');
    log.error('also written');
    expect(lines.map((line) => [line.reqId, line.msg, line.level])).toEqual([
      ['r-1', 'written', 40],
      ['r-1', 'also written', 50],
    ]);
    expect(lines[0]).toMatchObject({ code: 'X' });
  });

  it('reports the process level and redacts customer emails', () => {
    const { logger, lines } = capture('info');
    const log = requestLoggerFactory(logger, { reqId: 'r-2' }, {});
    expect(log.level).toBe('info');
    log.info({ booking: { customer_email: 'someone@example.com' } }, 'accepted');
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines[0])).not.toContain('someone@example.com');
    expect(lines[0]).toMatchObject({ reqId: 'r-2', booking: { customer_email: '[redacted]' } });
  });

  it('gives children the request id, and a route with its own level that level', () => {
    const { logger, lines } = capture('warn');
    requestLoggerFactory(logger, { reqId: 'r-3' }, {}).child({ part: 'x' }).warn('from a child');
    const routeLogger = requestLoggerFactory(logger, { reqId: 'r-4' }, { level: 'debug' });
    expect(routeLogger.level).toBe('debug');
    routeLogger.debug('route-level debug');
    expect(lines.map((line) => [line.reqId, line.part ?? null, line.msg])).toEqual([
      ['r-3', 'x', 'from a child'],
      ['r-4', null, 'route-level debug'],
    ]);
  });
});
