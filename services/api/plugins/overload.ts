import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../../shared/config.js';
import { AppError } from '../errors.js';

/**
 * Load shedding when the API's own event loop is saturated: past MAX_EVENT_LOOP_DELAY_MS every
 * request would be slow, so new ones get a fast 503 with Retry-After (in our error shape,
 * through the error handler) until the loop recovers. Under-pressure's /status route is not
 * exposed: /health and /ready already say this.
 */

export const OVERLOAD_RETRY_AFTER_SECONDS = 5;

/** Liveness must not fail under load (an orchestrator would kill a busy but healthy process), and scrapes must show the overload. */
export const OVERLOAD_EXEMPT_ROUTES: ReadonlySet<string> = new Set(['/health', '/metrics']);

export async function registerOverloadGuard(app: FastifyInstance, config: Pick<Config, 'MAX_EVENT_LOOP_DELAY_MS'>): Promise<void> {
  if (config.MAX_EVENT_LOOP_DELAY_MS === 0) return;
  await app.register(underPressure, {
    maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
    retryAfter: OVERLOAD_RETRY_AFTER_SECONDS,
    exposeStatusRoute: false,
    pressureHandler: async (request) => {
      if (OVERLOAD_EXEMPT_ROUTES.has(request.routeOptions.url ?? '')) return;
      throw new AppError(503, 'OVERLOADED', 'The server is overloaded; retry shortly', undefined, OVERLOAD_RETRY_AFTER_SECONDS);
    },
  });
}
