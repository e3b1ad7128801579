import compress from '@fastify/compress';
import rateLimit from '@fastify/rate-limit';
import { fastifySSE } from '@fastify/sse';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { TrustProxy } from '../../shared/config.js';
import type { AppDeps } from './deps.js';
import { adminAuth } from './plugins/admin-auth.js';
import { registerBrowserSecurity, setSecurityHeaders } from './plugins/browser-security.js';
import { bullBoardRoutes } from './plugins/bull-board.js';
import { registerDocs } from './plugins/docs.js';
import { answerParserRejection, registerErrorHandling } from './plugins/errors.js';
import { createApiMetrics, registerMetrics } from './plugins/metrics.js';
import { registerOverloadGuard } from './plugins/overload.js';
import { registerWebPage } from './plugins/web-page.js';
import { TurnCounter, turnCountedStore } from './rate-limit-store.js';
import { registerRequestHooks } from './request-hooks.js';
import { requestLoggerFactory } from './request-logger.js';
import { serializeEventData, serializerCompiler, validatorCompiler } from './schema-compilers.js';
import { adminBookingRoutes } from './routes/admin-bookings.js';
import { adminWaitlistRoutes } from './routes/admin-waitlist.js';
import { adminWebhookRoutes } from './routes/admin-webhooks.js';
import { bookingRoutes } from './routes/bookings.js';
import { adminLineRoutes, drawRoutes } from './routes/line.js';
import { healthRoutes } from './routes/health.js';
import { liveRoutes } from './routes/live.js';
import { adminShowRoutes, showRoutes } from './routes/shows.js';

export type { AppDeps } from './deps.js';

/**
 * Fastify's trustProxy for TRUST_PROXY. A hop count becomes a function: Fastify 5 ignores a
 * plain number (it trusts no hop, since a count cannot tell a load balancer from a client
 * talking to the API directly), so a count is only safe where every request passes through
 * that many load balancers; an address list also checks who is talking.
 */
function trustProxyOption(trust: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (trust === false) return false;
  if ('hops' in trust) {
    const { hops } = trust;
    return (_address, hop) => hop < hops;
  }
  return trust.addresses;
}

/**
 * Builds the Fastify app without listening: tests call `app.inject`, the entry file listens.
 * Order: error handling, then cross-cutting plugins (overload guard, metrics, OpenAPI, rate
 * limit), then routes, with the admin routes and the queue board in their own scopes behind
 * the token.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.BODY_LIMIT_BYTES,
    trustProxy: trustProxyOption(deps.config.TRUST_PROXY),
    // Request ids travel into the job and the worker's logs; accept a caller's if it is sane.
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : crypto.randomUUID();
    },
    requestIdHeader: false,
    // While closing (SIGTERM), Fastify would answer requests still arriving on open keep-alive
    // connections with its own 503: no Retry-After, not our error shape. Serving them instead
    // is safe: Redis and Postgres close only after the server has drained, and each of these
    // responses carries `Connection: close`, so the drain still ends.
    return503OnClosing: false,
    // A malformed %-escape or an over-long path parameter fails before routing and skips the
    // error handler; without this Fastify answers in its own shape, not `{ error: { code, message } }`.
    frameworkErrors: (error, request, reply: FastifyReply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      // No hook runs for these, the security headers' included.
      setSecurityHeaders(reply);
      void reply.status(tooLong ? 414 : 400).send({
        error: tooLong
          ? { code: 'URI_TOO_LONG', message: 'A path segment is too long' }
          : { code: 'BAD_URL', message: 'The URL is not valid (check its percent-encoding)' },
      });
    },
    // Requests Node's HTTP parser refuses (431, smuggling shapes) get `{ error: { code, message } }` too.
    clientErrorHandler: answerParserRejection(deps.logger),
    // One access line per request (request-hooks.ts) instead of Fastify's two: under a burst, logging is
    // a real share of the API's CPU.
    logController: new LogController({ disableRequestLogging: true }),
    // A request's child logger is made only when it first logs (see request-logger.ts).
    childLoggerFactory: requestLoggerFactory,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // The API speaks JSON only: without this, Fastify's built-in text/plain parser turns a
  // text body into a string and the client gets a confusing 400 instead of 415.
  app.removeContentTypeParser('text/plain');
  registerErrorHandling(app);
  // Security headers, request id, access line and HTTP metrics: one hook per stage (request-hooks.ts).
  const metrics = createApiMetrics();
  registerRequestHooks(app, metrics.http, deps.warmUp);

  // CORS (when configured); the security headers come from the onRequest hook above, before
  // shedding, so even a refusal carries them.
  await registerBrowserSecurity(app, deps.config);
  // Shedding first: an overloaded process should spend nothing on a request it refuses.
  await registerOverloadGuard(app, deps.config);
  // OpenAPI before any route it should document (it learns them as they are added).
  await registerDocs(app, deps.config);
  registerMetrics(app, deps, metrics.registry);

  if (deps.config.RATE_LIMIT_PER_MINUTE > 0) {
    // Counted in Redis so the limit holds across API replicas, one script call per event-loop
    // turn (rate-limit-store.ts); if Redis is down the limiter steps aside and the route itself
    // answers 503.
    await app.register(rateLimit, {
      max: deps.config.RATE_LIMIT_PER_MINUTE,
      timeWindow: 60_000,
      store: turnCountedStore(new TurnCounter(deps.redis), `${deps.config.QUEUE_PREFIX}:ratelimit:`),
      skipOnError: true,
      // The process's own warm-up requests (warmup.ts) would spend loopback's budget.
      ...(deps.warmUp ? { allowList: (request: FastifyRequest) => deps.warmUp!.isWarmUp(request) } : {}),
    });
  }

  // Answers over 1 KB (show lists, the OpenAPI document, the board's assets) compressed when
  // the client asks; small booking answers pass untouched.
  await app.register(compress);
  // Server-sent events' framing and heartbeat comments (routes/live.ts); the heartbeat keeps
  // proxies from closing a quiet stream.
  await app.register(fastifySSE, { heartbeatInterval: deps.config.SSE_HEARTBEAT_SECONDS * 1_000, serializer: serializeEventData });
  // Open streams would hold the server's close open: end them first (clients reconnect to
  // another replica after their retry hint), and answer polls waiting under Prefer: wait.
  app.addHook('preClose', (done) => {
    deps.live.endAll();
    done();
  });

  await app.register(healthRoutes(deps));
  await app.register(showRoutes(deps));
  await app.register(bookingRoutes(deps));
  await app.register(drawRoutes(deps));
  await app.register(liveRoutes(deps));
  await app.register(async (admin) => {
    admin.addHook('onRequest', adminAuth(deps.adminToken));
    await admin.register(adminShowRoutes(deps));
    await admin.register(adminLineRoutes(deps));
    await admin.register(adminBookingRoutes(deps));
    await admin.register(adminWaitlistRoutes(deps));
    await admin.register(adminWebhookRoutes(deps));
  });
  await app.register(bullBoardRoutes(deps));
  // The buyer's page (/), the admin page (/admin) and their assets: static files built from web/.
  await registerWebPage(app, deps.logger);

  return app;
}
