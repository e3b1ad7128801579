import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';
import type { Config } from '../../../shared/config.js';

/**
 * What browsers are told about this API: security headers on every answer (helmet) and, only
 * when CORS_ORIGINS lists them, which other origins' pages may call it (@fastify/cors).
 *
 * One policy fits every page served here: Swagger UI at /docs, the queue board at
 * /admin/queues and a web page at / all load their scripts from this origin, with inline
 * styles and (the board) a web font stylesheet over https, which helmet's defaults allow.
 * No page of ours is meant to sit in a frame, so `frame-ancestors 'none'` (and
 * `X-Frame-Options: DENY` for old browsers) everywhere, which keeps the board, whose buttons
 * retry jobs, out of clickjacking.
 */
const SECURITY_HEADERS: Parameters<typeof helmet>[0] = {
  contentSecurityPolicy: {
    directives: {
      'frame-ancestors': ["'none'"],
      // Plain HTTP is how the API is reached locally (and behind a TLS-terminating balancer):
      // upgrading a page's own requests to https there would break /docs and the board.
      'upgrade-insecure-requests': null,
    },
  },
  frameguard: { action: 'deny' },
};

/**
 * Sets the security headers on a raw response. helmet itself, compiled once: @fastify/helmet
 * rebuilds helmet's middleware on every request (about 37 µs of CPU against 2 µs here), a
 * quarter of what a booking costs the API.
 */
export const setSecurityHeaders = helmet(SECURITY_HEADERS);

/** Headers a cross-origin page may read: where to poll, when, and the id to quote. */
const EXPOSED_HEADERS = ['Location', 'Retry-After', 'X-Request-Id', 'ETag', 'Preference-Applied'];

export async function registerBrowserSecurity(app: FastifyInstance, config: Pick<Config, 'CORS_ORIGINS'>): Promise<void> {
  app.addHook('onRequest', (request, reply, done) => setSecurityHeaders(request.raw, reply.raw, () => done()));
  if (config.CORS_ORIGINS.length === 0) return;
  await app.register(cors, {
    origin: [...config.CORS_ORIGINS],
    methods: ['GET', 'HEAD', 'POST'],
    exposedHeaders: EXPOSED_HEADERS,
    // Browsers may reuse a preflight answer for ten minutes instead of asking before each booking.
    maxAge: 600,
  });
}
