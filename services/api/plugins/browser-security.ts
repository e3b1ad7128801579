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

/**
 * What a JSON answer carries of them: the headers that still mean something for a body no
 * browser renders as a page (OWASP's REST Security Cheat Sheet, "Security headers"): no framing
 * (`frame-ancestors 'none'`, X-Frame-Options), no sniffing it into something else (nosniff), no
 * cross-origin embedding of it (Cross-Origin-Resource-Policy), HTTPS only (HSTS), no Referer.
 * The policy's fallback directives stay (`default-src 'self'`, `object-src 'none'`), so a JSON
 * URL opened in a tab is held to the pages' defaults. What is left out only governs documents:
 * where a page may load fonts, styles, images and scripts from, where its forms post, its
 * browsing-context isolation (COOP, Origin-Agent-Cluster), and headers for old browsers and
 * plug-ins (X-XSS-Protection, X-Download-Options, X-DNS-Prefetch-Control,
 * X-Permitted-Cross-Domain-Policies). 279 bytes in 6 headers instead of 631 in 12, on the two
 * answers every booking gets (bench/RESULTS.md).
 */
export const JSON_ANSWER_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': cspOnly(SECURITY_HEADERS_VALUES['content-security-policy']!, ['default-src', 'frame-ancestors', 'object-src']),
  ...pick(SECURITY_HEADERS_VALUES, ['cross-origin-resource-policy', 'referrer-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options']),
});

/** The rest: added to every answer that is not JSON (pages, their scripts and styles, text). */
const PAGE_ONLY_HEADERS: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(Object.entries(SECURITY_HEADERS_VALUES).filter(([name, value]) => JSON_ANSWER_HEADERS[name] !== value)),
);

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

/** helmet's policy cut down to the named directives, as helmet wrote them. */
function cspOnly(policy: string, names: string[]): string {
  const kept = policy.split(';').filter((directive) => names.includes(directive.trim().split(/\s+/)[0]!));
  if (kept.length !== names.length) throw new Error(`helmet's policy lacks one of ${names.join(', ')}`);
  return kept.join(';');
}

function pick(headers: Readonly<Record<string, string>>, names: string[]): Record<string, string> {
  return Object.fromEntries(
    names.map((name) => {
      const value = headers[name];
      if (value === undefined) throw new Error(`helmet no longer sets ${name}`);
      return [name, value];
    }),
  );
}

const isJson = (contentType: unknown) => typeof contentType === 'string' && /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType);

/**
 * Puts the JSON answers' security headers on an answer, as the request arrives (request-hooks.ts,
 * and frameworkErrors, for which no hook runs); an answer that turns out not to be known to be
 * JSON gets the rest from addPageHeaders when it is sent. Routes can still override them.
 */
export function setSecurityHeaders(reply: FastifyReply): void {
  reply.headers(JSON_ANSWER_HEADERS);
}

/**
 * In onSend: only an answer known to be JSON keeps the short set. One without a type gets the
 * whole of it: a 304 has none, and a browser revalidating a page replaces the cached page's
 * headers with the 304's, so the short policy would then govern the page.
 */
export function addPageHeaders(reply: FastifyReply): void {
  if (!isJson(reply.getHeader('content-type'))) reply.headers(PAGE_ONLY_HEADERS);
}

/** Headers a cross-origin page may read: where to poll, when, and the id to quote. */
const EXPOSED_HEADERS = ['Location', 'Retry-After', 'X-Request-Id', 'ETag', 'Preference-Applied'];

/**
 * Which other origins' pages may call the API, only when CORS_ORIGINS lists them. The security
 * headers themselves are set by the per-request hooks (request-hooks.ts) through the two
 * functions above.
 */
export async function registerBrowserSecurity(app: FastifyInstance, config: Pick<Config, 'CORS_ORIGINS'>): Promise<void> {
  if (config.CORS_ORIGINS.length === 0) return;
  await app.register(cors, {
    origin: [...config.CORS_ORIGINS],
    methods: ['GET', 'HEAD', 'POST'],
    exposedHeaders: EXPOSED_HEADERS,
    // Browsers may reuse a preflight answer for ten minutes instead of asking before each booking.
    maxAge: 600,
  });
}
