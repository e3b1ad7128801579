/**
 * The one error type for expected failures. Domain code throws it; the API's error handler
 * maps it to `{ error: { code, message, details? } }` with its status. Anything else is a bug
 * or an outage and becomes a 500/503 that never shows internals.
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
