import cors from '@fastify/cors';
import type { FastifyInstance, FastifyReply } from 'fastify';
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
 * The security headers, worked out once by helmet itself: with these options (no nonces, no
 * per-request directives) they are the same on every answer. Handing Fastify this one object
 * per request costs a fraction of running helmet's eleven middlewares, each a raw setHeader
 * with Node's checks (measured in bench/RESULTS.md); @fastify/helmet, which rebuilds the
 * middleware on every request, cost far more again.
 */
export const SECURITY_HEADERS_VALUES: Readonly<Record<string, string>> = Object.freeze(helmetHeaders());

function helmetHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: unknown) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: () => {},
  };
  let done = false;
  helmet(SECURITY_HEADERS)({} as never, response as never, () => (done = true));
  // helmet's middlewares are synchronous; if one ever was not, this would be an empty set.
  if (!done || Object.keys(headers).length === 0) throw new Error('helmet did not set its headers synchronously');
  return headers;
}

/** Puts the security headers on an answer (they can still be overridden by a route). */
export function setSecurityHeaders(reply: FastifyReply): void {
  reply.headers(SECURITY_HEADERS_VALUES);
}

/** Headers a cross-origin page may read: where to poll, when, and the id to quote. */
const EXPOSED_HEADERS = ['Location', 'Retry-After', 'X-Request-Id', 'ETag', 'Preference-Applied'];

export async function registerBrowserSecurity(app: FastifyInstance, config: Pick<Config, 'CORS_ORIGINS'>): Promise<void> {
  app.addHook('onRequest', (_request, reply, done) => {
    setSecurityHeaders(reply);
    done();
  });
  if (config.CORS_ORIGINS.length === 0) return;
  await app.register(cors, {
    origin: [...config.CORS_ORIGINS],
    methods: ['GET', 'HEAD', 'POST'],
    exposedHeaders: EXPOSED_HEADERS,
    // Browsers may reuse a preflight answer for ten minutes instead of asking before each booking.
    maxAge: 600,
  });
}
