import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { addPageHeaders, setSecurityHeaders } from './plugins/browser-security.js';
import type { HttpMetrics } from './plugins/metrics.js';
import type { WarmUp } from './warmup.js';

/**
 * What the API does on every request, whatever the route: one hook per stage, so the order is
 * read in one place and each request pays one hook call per stage, not one per concern.
 *
 *   onRequest   the JSON answers' security headers (before anything can refuse the request)
 *   onSend      X-Request-Id; the pages' security headers on an answer not known to be JSON
 *   onResponse  the access line (not for the process's own warm-up requests); the request's
 *               rate, latency and status in /metrics
 *
 * Callback hooks, not async ones: they run on every request, and a promise each is measurable.
 * Registered on the root instance before any plugin or route, so every route gets them.
 */
export function registerRequestHooks(app: FastifyInstance, http: HttpMetrics, warmUp?: WarmUp): void {
  app.addHook('onRequest', (_request, reply, done) => {
    setSecurityHeaders(reply);
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('X-Request-Id', request.id);
    addPageHeaders(reply);
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    // Fastify builds a fresh routeOptions object on each read: once per request.
    const route = request.routeOptions.url ?? 'unmatched';
    if (!warmUp?.isWarmUp(request)) logCompleted(request, reply, route);
    http.observe(request.method, route, reply.statusCode, reply.elapsedTime / 1_000);
    done();
  });
}

/** Probes and scrapes would drown the log at info level. */
const QUIET_ROUTES: ReadonlySet<string> = new Set(['/health', '/ready', '/metrics']);

type LevelCheck = { isLevelEnabled?: (level: string) => boolean };

/** One access line per request (Fastify's own two are off: under a burst, logging is a real share of the API's CPU). */
function logCompleted(request: FastifyRequest, reply: FastifyReply, route: string): void {
  const level = QUIET_ROUTES.has(route) ? 'debug' : 'info';
  // Both the lazy request logger and a pino child answer this; the line is not built when it would not be written.
  if ((request.log as LevelCheck).isLevelEnabled?.(level) === false) return;
  request.log[level]({ method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request completed');
}
