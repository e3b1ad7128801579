import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { LayoutCache } from '../../shared/booking/shows.js';
import { environmentSettings } from '../../shared/booking/sale-schedule.js';
import { BookingStanding, type WaitPlace } from '../../shared/booking/standing.js';
import { loadConfig, type Config } from '../../shared/config.js';
import { createDb } from '../../shared/db/client.js';
import { AvailableSeats } from '../../shared/booking/available-seats.js';
import { ChangePublisher, ChangeSubscriber } from '../../shared/live/changes.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import { QUEUES } from '../../shared/queue/catalog.js';
import { LineSizes } from '../../shared/queue/line-size.js';
import { openQueue } from '../../shared/queue/queues.js';
import { RequestIndex } from '../../shared/queue/request-index.js';
import {
  assertNoEviction,
  createProducerConnection,
  describeRedisTarget,
  HOW_TO_START_REDIS,
  logOutages,
  firstConnectionError,
  RedisPolicyError,
  redisTarget,
  type RedisClient,
} from '../../shared/redis.js';
import { closeInOrder, exitOnSignals, runMain } from '../lifecycle.js';
import { resolveAdminToken, shareGeneratedToken } from './admin-token.js';
import { buildApp } from './app.js';
import { RetryAfterAdvisor, ShowDrainRates } from './retry-after.js';
import { BookingIntake } from './booking-intake.js';
import { LiveUpdates } from './live/live-updates.js';
import { WarmUp } from './warmup.js';

export type RunningApi = {
  app: FastifyInstance;
  url: string;
  adminToken: string;
  /** True when ADMIN_TOKEN was unset and `adminToken` was made for this run. */
  adminTokenGenerated: boolean;
  close: () => Promise<void>;
};

/**
 * A Redis that comes up after the API started gets the check a reachable one gets at startup.
 * One that may evict keys is dropped for good (bookings and /ready stay 503): accepting
 * requests into it could lose them, and a restart after fixing the policy is the safe way back.
 */
function checkPolicyOnceReady(redis: RedisClient, logger: Logger): void {
  const onReady = () => {
    assertNoEviction(redis).then(
      () => {
        redis.off('ready', onReady);
        logger.info('redis is up (noeviction): accepting bookings');
      },
      (error: unknown) => {
        // Anything but the policy (the connection dropped again) is checked at the next ready.
        if (!(error instanceof RedisPolicyError)) return;
        redis.off('ready', onReady);
        logger.error({ err: error.message }, 'refusing this Redis: fix its policy, then restart the API');
        redis.disconnect();
      },
    );
  };
  redis.on('ready', onReady);
}

