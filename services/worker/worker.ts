import { pathToFileURL } from 'node:url';
import { UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import { AvailableSeats } from '../../shared/booking/available-seats.js';
import { environmentSettings } from '../../shared/booking/sale-schedule.js';
import { drawSeedOf } from '../../shared/booking/show-draw.js';
import { LayoutCache, salesOpenAtOf } from '../../shared/booking/shows.js';
import { loadConfig, type Config } from '../../shared/config.js';
import { createDb, transientDbCause } from '../../shared/db/client.js';
import { ChangePublisher } from '../../shared/live/changes.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import { cappedExponentialBackoff, JOBS, QUEUES, type JobName } from '../../shared/queue/catalog.js';
import { openQueue } from '../../shared/queue/queues.js';
import { RequestIndex } from '../../shared/queue/request-index.js';
import { assertNoEviction, createWorkerConnection, logOutages, redisTarget, waitForReady } from '../../shared/redis.js';
import { closeInOrder, exitOnSignals, runMain } from '../lifecycle.js';
import { createSender } from '../../shared/webhooks/send.js';
import { createDeliverWebhooksProcessor } from './jobs/deliver-webhooks.js';
import { createExpireHoldsProcessor } from './jobs/expire-holds.js';
import { createBookingProcessor, SeatsLockedError } from './jobs/process-bookings.js';
import { startLineKeeper, type LineKeeper } from './line-keeper.js';
import { createReconcileIntakeProcessor } from './jobs/reconcile-intake.js';
import { createPruneWebhooksProcessor, PRUNE_CHUNK, PRUNE_MAX_CHUNKS, PRUNE_WEBHOOKS_EVERY_MS } from './jobs/prune-webhooks.js';
import { createRelayWebhooksProcessor, saleActivityProbe } from './jobs/relay-webhooks.js';
import { createWorkerMetrics } from './metrics.js';
import { serveMetrics, type MetricsServer } from './metrics-server.js';

/**
 * Lock and stall settings. A job's lock is renewed every lockDuration/2 while it runs, so a
 * live worker never loses it (a decision takes milliseconds); a killed worker's jobs are found
 * by the stalled check within stalledInterval + lockDuration (about 15 s) and run again, which
 * is safe because processing is idempotent.
 */
export const LOCK_DURATION_MS = 10_000;
export const STALLED_INTERVAL_MS = 5_000;

export type RunningWorker = {
  bookingWorker: Worker;
  maintenanceWorker: Worker;
  maintenanceQueue: Queue;
  webhookWorker: Worker;
  /** This process's metrics; `url` is null when WORKER_METRICS_PORT is 0 or was taken. */
  metrics: { registry: Registry; url: string | null };
  close: () => Promise<void>;
};

/** A handler gets its job's payload validated by the catalog's schema (and the job, for its attempts). */
type Handlers = { [N in JobName]?: (data: z.infer<(typeof JOBS)[N]['schema']>, job: Job) => Promise<unknown> };

/**
 * Routes a job to its handler by name, validating its payload once, here: a payload that does
 * not match the catalog never will, so it fails without retrying. A job name without a handler
 * is refused at boot.
 */
function dispatcher(queue: string, handlers: Handlers): (job: Job) => Promise<unknown> {
  for (const [name, spec] of Object.entries(JOBS)) {
    if (spec.queue === queue && !handlers[name as JobName]) throw new Error(`job "${name}" has no handler`);
  }
  return async (job) => {
    const name = job.name as JobName;
    const handler = handlers[name] as ((data: unknown, job: Job) => Promise<unknown>) | undefined;
    if (!handler) throw new Error(`no handler for job "${job.name}"`);
    const payload = JOBS[name].schema.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`invalid "${job.name}" payload: ${payload.error.message}`);
    return handler(payload.data, job);
  };
}

