import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { transientDbCause } from '../../../shared/db/client.js';
import { AppError, type ErrorDetail } from '../errors.js';
import type { Logger } from '../../../shared/logger.js';

/**
 * The edge where errors become HTTP. Expected failures (AppError, validation, Fastify's own
 * 4xx) keep their status and say what was wrong; outages become 503 with Retry-After; anything
 * else is a 500 whose body never carries internals (the log has them).
 */

const FASTIFY_CODES: Record<string, { status: number; code: string; message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'Request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send JSON with Content-Type: application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'BAD_REQUEST', message: 'Content-Length does not match the body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'INVALID_JSON', message: 'Body is empty; send a JSON object' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'INVALID_JSON', message: 'Body is not valid JSON' },
};

function validationField(context: string | undefined, instancePath: string): string {
  const path = instancePath.replace(/^\//, '').split('/').filter(Boolean);
  const field = path.map((part, index) => (/^\d+$/.test(part) ? `[${part}]` : index === 0 ? part : `.${part}`)).join('');
  if (context === 'headers') return field === 'idempotency-key' ? 'Idempotency-Key' : field;
  return field || context || 'body';
}

/**
 * "Command aborted due to connection close": Redis went away with the command sent but not
 * answered (it may or may not have run), so the client must retry; its Idempotency-Key makes
 * that safe.
 */
function isRedisUnavailable(error: Error): boolean {
  return (
    /enableOfflineQueue|Connection is closed|ECONNREFUSED|Stream isn't writeable|Reached the max retries|connect ETIMEDOUT|Command aborted due to connection close/i.test(
      error.message,
    ) || isRedisRefusing(error)
  );
}

/**
 * Error replies by which a healthy Redis says it cannot serve right now: full (OOM under
 * noeviction), loading its data after a restart, busy with a script, a read-only replica after
 * a failover, a cluster or a master that is down. The request may succeed later unchanged,
 * so the client gets 503 + Retry-After; any other error reply is a bug and stays a 500.
 */
const REDIS_REFUSALS = /^(OOM|LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|MISCONF|NOREPLICAS)\b/;

function isRedisRefusing(error: Error): boolean {
  return error.name === 'ReplyError' && REDIS_REFUSALS.test(error.message);
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.retryAfterSeconds) reply.header('Retry-After', String(error.retryAfterSeconds));
      const level = error.status >= 500 ? 'warn' : 'info';
      request.log[level]({ code: error.code }, error.message);
      return reply.status(error.status).send({
        error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) },
      });
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const details: ErrorDetail[] = error.validation.map((issue) => ({
        field: validationField(error.validationContext, issue.instancePath),
        problem: issue.message ?? 'is invalid',
      }));
      const message = details.map((detail) => `${detail.field}: ${detail.problem}`).join('; ');
      return reply.status(400).send({ error: { code: 'VALIDATION_ERROR', message, details } });
    }
    const known = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (known) {
      return reply.status(known.status).send({ error: { code: known.code, message: known.message ?? error.message } });
    }
    if (error.statusCode === 429) {
      return reply.status(429).send({ error: { code: 'RATE_LIMITED', message: 'Too many requests; slow down' } });
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      // Fastify's own client errors (bad Content-Type, bad URL...) carry safe messages.
      return reply.status(error.statusCode).send({ error: { code: 'BAD_REQUEST', message: error.message } });
    }
    const unavailable = transientDbCause(error) ?? (isRedisUnavailable(error) ? error : undefined);
    if (unavailable) {
      // An outage fails every request: one short line each, with the driver's reason rather
      // than drizzle's wrapper (its message repeats the SQL and its parameters) and a stack.
      request.log.warn({ err: unavailable.message }, 'dependency unavailable');
      reply.header('Retry-After', '2');
      return reply.status(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: 'Temporarily unavailable; retry shortly' } });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'Internal server error' } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]}` } }),
  );
}

/** Node's parser error codes (llhttp's HPE_*) that deserve a more precise answer than "not HTTP". */
const PARSER_REJECTIONS: Record<string, { status: number; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'HEADERS_TOO_LARGE', message: 'Request headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'REQUEST_TIMEOUT', message: 'The request took too long to arrive' },
  // Request smuggling shapes: llhttp reports Content-Length with Transfer-Encoding under one
  // code or the other depending on which header came first.
  HPE_UNEXPECTED_CONTENT_LENGTH: {
    status: 400,
    code: 'BAD_REQUEST',
    message: 'Send one Content-Length or Transfer-Encoding: chunked, not both and not twice',
  },
  HPE_INVALID_TRANSFER_ENCODING: {
    status: 400,
    code: 'BAD_REQUEST',
    message: 'Transfer-Encoding must end in chunked and must not come with Content-Length',
  },
  HPE_INVALID_CONTENT_LENGTH: { status: 400, code: 'BAD_REQUEST', message: 'Content-Length is not a valid number' },
  HPE_INVALID_CHUNK_SIZE: { status: 400, code: 'BAD_REQUEST', message: 'The chunked body is malformed' },
};
const NOT_HTTP = { status: 400, code: 'BAD_REQUEST', message: 'The request is not valid HTTP' };

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses (oversized headers,
 * request smuggling shapes such as Content-Length with Transfer-Encoding, broken chunked
 * bodies) never reach routing or the error handler above, and would otherwise be answered in
 * Fastify's own shape. The connection cannot be trusted afterwards, so it is closed.
 */
export function answerParserRejection(logger: Logger): (error: Error & { code?: string }, socket: Socket) => void {
  return (error, socket) => {
    // A reset connection has nobody left to answer (Node's own 'clientError' advice).
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const rejection = (error.code && PARSER_REJECTIONS[error.code]) || NOT_HTTP;
    // Probes and scanners send these all day: not worth a line at the usual levels.
    logger.debug({ code: error.code, status: rejection.status }, 'request rejected by the HTTP parser');
    if (socket.writable) {
      const body = JSON.stringify({ error: { code: rejection.code, message: rejection.message } });
      socket.write(
        `HTTP/1.1 ${rejection.status} ${STATUS_CODES[rejection.status]}\r\n` +
          'Content-Type: application/json; charset=utf-8\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          'Connection: close\r\n\r\n' +
          body,
      );
    }
    socket.destroy();
  };
}