export async function startApi(config: Config, logger: Logger, options: { listen?: boolean } = {}): Promise<RunningApi> {
  const { token: adminToken, generated } = resolveAdminToken(config);
  const { db, pool } = createDb({ connectionString: config.DATABASE_URL, max: config.DB_POOL_SIZE, applicationName: 'ticket-rush-api' });
  // Auto-pipelining sends the commands of many concurrent requests in one write: under a
  // burst this is most of the API's Redis cost.
  const target = redisTarget(config);
  const redis = createProducerConnection(target, { enableAutoPipelining: true });
  let unreachable: Error | undefined;
  try {
    unreachable = await firstConnectionError(redis);
    if (!unreachable) await assertNoEviction(redis);
  } catch (error) {
    redis.disconnect();
    await pool.end();
    throw error;
  }
  logOutages(redis, logger, { down: unreachable !== undefined });
  // Without Redis the API still listens: /health answers, /ready and bookings answer 503 with
  // Retry-After (the producer connection fails fast), and the client keeps reconnecting.
  if (unreachable) {
    const where = describeRedisTarget(target);
    logger.warn(
      { redis: where, err: unreachable.message, howToStart: HOW_TO_START_REDIS },
      `Redis is down: ${where} does not answer (${unreachable.message}). Serving /health; /ready and bookings answer 503 ` +
        `until Redis is up, then the API recovers by itself. To start one: ${HOW_TO_START_REDIS.join('; or ')}`,
    );
    checkPolicyOnceReady(redis, logger);
  }
  // BullMQ's queues get a connection of their own. BullMQ defines its 64 scripts on the
  // connection it is given, and ioredis copies every script a connection defines into each
  // pipeline it makes, which auto-pipelining does once per flush: on the shared connection a
  // flush cost ~42 µs instead of ~4, and at 500 requests/s (a flush or two per command) that copy
  // was 8% of the API's CPU (bench/RESULTS.md, session 6). BullMQ's own commands (one add per
  // turn's batch, the board's and the metrics' reads) are few, so they go out as they come.
  // Same server, same fail-fast options: its outages are the ones `redis` logs.
  const queueRedis = createProducerConnection(target);
  queueRedis.on('error', () => {});
  const bookingQueue = openQueue(QUEUES.bookings, queueRedis, config.QUEUE_PREFIX);
  // Only read by /metrics and the admin board; the worker owns its schedule.
  const maintenanceQueue = openQueue(QUEUES.maintenance, queueRedis, config.QUEUE_PREFIX);
  // Likewise: the relay's batch jobs, for their depth in /metrics and failed batches on the board.
  const webhookQueue = openQueue(QUEUES.webhooks, queueRedis, config.QUEUE_PREFIX);
  const index = new RequestIndex(redis, bookingQueue);
  const drain = new RetryAfterAdvisor(() => index.taken());
  const showDrains = new ShowDrainRates((showId) => index.line.taken(showId));
  // The show's own rate when measured; else the queue's, over the place in the shared queue.
  const expectedWait = ({ position, show }: WaitPlace) => (show ? showDrains.expectedWaitSeconds(show.showId, show.requestsAhead) : null) ?? drain.expectedWaitSeconds(position);
  const standing = new BookingStanding(index, db, { expectedWait });
  const intake = new BookingIntake(bookingQueue, redis, {
    maxQueueDepth: config.MAX_QUEUE_DEPTH,
    keyPrefix: config.QUEUE_PREFIX,
    batchSize: config.ENQUEUE_BATCH_SIZE,
    lingerMs: config.ENQUEUE_LINGER_MS,
    standing,
  });
  // The queues share `queueRedis`: Redis's outages are logged once above, not once per queue on stderr.
  for (const queue of [bookingQueue, maintenanceQueue, webhookQueue]) queue.on('error', () => {});
  const queues = { [QUEUES.bookings]: bookingQueue, [QUEUES.maintenance]: maintenanceQueue, [QUEUES.webhooks]: webhookQueue };
  const lines = new LineSizes(bookingQueue, index.line);
  // Live updates: settles are published on the producer connection (pipelined with the rest),
  // and one subscriber connection per process feeds every stream it serves.
  const liveError = (what: string) => (error: unknown) => logger.debug({ err: error instanceof Error ? error.message : error }, what);
  // The seats AVAILABLE per show, in Redis for the outlook of queued requests: recounted after
  // every change this process publishes (settles, refunds), when a show is created and paused.
  const availableSeats = new AvailableSeats(redis, db, index.line, (error) =>
    logger.warn({ err: error instanceof Error ? error.message : error }, 'could not recount available seats'),
  );
  const changes = new ChangePublisher(redis, config.QUEUE_PREFIX, liveError('could not publish a live update'), (showIds) =>
    availableSeats.refresh(showIds),
  );
  const live = new LiveUpdates(ChangeSubscriber.open(target, config.QUEUE_PREFIX, liveError('live updates subscriber')), {
    standing,
    lineTaken: () => index.taken(),
    db,
    settings: environmentSettings(config),
    lines,
    maxStreams: config.SSE_MAX_STREAMS,
    logger,
  });
  // Only a listening process warms up (tests that inject requests have no socket to warm).
  const warmUp = new WarmUp(options.listen === false ? 0 : config.API_WARMUP_REQUESTS);
  const app = await buildApp({
    config,
    adminToken,
    db,
    pool,
    redis,
    intake,
    standing,
    layouts: new LayoutCache(db),
    lines,
    changes,
    availableSeats,
    live,
    logger,
    queues,
    warmUp,
  });

  let url = '';
  if (options.listen !== false) {
    url = await app.listen({ port: config.PORT, host: config.HOST });
    // In the background: /ready answers 503 until it is done, so the balancer waits for it.
    if (!warmUp.done) {
      void warmUp.run(url).then(
        ({ requests, ms }) => logger.info({ requests, ms }, 'warmed up: ready for traffic'),
        (error: unknown) => logger.warn({ err: error instanceof Error ? error.message : error }, 'warm-up ended early: ready for traffic'),
      );
    }
  }
  const close = closeInOrder(
    [
      { name: 'http server', close: () => app.close() },
      { name: 'live updates', close: () => live.close() },
      { name: 'available seat recounts', close: () => availableSeats.settled() },
      { name: 'booking queue', close: () => bookingQueue.close() },
      { name: 'maintenance queue', close: () => maintenanceQueue.close() },
      { name: 'webhook queue', close: () => webhookQueue.close() },
      { name: 'queue redis', close: () => queueRedis.quit() },
      { name: 'redis', close: () => redis.quit() },
      { name: 'postgres pool', close: () => pool.end() },
    ],
    logger,
  );
  return { app, url, adminToken, adminTokenGenerated: generated, close };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'api');
  const api = await startApi(config, logger);
  exitOnSignals(api.close, logger, config.SHUTDOWN_TIMEOUT_SECONDS);
  logger.info({ url: api.url }, 'api listening');
  if (api.adminTokenGenerated) await shareGeneratedToken(api.adminToken, config, logger);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) runMain(main, 'api');
