import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { RedisClient } from '../../../shared/redis.js';
import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { z } from 'zod';
import type { Config } from '../../../shared/config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../../../shared/logger.js';
import { readOutcomes } from '../../../shared/metrics/outcomes.js';
import { QUEUES } from '../../../shared/queue/catalog.js';
import { RequestIndex } from '../../../shared/queue/request-index.js';
import { QUEUE_STATES, readJobCounts, readOldestWaitingAgeSeconds } from '../../../shared/metrics/queue-stats.js';
import { createRegistry, observePool, observeRedis } from '../../../shared/metrics/resources.js';
import { bearerToken, tokenMatcher } from '../../../shared/secrets.js';
import type { LiveUpdates } from '../live/live-updates.js';
import { ErrorBody } from '../schemas.js';

/**
 * The API's Prometheus endpoint, and the one scrape target that shows the whole pipeline: HTTP
 * traffic of this replica, plus queue depth and booking outcomes read from Redis at scrape time
 * (so they are the same whichever replica is scraped and however many workers run).
 */

export type ApiMetricsDeps = {
  config: Pick<Config, 'QUEUE_PREFIX' | 'METRICS_TOKEN'>;
  live: LiveUpdates;
  pool: pg.Pool;
  redis: RedisClient;
  queues: Record<string, Queue>;
  logger: Logger;
};

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The API's registry and its per-request series, made before any route so the request hooks can feed them. */
export function createApiMetrics(): { registry: Registry; http: HttpMetrics } {
  const registry = createRegistry();
  return { registry, http: new HttpMetrics(registry) };
}

/** Adds the pipeline's, pools' and live updates' series to `registry`, and GET /metrics. */
export function registerMetrics(app: FastifyInstance, deps: ApiMetricsDeps, registry: Registry): Registry {
  observePool(registry, deps.pool);
  observeRedis(registry, deps.redis);
  observePipeline(registry, deps);
  observeLive(registry, deps.live);

  const token = deps.config.METRICS_TOKEN;
  app.withTypeProvider<ZodTypeProvider>().get(
    '/metrics',
    {
      config: { rateLimit: false },
      ...(token ? { onRequest: requireMetricsToken(token) } : {}),
      schema: {
        summary: 'Prometheus metrics: HTTP traffic, queue depth, booking outcomes, pools',
        tags: ['ops'],
        description: 'Open unless METRICS_TOKEN is set; then send `Authorization: Bearer <METRICS_TOKEN>`.',
        response: {
          200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } },
          401: ErrorBody.describe('METRICS_TOKEN is set and the request did not carry it'),
        },
      },
    },
    async (_request, reply) => {
      const body = await registry.metrics();
      return reply.type(registry.contentType).send(body);
    },
  );
  return registry;
}

type HttpLabels = { method: string; route: string; status_code: string };

/**
 * Rate, latency and status by route pattern (never the raw URL: ids would explode the series),
 * fed once per request by the onResponse hook (request-hooks.ts). Each series' labels object is
 * made once and kept: a request does not allocate one.
 */
export class HttpMetrics {
  private readonly requests: Counter<keyof HttpLabels>;
  private readonly duration: Histogram<keyof HttpLabels>;
  /** route → method → status → labels */
  private readonly labels = new Map<string, Map<string, Map<number, HttpLabels>>>();

  constructor(registry: Registry) {
    const labelNames = ['method', 'route', 'status_code'] as const;
    this.requests = new Counter({
      name: 'ticket_rush_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'ticket_rush_http_request_duration_seconds',
      help: 'HTTP request duration in seconds, by method, route pattern and status',
      labelNames,
      buckets: HTTP_BUCKETS,
      registers: [registry],
    });
  }

  observe(method: string, route: string, status: number, seconds: number): void {
    const labels = this.labelsOf(method, route, status);
    this.requests.inc(labels);
    this.duration.observe(labels, seconds);
  }

