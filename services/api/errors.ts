/**
 * The HTTP layer's one error type for expected failures. Routes and API plugins throw it;
 * the error handler (plugins/errors.ts) maps it to `{ error: { code, message, details? } }`
 * with its status. Domain code in shared/ returns outcomes instead (a settle's `rejected`, a
 * decision's FAILED reason) and knows nothing of HTTP; the routes translate. Anything else is a
 * bug or an outage and becomes a 500/503 that never shows internals.
 */
export type ErrorDetail = { field: string; problem: string };

export class AppError extends Error {
  override name = 'AppError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export const badRequest = (field: string, problem: string) =>
  new AppError(400, 'VALIDATION_ERROR', `${field}: ${problem}`, [{ field, problem }]);

export const notFound = (what: string) => new AppError(404, 'NOT_FOUND', `${what} not found`);

export const conflict = (code: string, message: string) => new AppError(409, code, message);

export const unavailable = (message: string, retryAfterSeconds = 2) =>
  new AppError(503, 'SERVICE_UNAVAILABLE', message, undefined, retryAfterSeconds);