export async function startWorker(config: Config, logger: Logger): Promise<RunningWorker> {
  const poolSize = Math.max(config.DB_POOL_SIZE, 2);
  const { db, pool } = createDb({ connectionString: config.DATABASE_URL, max: poolSize, applicationName: 'ticket-rush-worker' });
  const connection = createWorkerConnection(redisTarget(config));
  logOutages(connection, logger);
  try {
    await waitForReady(connection, 30_000);
    await assertNoEviction(connection);
  } catch (error) {
    // A refused start must not leave a reconnecting client and a pool behind in the caller.
    connection.disconnect();
    await pool.end();
    throw error;
  }

  const metrics = createWorkerMetrics({ pool, redis: connection, prefix: config.QUEUE_PREFIX, logger });
  const layouts = new LayoutCache(db);
  // The request index sits beside the bookings queue, under its prefix; the line keeper adds the
  // batch jobs it releases from held lines to it.
  const bookingQueue = openQueue(QUEUES.bookings, connection, config.QUEUE_PREFIX);
  const index = new RequestIndex(connection, bookingQueue);
  // Live updates of decisions and expiries (fire and forget: a lost publish fails nothing).
  // The seats AVAILABLE per show, in Redis for the outlook of queued requests: recounted after
  // every change this process publishes (decision batches, the expiry sweep, offers).
  const availableSeats = new AvailableSeats(connection, db, index.line, (error) =>
    logger.warn({ err: error instanceof Error ? error.message : error }, 'could not recount available seats'),
  );
  const changes = new ChangePublisher(
    connection,
    config.QUEUE_PREFIX,
    (error) => logger.debug({ err: error instanceof Error ? error.message : error }, 'could not publish a live update'),
    (showIds) => availableSeats.refresh(showIds),
  );
  // Started once the workers are ready (below); a batch decided before that hands on through
  // the keepers' ticks instead.
  const lines: { keeper?: LineKeeper } = {};
  const { processBookings } = createBookingProcessor({
    db,
    layouts,
    settings: environmentSettings(config),
    batchSize: config.WORKER_BATCH_SIZE,
    batchIntervalMs: config.WORKER_BATCH_INTERVAL_MS,
    logger,
    index,
    changes,
    observer: metrics.bookings,
    onBatchDecided: async (jobId) => lines.keeper?.batchDecided(jobId),
  });
  const workerOptions = {
    connection,
    prefix: config.QUEUE_PREFIX,
    lockDuration: LOCK_DURATION_MS,
    stalledInterval: STALLED_INTERVAL_MS,
    // Idempotent jobs may safely run again after a crash; give up only on a job that keeps
    // killing its workers.
    maxStalledCount: 5,
    settings: { backoffStrategy: (attemptsMade: number) => cappedExponentialBackoff(attemptsMade) },
  };

  const bookingWorker = new Worker(
    QUEUES.bookings,
    metrics.timed(QUEUES.bookings, dispatcher(QUEUES.bookings, { 'process-bookings': processBookings })),
    { ...workerOptions, concurrency: config.WORKER_CONCURRENCY },
  );
  const expireHolds = createExpireHoldsProcessor({
    db,
    logger,
    waitlist: { offerSeconds: config.WAITLIST_OFFER_SECONDS },
    onSwept: metrics.onSwept,
    changes,
  });
  const webhookQueue = openQueue(QUEUES.webhooks, connection, config.QUEUE_PREFIX);
  const relayWebhooks = createRelayWebhooksProcessor({
    db,
    queue: webhookQueue,
    batch: config.WEBHOOK_RELAY_BATCH,
    busyBatch: config.WEBHOOK_RELAY_BUSY_BATCH,
    bookingsBusy: saleActivityProbe(bookingQueue, connection, config.QUEUE_PREFIX),
    // Outlasts a batch sent WEBHOOK_CONCURRENCY at a time with every receiver timing out, plus
    // its wait in the queue; a delivery whose attempt never recorded (a lost job) is leased
    // again after it.
    leaseMs: (Math.ceil(config.WEBHOOK_RELAY_BATCH / config.WEBHOOK_CONCURRENCY) + 2) * config.WEBHOOK_TIMEOUT_MS + 5_000,
  });
  const maintenanceWorker = new Worker(
    QUEUES.maintenance,
    metrics.timed(
      QUEUES.maintenance,
      dispatcher(QUEUES.maintenance, {
        'expire-holds': expireHolds,
        'reconcile-intake': createReconcileIntakeProcessor({ index, logger }),
        'relay-webhooks': relayWebhooks,
        'prune-webhooks': createPruneWebhooksProcessor({
          db,
          logger,
          limits: { retentionHours: config.WEBHOOK_RETENTION_HOURS, chunk: PRUNE_CHUNK, maxChunks: PRUNE_MAX_CHUNKS },
        }),
      }),
    ),
    { ...workerOptions, concurrency: 1 },
  );
  const sender = createSender({ production: config.NODE_ENV === 'production', allowedHosts: config.WEBHOOK_ALLOWED_HOSTS }, config.WEBHOOK_TIMEOUT_MS);
  const deliverWebhooks = createDeliverWebhooksProcessor({
    db,
    sender,
    concurrency: config.WEBHOOK_CONCURRENCY,
    policy: { baseMs: config.WEBHOOK_RETRY_BASE_MS, maxMs: config.WEBHOOK_RETRY_MAX_MS, windowMs: config.WEBHOOK_RETRY_WINDOW_SECONDS * 1_000 },
    logger,
    onAttempt: metrics.onWebhookAttempt,
  });
  const webhookWorker = new Worker(
    QUEUES.webhooks,
    metrics.timed(QUEUES.webhooks, dispatcher(QUEUES.webhooks, { 'deliver-webhooks': deliverWebhooks })),
    // Two batches at once: one waiting on slow receivers does not hold back the next tick's.
    // The lock is renewed while a batch runs, so a live worker keeps it however long it takes.
    { ...workerOptions, concurrency: 2 },
  );
  for (const worker of [bookingWorker, maintenanceWorker, webhookWorker]) {
    worker.on('error', (error) => logger.warn({ err: error.message }, 'worker error'));
    worker.on('failed', (job, error) => {
      const context = { jobId: job?.id, job: job?.name, requests: job?.data?.requests?.length, attempt: job?.attemptsMade };
      // An outage fails every attempt of every job: one short line each, naming the driver's
      // reason (not drizzle's wrapper, whose message repeats the SQL and its parameters).
      const transient = transientDbCause(error) ?? (error instanceof SeatsLockedError ? error : undefined);
      if (transient) {
        const code = (transient as { code?: unknown }).code;
        logger.warn({ ...context, err: transient.message, ...(typeof code === 'string' ? { code } : {}) }, 'job failed; BullMQ retries it unless attempts are exhausted');
      } else {
        logger.error({ ...context, err: error }, 'job failed; BullMQ retries it unless attempts are exhausted');
      }
    });
  }

  // Every worker process upserts the same scheduler ids: BullMQ keeps one schedule each, so
  // there is exactly one sweep (and one recount) per tick however many workers run.
  const maintenanceQueue = openQueue(QUEUES.maintenance, connection, config.QUEUE_PREFIX);
  await maintenanceQueue.upsertJobScheduler(
    'expire-holds',
    { every: config.EXPIRY_INTERVAL_SECONDS * 1_000 },
    { name: 'expire-holds', opts: JOBS['expire-holds'].options },
  );
  await maintenanceQueue.upsertJobScheduler(
    'reconcile-intake',
    { every: config.INTAKE_RECONCILE_SECONDS * 1_000 },
    { name: 'reconcile-intake', opts: JOBS['reconcile-intake'].options },
  );
  await maintenanceQueue.upsertJobScheduler(
    'relay-webhooks',
    { every: config.WEBHOOK_RELAY_INTERVAL_MS },
    { name: 'relay-webhooks', opts: JOBS['relay-webhooks'].options },
  );
  await maintenanceQueue.upsertJobScheduler(
    'prune-webhooks',
    { every: PRUNE_WEBHOOKS_EVERY_MS },
    { name: 'prune-webhooks', opts: JOBS['prune-webhooks'].options },
  );
  await Promise.all([bookingWorker.waitUntilReady(), maintenanceWorker.waitUntilReady(), webhookWorker.waitUntilReady()]);
  // Draws waiting rooms at their opening and releases held lines (waiting room, pause) in order.
  const keeper = startLineKeeper({
    index,
    queue: bookingQueue,
    seedOf: (showId) => drawSeedOf(db, showId),
    salesOpenAtOf: (showId) => salesOpenAtOf(db, showId),
    onDrawn: (showId) => availableSeats.refresh([showId]),
    batchSize: config.LINE_RELEASE_BATCH_SIZE,
    logger,
  });
  lines.keeper = keeper;
  logger.info({ concurrency: config.WORKER_CONCURRENCY, batchSize: config.WORKER_BATCH_SIZE, pool: poolSize }, 'worker started');

  let metricsServer: MetricsServer | null = null;
  const close = closeInOrder(
    [
      { name: 'line keeper', close: () => keeper.close() },
      // close() stops taking jobs and waits for the in-flight ones to finish.
      { name: 'booking worker', close: () => bookingWorker.close() },
      { name: 'maintenance worker', close: () => maintenanceWorker.close() },
      // Attempts in flight finish (each at most WEBHOOK_TIMEOUT_MS) and record their outcome.
      { name: 'webhook worker', close: () => webhookWorker.close() },
      { name: 'webhook sender', close: () => sender.close() },
      { name: 'webhook queue', close: () => webhookQueue.close() },
      { name: 'maintenance queue', close: () => maintenanceQueue.close() },
      { name: 'available seat recounts', close: () => availableSeats.settled() },
      { name: 'booking queue', close: () => bookingQueue.close() },
      { name: 'outcome counts', close: () => metrics.flush() },
      // Kept until the drain is done, so a scrape can watch it.
      { name: 'metrics server', close: async () => metricsServer?.close() },
      { name: 'redis', close: () => connection.quit() },
      { name: 'postgres pool', close: () => pool.end() },
    ],
    logger,
  );
  if (config.WORKER_METRICS_PORT > 0) {
    try {
      metricsServer = await serveMetrics(metrics.registry, {
        port: config.WORKER_METRICS_PORT,
        host: config.HOST,
        token: config.METRICS_TOKEN,
        logger,
      });
    } catch (error) {
      await close();
      throw error;
    }
    if (metricsServer) logger.info({ url: metricsServer.url }, 'worker metrics listening');
  }
  return { bookingWorker, maintenanceWorker, maintenanceQueue, webhookWorker, metrics: { registry: metrics.registry, url: metricsServer?.url ?? null }, close };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'worker');
  const worker = await startWorker(config, logger);
  exitOnSignals(worker.close, logger, config.SHUTDOWN_TIMEOUT_SECONDS);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) runMain(main, 'worker');