  private labelsOf(method: string, route: string, status: number): HttpLabels {
    let byMethod = this.labels.get(route);
    if (!byMethod) this.labels.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let labels = byStatus.get(status);
    if (!labels) byStatus.set(status, (labels = { method, route, status_code: String(status) }));
    return labels;
  }
}

function observePipeline(registry: Registry, deps: ApiMetricsDeps): void {
  const { logger, queues, redis } = deps;
  const prefix = deps.config.QUEUE_PREFIX;
  // A scrape while Redis is down still answers: these series go missing and
  // ticket_rush_redis_up says why.
  const unreadable = (what: string) => (error: unknown) => {
    logger.debug({ err: error instanceof Error ? error.message : error }, `metrics: cannot read ${what}`);
  };

  new Gauge({
    name: 'ticket_rush_queue_jobs',
    help: 'Jobs in each queue by state (waiting, active, delayed, failed)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        Object.entries(queues).map(async ([name, queue]) => {
          const counts = await readJobCounts(queue).catch(unreadable(`${name} queue counts`));
          if (counts) for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[state]);
        }),
      );
    },
  });
  const requestIndex = new RequestIndex(redis, queues[QUEUES.bookings]!);
  new Gauge({
    name: 'ticket_rush_booking_requests_waiting',
    help: 'Booking requests accepted and not yet taken by a worker (requests travel in batch jobs, so this is the line clients queue in)',
    registers: [registry],
    async collect() {
      this.reset();
      const waiting = await requestIndex.waiting().catch(unreadable('requests waiting'));
      if (waiting !== undefined) this.set(waiting);
    },
  });
  new Gauge({
    name: 'ticket_rush_queue_oldest_waiting_age_seconds',
    help: 'Seconds the oldest waiting job of each queue has waited (0 when none waits)',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        Object.entries(queues).map(async ([name, queue]) => {
          const age = await readOldestWaitingAgeSeconds(queue).catch(unreadable(`${name} oldest job`));
          if (age !== undefined) this.set({ queue: name }, age);
        }),
      );
    },
  });
  new Counter({
    name: 'ticket_rush_bookings_total',
    help: 'Booking outcomes across all workers (status, reason), from the shared counters in Redis',
    labelNames: ['status', 'reason'],
    registers: [registry],
    async collect() {
      const outcomes = await readOutcomes(redis, prefix).catch(unreadable('booking outcomes'));
      // The totals live in Redis; the counter mirrors them rather than counting itself.
      this.reset();
      for (const { status, reason, count } of outcomes ?? []) this.inc({ status, reason: reason || 'none' }, count);
    },
  });
}

/** This replica's live updates: streams open now, by kind, and events sent, by event. */
function observeLive(registry: Registry, live: LiveUpdates): void {
  new Gauge({
    name: 'ticket_rush_live_streams_open',
    help: 'Live connections this API process holds open, by kind (booking and show event streams, polls waiting under Prefer: wait); capped by SSE_MAX_STREAMS',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const [kind, count] of Object.entries(live.slots.counts())) this.set({ kind }, count);
    },
  });
  new Counter({
    name: 'ticket_rush_live_events_sent_total',
    help: 'Server-sent events this API process has sent, by event (status, availability, seats)',
    labelNames: ['event'],
    registers: [registry],
    collect() {
      // The counts live in LiveUpdates (which knows no metrics library); mirrored at scrape time.
      this.reset();
      for (const [event, count] of live.eventsSent) this.inc({ event }, count);
    },
  });
}

function requireMetricsToken(token: string) {
  const matches = tokenMatcher(token);
  return async function metricsAuth(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const given = bearerToken(request.headers.authorization);
    if (!given || !matches(given)) {
      reply.header('WWW-Authenticate', 'Bearer realm="metrics"');
      throw new AppError(401, 'UNAUTHORIZED', 'Metrics need Authorization: Bearer <METRICS_TOKEN>');
    }
  };
}
